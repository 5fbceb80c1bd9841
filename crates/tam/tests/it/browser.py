"""Drives one headless Chromium session through the dashboard, as a TAM would: sign in with the
form, filter Today, open an account, open a draft, sign out. Chromium is driven over the
DevTools protocol on a pipe (--remote-debugging-pipe), so no client library is needed.

Usage: browser.py URL TOKEN OUT_DIR. Prints one JSON object: what each step saw. Screenshots of
each page at 1280 and 390 px wide go to OUT_DIR.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile

url, token, out_dir = sys.argv[1:4]


def give_up(*_):
    raise SystemExit("the browser flow took over 90 s")


# A browser that hangs fails the test instead of stalling the suite.
signal.signal(signal.SIGALRM, give_up)
signal.alarm(90)
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


# Chromium reads commands on fd 3 and writes answers on fd 4. A pipe is not inherited unless
# asked (and dup2 onto its own number leaves it so).
os.set_inheritable(to_chrome_r, True)
os.set_inheritable(from_chrome_w, True)


def wire():
    os.dup2(to_chrome_r, 3)
    os.dup2(from_chrome_w, 4)


profile = tempfile.mkdtemp()
chrome = subprocess.Popen(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
     "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
    preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
os.close(to_chrome_r)
os.close(from_chrome_w)
pending = b""
events = []
next_id = 0


def receive():
    global pending
    while b"\0" not in pending:
        chunk = os.read(from_chrome_r, 1 << 16)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        pending += chunk
    message, pending = pending.split(b"\0", 1)
    return json.loads(message)


def call(method, params=None, session=None):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    os.write(to_chrome_w, json.dumps(message).encode() + b"\0")
    while True:
        reply = receive()
        if reply.get("id") == next_id:
            if "error" in reply:
                raise SystemExit(f"{method}: {reply['error']}")
            return reply.get("result", {})
        events.append(reply)


def wait_for(event, session):
    while True:
        for i, e in enumerate(events):
            if e.get("method") == event and e.get("sessionId") == session:
                del events[: i + 1]
                return e
        events.append(receive())


def evaluate(expression):
    result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    return result.get("result", {}).get("value")


def load(action):
    """Runs `action` (a navigation or a click that navigates) and waits for the page."""
    events.clear()
    action()
    wait_for("Page.loadEventFired", session)


def goto(address):
    load(lambda: call("Page.navigate", {"url": address}, session))


def click(selector):
    load(lambda: evaluate(f"document.querySelector({json.dumps(selector)}).click()"))


widths = {}


def shoot(name):
    """Screenshots of the page at 1280 and 390 px, and how wide it lays out at each: a page
    wider than the window scrolls sideways."""
    for width in (1280, 390):
        call("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}, session)
        widths[f"{name}-{width}"] = evaluate("document.documentElement.scrollWidth")
        shot = call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        with open(os.path.join(out_dir, f"{name}-{width}.png"), "wb") as f:
            f.write(base64.b64decode(shot))
    call("Emulation.clearDeviceMetricsOverride", session=session)


try:
    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    call("Page.enable", session=session)
    call("Runtime.enable", session=session)

    seen = {}
    goto(url + "/")
    seen["before_sign_in"] = evaluate("document.querySelector('h1').textContent")
    # The sign-in form: the token typed into the field and posted, never in a URL.
    load(lambda: evaluate(
        f"document.querySelector('input[name=token]').value = {json.dumps(token)};"
        "document.querySelector('form[action=\"/sign-in\"]').submit()"))
    seen["after_sign_in"] = {"h1": evaluate("document.querySelector('h1').textContent"),
                             "url": evaluate("location.href")}
    shoot("flow-today")
    # Filter to red accounts with the form, as a person would.
    load(lambda: evaluate(
        "document.querySelector('select[name=status]').value = 'red';"
        "document.querySelector('form.filters').submit()"))
    seen["filtered"] = {
        "url": evaluate("location.href"),
        "badges": evaluate("[...document.querySelectorAll('table.work .badge')].map(b => b.className)"),
    }
    click("table.work td.account a")
    seen["account"] = {"h1": evaluate("document.querySelector('h1').textContent"),
                       "chart": evaluate("!!document.querySelector('figure svg polyline')"),
                       "episode": evaluate("document.body.innerText.includes('Open since')")}
    shoot("flow-account")
    click("#drafts ~ table a")
    seen["draft"] = {"h1": evaluate("document.querySelector('h1').textContent"),
                     "text": evaluate("(document.querySelector('pre.draft') || {}).textContent || ''")[:200],
                     "path_shown": evaluate("document.body.innerText.includes('.eml')")}
    shoot("flow-draft")
    click("header form[action='/sign-out'] button")
    seen["after_sign_out"] = evaluate("document.querySelector('h1').textContent")
    goto(url + "/")
    seen["reopened"] = evaluate("document.querySelector('h1').textContent")
    seen["widths"] = widths
    print(json.dumps(seen))
finally:
    chrome.kill()
