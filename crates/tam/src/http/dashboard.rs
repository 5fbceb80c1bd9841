//! The dashboard: server-rendered HTML (minijinja, auto-escaped), no scripts, readable on a
//! phone. `/` is "Today": the tenant's worklist as of its latest scan (escalated by it, then in
//! an episode, then amber and declining), filtered by rep, status, reason, escalation or an
//! account's name or id, a page at a time, all in the URL; the book's counts by status and
//! reason, each rep's alerts against the budget, and the scheduler's recent runs.
//! `/accounts/{id}` shows the score history chart, why the score is what it is, the open
//! tickets, and the drafts and other effects with their delivery state. Every page says the
//! instant it shows and offers sign-out; each reads only indexed rows, so it costs the same on
//! any book.
//!
//! A browser signs in with the tenant's API token through the sign-in form (posted, so the
//! token stays out of URLs) or `?token=` once (for a bookmark or a headless browser); either
//! way it is kept in an HttpOnly, SameSite=Strict cookie. An `Authorization: Bearer` header
//! works too.

use minijinja::{Environment, context};
use serde::Serialize;
use tam_core::comms::ScorePoint;
use tam_core::scoring::{Evidence, Rule};
use tam_core::url::encode_component as encode;
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::{Store, WorkFilter};

const LAYOUT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{% block title %}tam{% endblock %}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:.6rem 1.5rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
.red{color:#cf222e}.amber{color:#9a6700}.green{color:#1a7f37}.muted{color:#656d76}
.badge{display:inline-block;min-width:2.2rem;text-align:center;border-radius:1rem;padding:0 .5rem;color:#fff;font-weight:600}
.badge.red{background:#cf222e;color:#fff}.badge.amber{background:#9a6700;color:#fff}.badge.green{background:#1a7f37;color:#fff}.badge.none{background:#6e7781}
header{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center}header .grow{flex:1}
header form{margin:0}header button{background:none;border:1px solid #8c959f;color:#fff;border-radius:.3rem;padding:.1rem .6rem;cursor:pointer}
header .muted,header .asof{color:#c9d1d9}
.counts{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;margin:.4rem 0}.counts a{text-decoration:none}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:1rem 0;padding:.6rem;background:#f6f8fa;border-radius:.4rem}
form.filters label{display:flex;flex-direction:column;font-size:.85rem}
form.filters input,form.filters select,form.filters button{font:inherit;padding:.2rem .4rem}
.work td{white-space:nowrap}.work td.reason,.work td.account{white-space:normal}
.work .account a{font-weight:600}.why-listed{font-size:.8rem}
.spark{vertical-align:middle}.scroll{overflow-x:auto}
a:focus,button:focus,input:focus,select:focus{outline:3px solid #0969da;outline-offset:1px}
.pager{display:flex;gap:1rem;margin:.6rem 0}
.show-narrow{display:none}
tr.failed{background:#ffebe9}
pre.draft{white-space:pre-wrap;font:inherit;background:#f6f8fa;padding:1rem;border-radius:.4rem;max-width:46rem}
figure{margin:0}figure svg{max-width:100%;height:auto}
@media (max-width:700px){main{padding:.6rem}.work .hide-narrow,.work .rep-email{display:none}.work .show-narrow{display:inline}
main>table{display:block;overflow-x:auto}}
</style></head>
<body><header><a href="/">tam</a> <span class="muted">{{ tenant }}</span>{% if tenant %} <a href="/backtest">backtest</a> <a href="/reports">reports</a>{% endif %}<span class="grow"></span>
{% if as_of %}<span class="asof">as of {{ as_of }}</span>{% endif %}
{% if tenant %}<form method="post" action="/sign-out"><button>Sign out</button></form>{% endif %}</header>
<main>{% block body %}{% endblock %}</main></body></html>"#;

const HOME: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ tenant }} · today{% endblock %}{% block body %}
<h1>Today{% if filter.rep %} · {{ filter.rep }}{% endif %}</h1>
{% if not as_of %}<p class="muted">No scan yet: <code>tam scan</code> or <code>tam serve</code> runs one.</p>{% else %}
<section aria-label="The book">
<div class="counts">{% for c in by_status %}{% if c.link %}<a href="{{ c.link }}">{% else %}<span>{% endif %}<span class="badge {{ c.status }}">{{ c.count }}</span> {{ c.status }}{% if c.link %}</a>{% else %}</span>{% endif %}{% endfor %}
<span class="muted">of {{ accounts }} accounts</span></div>
{% if by_reason %}<div class="counts"><span class="muted">Points taken for:</span>{% for r in by_reason %}<a href="{{ r.link }}">{{ r.words }} ({{ r.count }})</a>{% endfor %}</div>{% endif %}
</section>
<form class="filters" method="get" action="/" role="search">
<label>Rep <input name="rep" value="{{ filter.rep or "" }}" placeholder="rep@company.example" size="22"></label>
<label>Status <select name="status"><option value="">any</option>{% for s in ["red", "amber"] %}<option{% if filter.status == s %} selected{% endif %}>{{ s }}</option>{% endfor %}</select></label>
<label>Reason <select name="reason"><option value="">any</option>{% for r in rules %}<option value="{{ r.rule }}"{% if filter.reason == r.rule %} selected{% endif %}>{{ r.words }}</option>{% endfor %}</select></label>
<label>Escalated <select name="escalated"><option value="">any</option><option value="yes"{% if filter.escalated == "yes" %} selected{% endif %}>yes</option><option value="no"{% if filter.escalated == "no" %} selected{% endif %}>no</option></select></label>
<label>Account <input name="q" value="{{ filter.q or "" }}" placeholder="start of a name or id" size="18"></label>
<button>Filter</button> <a href="/">Clear</a>
</form>
<h2 id="worklist">Worklist ({{ total }})</h2>
<p class="muted">New and worsened escalations first, then open episodes by score, then amber accounts declining.</p>
{% if rows %}<div class="scroll"><table class="work">
<tr><th>Score</th><th>Account</th><th>Trend, 7 days</th><th class="hide-narrow">Recent scans</th><th class="hide-narrow">Top reason</th><th class="hide-narrow">In episode</th><th class="hide-narrow">Draft</th></tr>
{% for r in rows %}<tr>
<td><span class="badge {{ r.status }}" aria-label="score {{ r.score }}, {{ r.status }}">{{ r.score }}</span></td>
<td class="account"><a href="/accounts/{{ r.account_id|path }}">{{ r.name }}</a> <span class="why-listed {{ "red" if r.bucket == 0 else "muted" }}">{{ r.listed }}</span><br><span class="muted">{{ r.rep_name }}<span class="rep-email"> · {{ r.rep_email }}</span></span><span class="show-narrow"><br>{{ r.reason }}</span></td>
<td>{{ r.trend }}</td>
<td class="hide-narrow">{{ r.spark|safe }}</td>
<td class="reason hide-narrow">{{ r.reason }}</td>
<td class="hide-narrow">{{ r.episode_days }}</td>
<td class="hide-narrow">{% if r.draft %}<a href="/accounts/{{ r.account_id|path }}#drafts">{{ r.draft }}</a>{% else %}<span class="muted">–</span>{% endif %}</td>
</tr>{% endfor %}</table></div>
<nav class="pager" aria-label="Pages">{% if prev %}<a href="{{ prev }}">← Previous</a>{% endif %}<span class="muted">{{ first }}–{{ last }} of {{ total }}</span>{% if next %}<a href="{{ next }}">Next →</a>{% endif %}</nav>
{% else %}<p class="muted">Nothing to act on{% if filtered %} with these filters{% endif %}.</p>{% endif %}
{% if rep_history %}<h2>Alerts to {{ filter.rep }} over the last scans</h2>
<table><tr><th>Scan</th><th>Alerts</th><th>In the digest</th></tr>
{% for h in rep_history %}<tr><td>{{ h.at }}</td>{% if h.counted %}<td class="{{ "red" if h.individual > budget else "" }}">{{ h.individual }}</td><td>{{ h.digest }}</td>{% else %}<td colspan="2" class="muted">not counted by the tam that ran this scan</td>{% endif %}</tr>{% endfor %}</table>{% endif %}
<h2>Alerts by rep</h2>
{% if reps %}<table><tr><th>Rep</th><th>Alerts</th><th>In the digest</th><th>Budget a day</th></tr>
{% for r in reps %}<tr><td><a href="/?rep={{ r.rep_email|path }}">{{ r.rep_email }}</a></td><td class="{{ "red" if r.individual > budget else "" }}">{{ r.individual }}</td><td>{{ r.digest }}</td><td>{{ budget }}</td></tr>{% endfor %}</table>
{% elif counted %}<p class="muted">No rep was alerted by this scan.</p>{% else %}<p class="muted">The tam that ran this scan did not count alerts per rep; the next scan will.</p>{% endif %}
{% endif %}
<h2 id="jobs">Scheduled jobs <a class="muted" href="/jobs">all runs</a></h2>
{% if jobs %}<table><tr><th>Slot</th><th>Job</th><th>Outcome</th><th>What happened</th></tr>
{% for j in jobs %}<tr><td>{{ j.slot }}</td><td>{{ j.job }}</td><td class="{{ "red" if j.outcome in ["failed", "missed"] else "" }}">{{ j.outcome }}</td><td>{{ j.detail or "" }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">No job has run yet: <code>tam serve</code> runs them.</p>{% endif %}
{% endblock %}"#;

const ACCOUNT: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ name }}{% endblock %}{% block body %}
<h1>{{ name }} {% if score is not none %}<span class="badge {{ status }}">{{ score }}</span>{% endif %}</h1>
<p class="muted">{{ account_id }} · rep {{ rep_name }} &lt;{{ rep_email }}&gt; · {{ open_count }} open ticket(s) · last heartbeat {{ last_heartbeat or "never" }}</p>
<h2>Score history</h2>
{% if chart %}<figure>{{ chart|safe }}<figcaption class="muted">{{ history }} scan(s); dashed lines at 70 and 40; hover or tab to a point for its reasons.</figcaption></figure>{% else %}<p class="muted">Not scanned yet.</p>{% endif %}
<h2>Why</h2>
{% if why %}<ul>{% for w in why %}<li>-{{ w.points }} {{ w.what }} <span class="muted">({{ w.rule }})</span><br><span class="muted">{% if w.silence %}{{ w.silence }}{% endif %}{% for t in w.evidence %}{% if t.link %}<a href="{{ t.link }}">{{ t.id }}</a>{% else %}{{ t.id }}{% endif %}{% if t.note %} ({{ t.note }}){% endif %}{% if not loop.last %}, {% endif %}{% endfor %}</span></li>{% endfor %}</ul>{% else %}<p class="muted">Nothing takes points off.</p>{% endif %}
<h2>Escalation</h2>
{% if episode %}<p><strong class="red">Open since {{ episode.opened }}</strong> ({{ episode.days }} d): {{ episode.reason }}. Last alert {{ episode.last_alert }}; {{ episode.alerts }} alert(s) sent in this episode; the next reminder, if it stays escalated, from {{ episode.next_reminder }}.</p>
{% elif closed %}<p class="muted">The last episode ({{ closed.reason }}) opened {{ closed.opened }} and closed {{ closed.closed }}.</p>
{% else %}<p class="muted">Never escalated.</p>{% endif %}
<p class="muted">Alert budget of {{ rep_email }}: {{ budget }}.</p>
<h2 id="drafts">Drafts</h2>
{% if drafts %}<table><tr><th>Saved</th><th>Kind</th><th>Subject</th><th>Written by</th></tr>
{% for d in drafts %}<tr><td>{{ d.date }}</td><td>{{ d.kind }}</td><td>{% if d.link %}<a href="{{ d.link }}">{{ d.subject }}</a>{% else %}{{ d.subject }}{% endif %}</td><td>{{ d.generator }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">No draft for this account yet.</p>{% endif %}
<h2>Open tickets</h2>
{% if tickets %}<table><tr><th>Ticket</th><th>Priority</th><th>Status</th><th>Subject</th><th>Age</th></tr>
{% for t in tickets %}<tr><td>{% if t.link %}<a href="{{ t.link }}">{{ t.id }}</a>{% else %}{{ t.id }}{% endif %}</td><td>{{ t.priority }}</td><td>{{ t.status }}</td><td>{{ t.subject }}</td><td>{{ t.age }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">None open.</p>{% endif %}
<h2>What each scan did</h2>
{% if scans %}{% for g in scans %}<h3>{{ g.at }}</h3><table><tr><th>Effect</th><th>State</th><th>Attempts</th><th>Why not, if not</th></tr>
{% for e in g.effects %}<tr><td>{{ e.kind }}</td><td class="{{ "red" if e.state == "failed" else "" }}">{{ e.state }}</td><td>{{ e.attempts }}</td><td>{{ e.detail }}</td></tr>{% endfor %}</table>{% endfor %}
{% else %}<p class="muted">Nothing planned for this account yet.</p>{% endif %}
<h2>Relationship profile</h2>
{% if profile %}{% for section in profile %}<h3>{{ section.title }}</h3><ul>{% for line in section.lines %}<li>{{ line }}</li>{% endfor %}</ul>{% endfor %}{% else %}<p class="muted">No facts recorded yet.</p>{% endif %}
{% if opportunities %}<h3>Opportunities</h3><ul>{% for o in opportunities %}<li>{{ o.title }} <span class="muted">({{ o.status }}, {{ o.source }})</span></li>{% endfor %}</ul>{% endif %}
{% endblock %}"#;

const DRAFT: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ subject }}{% endblock %}{% block body %}
<p><a href="/accounts/{{ account_id|path }}#drafts">← {{ name }}</a></p>
<h1>{{ subject }}</h1>
<p class="muted">{{ kind }} · saved {{ date }} for {{ rep_email }} · to {{ recipients }} · written by {{ generator }} ({{ confidence }} confidence){% if note %} · {{ note }}{% endif %}</p>
<p class="muted">A draft: nothing is sent until the rep sends it from their mailbox.</p>
{% if text %}<pre class="draft">{{ text }}</pre>{% else %}<p class="muted">This draft is in the rep's mailbox only.</p>{% endif %}
{% endblock %}"#;

const JOBS: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ tenant }} · jobs{% endblock %}{% block body %}
<h1>Scheduled jobs</h1>
<p class="muted">The last {{ jobs|length }} runs of <code>tam serve</code>'s jobs for this tenant, newest slot first; {{ failed }} failed or missed.</p>
{% if jobs %}<div class="scroll"><table><tr><th>Slot</th><th>Job</th><th>Outcome</th><th>Worker</th><th>What happened</th></tr>
{% for j in jobs %}<tr{% if j.outcome in ["failed", "missed"] %} class="failed"{% endif %}><td>{{ j.slot }}</td><td>{{ j.job }}</td><td class="{{ "red" if j.outcome in ["failed", "missed"] else "" }}"><strong>{{ j.outcome }}</strong></td><td class="muted">{{ j.worker or "" }}</td><td>{{ j.detail or "" }}</td></tr>{% endfor %}
</table></div>{% else %}<p class="muted">No job has run yet: <code>tam serve</code> runs them.</p>{% endif %}
{% endblock %}"#;

const BACKTEST: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ tenant }} · backtest{% endblock %}{% block body %}
<h1>Backtest</h1>
<p class="muted">The daily scan replayed at 07:00 over this tenant's tickets and heartbeats, for its current rules and
the default grid (the red threshold and the aged-ticket age), each set's alerts judged against the escalations that
really happened. Nothing is written. <code>tam backtest</code> takes a grid of your own.</p>
<form class="filters" method="get" action="/backtest">
<label>From <input type="date" name="from" value="{{ from }}"></label>
<label>To <input type="date" name="to" value="{{ to }}"></label>
<label>Horizon (days) <input type="number" name="horizon" min="1" max="60" value="{{ horizon }}"></label>
<button>Replay</button></form>
{% if error %}<p class="red">{{ error }}</p>{% endif %}
{% if report %}
<p>{{ report.real_escalations }} real escalation(s) from {{ report.from }} to {{ report.to }}; an alert foresees one within {{ report.horizon_days }} days.
{% if not report.real_escalations %}<strong>No real escalation in this window:</strong> recall and lead time cannot be measured.{% endif %}</p>
<figure>{{ svg|safe }}</figure>
<div class="scroll"><table><tr><th>Set</th><th>Alerts</th><th>Precision</th><th>Recall</th><th>Lead median</th><th>Lead p90</th><th>Per rep-week</th><th>Targets</th></tr>
{% for s in report.sets %}<tr><td>{% if s.name == report.suggested %}<strong>{{ s.name }}</strong>{% else %}{{ s.name }}{% endif %}</td><td>{{ s.alerts }}</td>
<td>{{ pct(s.precision) }}</td><td>{{ pct(s.recall) }}</td><td>{{ days(s.lead_days.median) }}</td><td>{{ days(s.lead_days.p90) }}</td>
<td>{{ days(s.alerts_per_rep_week) }}</td><td>{{ "met" if s.meets_targets else "" }}</td></tr>{% endfor %}
</table></div>
{% if report.suggested %}<h2>Suggested: {{ report.suggested }}</h2>
{% if toml %}<p>Meets precision 70% and recall 60% with the fewest alerts. In <code>tam.toml</code>:</p><pre class="draft">{{ toml }}</pre>
{% else %}<p>The current rules meet the targets with the fewest alerts.</p>{% endif %}
{% else %}<p class="muted">No set reaches precision 70% and recall 60% in this window.</p>{% endif %}
{% endif %}
{% endblock %}"#;

const REPORTS: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ tenant }} · reports{% endblock %}{% block body %}
<h1>What reps made of tam's drafts</h1>
<p class="muted">Drafts saved since {{ since }}, by kind and writer: sent as written, sent after an edit, deleted, or still
drafts (unsent after 30 days stays a draft). Accepted is sent ÷ decided (sent or deleted); changed is the mean share of
words reps changed before sending. <code>tam report drafts</code> prints the same.</p>
{% if drafts.rows %}<div class="scroll"><table><tr><th>Kind</th><th>Writer</th><th>Drafts</th><th>Still drafts</th><th>Sent as written</th><th>Sent edited</th><th>Deleted</th><th>Unknown</th><th>Accepted</th><th>Changed</th></tr>
{% for r in drafts.rows %}<tr{% if r.kind == "all" or r.generator == "all" %} class="total"{% endif %}><td>{{ r.kind }}</td><td>{{ r.generator }}</td><td>{{ r.drafts }}</td><td>{{ r.still_draft }}</td><td>{{ r.sent_unchanged }}</td><td>{{ r.sent_edited }}</td><td>{{ r.deleted }}</td><td>{{ r.unknown }}</td><td>{{ pct(r.acceptance_rate) }}</td><td>{{ pct(r.mean_changed) }}</td></tr>{% endfor %}
</table></div>{% else %}<p class="muted">No draft saved since {{ since }}.</p>{% endif %}
{% if drafts.note %}<p class="muted">{{ drafts.note }}</p>{% endif %}
<h2>Were the alerts useful?</h2>
<p class="muted">Votes since {{ since }} from the "useful" / "not useful" links each alert carries (<code>tam report alerts</code>).</p>
{% if alerts.votes %}{% for section in [("Escalation reason", alerts.by_reason), ("Rep", alerts.by_rep)] %}
<div class="scroll"><table><tr><th>{{ section[0] }}</th><th>Useful</th><th>Not useful</th><th>Usefulness</th></tr>
{% for u in section[1] %}<tr><td>{{ u.by|replace("_", " ") }}</td><td>{{ u.useful }}</td><td>{{ u.not_useful }}</td><td>{{ pct(u.usefulness) }}</td></tr>{% endfor %}
</table></div>{% endfor %}{% else %}<p class="muted">No vote yet.</p>{% endif %}
{% endblock %}"#;

const FEEDBACK: &str = r#"{% extends "layout.html" %}{% block title %}tam · alert feedback{% endblock %}{% block body %}
<h1>{{ title }}</h1>
{% if about %}<p>The alert to {{ about.rep }} about <strong>{{ about.account }}</strong> ({{ about.reason }}).</p>{% endif %}
<p>{{ message }}</p>
{% if confirm %}<form method="post" action="/feedback"><input type="hidden" name="token" value="{{ token }}">
<button>Record “{{ confirm }}”</button></form>
<p class="muted">Nothing is recorded until you press the button: a link opened by a mail scanner does not vote.</p>{% endif %}
{% endblock %}"#;

const SIGN_IN: &str = r#"{% extends "layout.html" %}{% block title %}tam · sign in{% endblock %}{% block body %}
<h1>Sign in</h1><p>{{ why }}</p>
<form method="post" action="/sign-in"><label>Your tenant's API token <input name="token" type="password" size="40"></label> <button>Open</button></form>
{% endblock %}"#;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("layout.html", LAYOUT).expect("the layout template parses");
    env.add_template("home.html", HOME).expect("the home template parses");
    env.add_template("account.html", ACCOUNT).expect("the account template parses");
    env.add_template("sign_in.html", SIGN_IN).expect("the sign-in template parses");
    env.add_template("draft.html", DRAFT).expect("the draft template parses");
    env.add_template("jobs.html", JOBS).expect("the jobs template parses");
    env.add_template("backtest.html", BACKTEST).expect("the backtest template parses");
    env.add_template("reports.html", REPORTS).expect("the reports template parses");
    env.add_template("feedback.html", FEEDBACK).expect("the feedback template parses");
    env.add_function("pct", |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| format!("{:.0}%", x * 100.0)));
    env.add_function("days", |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| format!("{x:.1}")));
    env.add_filter("path", |s: String| -> String { encode(&s) });
    env
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, String> {
    environment().get_template(name).and_then(|t| t.render(ctx)).map_err(|e| format!("rendering {name}: {e}"))
}

/// What the "Today" page is asked for, as its URL carries it: a link to a filtered view is
/// a view anyone with the tenant's token can open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TodayQuery {
    /// Accounts of this rep (their address).
    pub rep: Option<String>,
    /// `red` or `amber`.
    pub status: Option<String>,
    /// A rule's name.
    pub reason: Option<String>,
    /// `yes` (in an episode) or `no`.
    pub escalated: Option<String>,
    /// Part of an account's name or id.
    pub q: Option<String>,
    /// The page, from 1.
    pub page: u64,
}

impl TodayQuery {
    /// The query from the URL's parameters; an unknown value of a fixed choice is ignored.
    pub fn from_params(params: &std::collections::HashMap<String, String>) -> TodayQuery {
        let text = |k: &str| params.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let one_of = |k: &str, allowed: &[&str]| text(k).filter(|v| allowed.contains(&v.as_str()));
        let rules: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        TodayQuery {
            rep: text("rep").map(|r| r.to_lowercase()),
            status: one_of("status", &["red", "amber", "green"]),
            reason: one_of("reason", &rules),
            escalated: one_of("escalated", &["yes", "no"]),
            q: text("q"),
            page: text("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
        }
    }

    fn filter(&self) -> WorkFilter {
        WorkFilter {
            rep: self.rep.clone(),
            status: self.status.clone(),
            rule: self.reason.clone(),
            escalated: self.escalated.as_deref().map(|e| e == "yes"),
            search: self.q.clone(),
        }
    }

    /// The URL of this view at `page`: only the filters set, so a shared link reads plainly.
    pub fn link(&self, page: u64) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("rep", &self.rep),
            ("status", &self.status),
            ("reason", &self.reason),
            ("escalated", &self.escalated),
            ("q", &self.q),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={}", encode(v)));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() { "/".to_owned() } else { format!("/?{}", parts.join("&")) }
    }
}

/// Rows of the worklist a page shows.
const PAGE: u64 = 25;

/// An instant in a page's lists, to the minute.
fn minute(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

/// A scan's instant as every page's header shows it.
fn scan_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The instant of the tenant's latest scan, for a page's header.
fn latest_scan_time(store: &Store, tenant: &TenantId) -> Result<Option<String>, String> {
    Ok(store.latest_scan(tenant).map_err(|e| e.to_string())?.map(|s| scan_time(s.as_of)))
}

/// A row of scores as a small line, oldest to newest, 0 at the bottom and 100 at the top.
fn sparkline(scores: &[(Timestamp, u8)]) -> String {
    if scores.len() < 2 {
        return String::new();
    }
    let step = 80.0 / (scores.len() - 1) as f64;
    let points: Vec<String> = scores
        .iter()
        .rev()
        .enumerate()
        .map(|(i, (_, score))| format!("{:.1},{:.1}", i as f64 * step, 20.0 - f64::from(*score) / 5.0))
        .collect();
    let words: Vec<String> = scores.iter().rev().map(|(_, s)| s.to_string()).collect();
    format!(
        r##"<svg class="spark" width="80" height="20" viewBox="0 -1 80 22" role="img" aria-label="scores {}"><polyline fill="none" stroke="#57606a" stroke-width="1.5" points="{}"/></svg>"##,
        words.join(", "),
        points.join(" ")
    )
}

/// The trend's arrow, with the change over the week when an older scan is known.
fn trend_cell(trend: &str, scores: &[(Timestamp, u8)], as_of: Timestamp) -> String {
    let arrow = match trend {
        "improving" => "▲",
        "declining" => "▼",
        "stable" => "●",
        _ => "–",
    };
    let week_ago = as_of.checked_sub(tam_core::SignedDuration::from_hours(24 * 7)).unwrap_or(as_of);
    let now = scores.first().map(|(_, s)| i32::from(*s));
    let then = scores.iter().find(|(at, _)| *at <= week_ago).map(|(_, s)| i32::from(*s));
    match (now, then) {
        (Some(now), Some(then)) => format!("{arrow} {:+}", now - then),
        _ => format!("{arrow} {trend}"),
    }
}

/// The tenant's "Today": its worklist as of its latest scan, filtered as `query` asks, with the
/// book's counts and each rep's alerts against the budget of `alert_budget` a day.
pub fn today(store: &Store, tenant: &TenantId, alert_budget: u32, query: &TodayQuery) -> Result<String, String> {
    let fail = |e: tam_store::StoreError| e.to_string();
    let jobs = store.job_runs(Some(tenant), 12).map_err(fail)?;
    let jobs = minijinja::Value::from(minijinja::value::Serde(&jobs));
    let rules: Vec<minijinja::Value> =
        Rule::ALL.iter().map(|r| context! { rule => r.as_str(), words => r.words() }).collect();
    let filter = minijinja::Value::from(minijinja::value::Serde(query));
    let Some(scan) = store.latest_scan(tenant).map_err(fail)? else {
        return render("home.html", context! { tenant => tenant.as_str(), filter, rules, jobs });
    };
    let as_of = scan.as_of;
    let (found, total) = store.worklist(tenant, as_of, &query.filter(), (query.page - 1) * PAGE, PAGE).map_err(fail)?;
    let mut rows = Vec::with_capacity(found.len());
    for r in found {
        let scores = store.recent_scores(tenant, &r.account_id, as_of, 10).map_err(fail)?;
        let draft = match r.episode_opened_at {
            Some(opened) => store.waiting_draft(tenant, &r.account_id, opened).map_err(fail)?,
            None => None,
        };
        let listed = match (r.bucket, r.trigger.as_deref()) {
            (0, Some(trigger)) => format!("escalated: {}", trigger.replace('_', " ")),
            (1, _) => "in episode".to_owned(),
            _ => "amber, declining".to_owned(),
        };
        let episode_days = r.episode_opened_at.map_or_else(
            || "–".to_owned(),
            |opened| format!("{} d", as_of.duration_since(opened).as_hours().max(0) / 24),
        );
        rows.push(context! {
            bucket => r.bucket, listed, account_id => r.account_id, name => r.name, rep_name => r.rep_name,
            rep_email => r.rep_email, score => r.score, status => r.status,
            trend => trend_cell(&r.trend, &scores, as_of), spark => sparkline(&scores),
            reason => r.deductions.first().map_or_else(|| "–".to_owned(), |d| d.headline()),
            episode_days,
            draft => draft.map(|d| match d.state.as_str() { "delivered" => "saved".to_owned(), other => other.to_owned() }),
        });
    }
    let s = &scan.summary;
    let by_status: Vec<minijinja::Value> = [("red", s.red), ("amber", s.amber), ("green", s.green)]
        .into_iter()
        .map(|(status, count)| {
            let link = (status != "green")
                .then(|| TodayQuery { status: Some(status.to_owned()), page: 1, ..TodayQuery::default() }.link(1));
            context! { status, count, link }
        })
        .collect();
    let by_reason: Vec<minijinja::Value> = Rule::ALL
        .iter()
        .filter_map(|r| {
            let count = *s.reasons.as_ref()?.get(r.as_str())?;
            let link = TodayQuery { reason: Some(r.as_str().to_owned()), page: 1, ..TodayQuery::default() }.link(1);
            Some(context! { words => r.words(), count, link })
        })
        .collect();
    let counted = s.alerts_by_rep.is_some();
    let reps: Vec<minijinja::Value> = s
        .alerts_by_rep
        .iter()
        .flatten()
        .map(|(rep, n)| context! { rep_email => rep, individual => n.individual, digest => n.digest })
        .collect();
    // A rep's page: their accounts (the worklist above) and what each recent scan sent them.
    let rep_history: Vec<minijinja::Value> = match &query.rep {
        Some(rep) => store
            .recent_scans(tenant, 14)
            .map_err(fail)?
            .into_iter()
            .map(|scan| {
                let n = scan.summary.alerts_by_rep.as_ref().map(|by_rep| by_rep.get(rep).copied().unwrap_or_default());
                let at = minute(scan.as_of);
                context! { at, counted => n.is_some(), individual => n.map(|n| n.individual), digest => n.map(|n| n.digest) }
            })
            .collect(),
        None => Vec::new(),
    };
    let shown = rows.len() as u64;
    let first = if shown == 0 { 0 } else { (query.page - 1) * PAGE + 1 };
    let last = (query.page - 1) * PAGE + shown;
    let filtered = query.filter() != WorkFilter::default();
    render(
        "home.html",
        context! {
            tenant => tenant.as_str(), as_of => scan_time(as_of), filter, rules, jobs, rows, total,
            first, last, filtered, by_status, by_reason, reps, counted, rep_history, budget => alert_budget, accounts => s.accounts,
            prev => (query.page > 1).then(|| query.link(query.page - 1)),
            next => (last < total).then(|| query.link(query.page + 1)),
        },
    )
}

/// What an account's page takes from `tam.toml`.
#[derive(Debug, Clone, Copy)]
pub struct AccountPages<'a> {
    /// The tenant's escalation rules: the cool-down, for the next reminder, and the alert budget.
    pub escalation: &'a tam_core::escalation::EscalationConfig,
    /// Where a ticket's page is.
    pub tickets: &'a crate::config::TicketsSection,
}

/// One account, or `None` when the tenant has no such account.
pub fn account(
    store: &Store,
    tenant: &TenantId,
    id: &AccountId,
    pages: &AccountPages<'_>,
    now: Timestamp,
) -> Result<Option<String>, String> {
    let AccountPages { escalation, tickets: tickets_at } = *pages;
    let cool_down_days = escalation.cool_down_days;
    let fail = |e: tam_store::StoreError| e.to_string();
    let Some(row) = store.account(tenant, id).map_err(fail)? else { return Ok(None) };
    let as_of = latest_scan_time(store, tenant)?;
    let mut history = store.snapshots(tenant, id, 90).map_err(fail)?;
    history.reverse();
    let points: Vec<ScorePoint> = history.iter().map(|h| ScorePoint { as_of: h.as_of, score: h.score }).collect();
    // Each point says, on hover or focus, when it was scored and why.
    let notes: Vec<String> = history
        .iter()
        .map(|h| {
            let why: Vec<String> = h.deductions.iter().map(|d| d.headline()).collect();
            let why = if why.is_empty() { "nothing takes points off".to_owned() } else { why.join("; ") };
            format!("{}: {} ({}); {why}", h.as_of.strftime("%Y-%m-%d"), h.score, h.status.as_str())
        })
        .collect();
    let chart = match (points.first(), points.last()) {
        (Some(first), Some(last)) => Some(tam_writer::score_chart_noted(&points, &notes, first.as_of, last.as_of)),
        _ => None,
    };
    let latest = history.last();
    // Each reason with its points first (as `tam explain` shows them), then its evidence: the
    // tickets, each linked to its page when `[tickets] url` is set, or the silence.
    let links = tickets_at.links();
    let link = |id: &str| links.as_ref().map(|l| l.url(id));
    let ticket = |id: &str, note: String| context! { id, note, link => link(id) };
    let why: Vec<minijinja::Value> = latest
        .map(|s| {
            s.deductions
                .iter()
                .map(|d| {
                    let headline = d.headline();
                    let what = headline.rsplit_once(", -").map_or(headline.as_str(), |(what, _)| what).to_owned();
                    let (evidence, silence) = match &d.evidence {
                        Evidence::AgedTickets { tickets, .. } => (
                            tickets
                                .iter()
                                .map(|t| ticket(t.id.as_str(), format!("{}, open {} h", t.priority, t.age_hours)))
                                .collect(),
                            None,
                        ),
                        Evidence::OpenVolume { ticket_ids, .. } => {
                            (ticket_ids.iter().map(|t| ticket(t.as_str(), String::new())).collect(), None)
                        }
                        Evidence::Silence { last_heartbeat, .. } => {
                            (Vec::new(), Some(format!("last heartbeat {}", minute(*last_heartbeat))))
                        }
                    };
                    context! { points => d.points, rule => d.rule.as_str(), what, evidence, silence }
                })
                .collect()
        })
        .unwrap_or_default();
    let tickets: Vec<minijinja::Value> = store
        .open_ticket_facts(tenant, id, now)
        .map_err(fail)?
        .into_iter()
        .map(|t| {
            let days = t.age_hours / 24.0;
            let age = if days >= 1.0 { format!("{days:.0} d") } else { format!("{:.0} h", t.age_hours) };
            context! { id => t.id.as_str(), link => link(t.id.as_str()), priority => t.priority.as_str(), status => t.status.as_str(), subject => t.subject, age }
        })
        .collect();
    let effects = store.account_effects(tenant, id.as_str(), 60).map_err(fail)?;
    // Grouped by the scan (or task) that planned them, newest first.
    let mut scans: Vec<(Timestamp, Vec<minijinja::Value>)> = Vec::new();
    for r in &effects {
        let detail = match r.state.as_str() {
            "failed" | "pending" => {
                r.last_error.clone().unwrap_or_else(|| format!("due {}", minute(r.next_attempt_at)))
            }
            _ => String::new(),
        };
        let row = context! { kind => r.kind.as_str(), state => r.state.as_str(), attempts => r.attempts, detail };
        match scans.last_mut() {
            Some((at, rows)) if *at == r.created_at => rows.push(row),
            _ => scans.push((r.created_at, vec![row])),
        }
    }
    let scans: Vec<minijinja::Value> =
        scans.into_iter().map(|(at, effects)| context! { at => minute(at), effects }).collect();
    let mut drafts = Vec::new();
    for r in effects.iter().filter(|r| r.kind == tam_core::outbox::EffectKind::Draft) {
        let saved = store.draft(tenant, r.key.as_str()).map_err(fail)?;
        let link =
            saved.as_ref().map(|_| format!("/accounts/{}/draft?key={}", encode(id.as_str()), encode(r.key.as_str())));
        drafts.push(context! {
            date => minute(saved.as_ref().map_or(r.created_at, |d| d.created_at)),
            kind => saved.as_ref().map_or_else(|| "draft".to_owned(), |d| d.kind.replace('_', " ")),
            subject => saved.as_ref().map_or_else(|| format!("({})", r.state.as_str()), |d| d.subject.clone()),
            generator => saved.as_ref().map_or("", |d| d.generator.as_str()),
            link,
        });
    }
    let episodes = store.episodes(tenant, id).map_err(fail)?;
    let cool_down = i64::from(cool_down_days);
    let alerts = |since: Timestamp| {
        effects.iter().filter(|r| r.kind == tam_core::outbox::EffectKind::EmailAlert && r.created_at >= since).count()
    };
    let episode = episodes.iter().find(|e| e.closed_at.is_none()).map(|e| {
        let next = e
            .last_alert_at
            .checked_add(tam_core::SignedDuration::from_hours(24 * cool_down))
            .unwrap_or(e.last_alert_at);
        context! {
            opened => minute(e.opened_at), reason => e.reason.replace('_', " "), last_alert => minute(e.last_alert_at),
            days => now.duration_since(e.opened_at).as_hours().max(0) / 24, alerts => alerts(e.opened_at),
            next_reminder => minute(next),
        }
    });
    let closed = episodes.first().filter(|e| e.closed_at.is_some()).map(|e| {
        context! { opened => minute(e.opened_at), reason => e.reason.replace('_', " "), closed => e.closed_at.map(minute) }
    });
    let profile: Vec<minijinja::Value> = tam_agent::profile::document(store, tenant, id)
        .map_err(fail)?
        .map(|doc| {
            // The page shows the drafts and the health itself; a draft's line would name where the
            // server keeps it.
            let shown = |s: &tam_core::comms::ProfileSection| {
                !s.lines.is_empty() && !["Communication History", "Health Dashboard"].contains(&s.title.as_str())
            };
            doc.sections.into_iter().filter(shown).map(|s| context! { title => s.title, lines => s.lines }).collect()
        })
        .unwrap_or_default();
    let opportunities: Vec<minijinja::Value> = store
        .opportunities(tenant, id)
        .map_err(fail)?
        .into_iter()
        .map(|o| context! { title => o.title, status => o.status, source => o.source })
        .collect();
    render(
        "account.html",
        context! {
            tenant => tenant.as_str(), as_of, account_id => id.as_str(), name => row.name, rep_name => row.rep_name, rep_email => row.rep_email.as_str(),
            last_heartbeat => row.last_heartbeat.map(|t| t.to_string()), open_count => row.open_tickets,
            score => latest.map(|s| s.score), status => latest.map(|s| s.status.as_str()),
            chart, history => points.len(), why, tickets, scans, drafts, episode, closed, profile, opportunities,
            budget => alert_budget(store, tenant, &row.rep_email, escalation, latest.map(|s| s.as_of))?,
        },
    )
    .map(Some)
}

/// The rep's alert budget as of the latest scan, in words (as `tam explain` says it).
fn alert_budget(
    store: &Store,
    tenant: &TenantId,
    rep: &tam_core::Email,
    escalation: &tam_core::escalation::EscalationConfig,
    as_of: Option<Timestamp>,
) -> Result<String, String> {
    let as_of = as_of.unwrap_or_else(Timestamp::now);
    let budget = tam_app::views::alert_budget(store, tenant, rep, escalation, as_of).map_err(|e| e.to_string())?;
    Ok(budget.words())
}

/// One draft of the account, readable: its text as the customer would read it (never where
/// it is kept), or `None` when the account has no such draft.
pub fn draft(store: &Store, tenant: &TenantId, id: &AccountId, key: &str) -> Result<Option<String>, String> {
    let fail = |e: tam_store::StoreError| e.to_string();
    let Some(row) = store.account(tenant, id).map_err(fail)? else { return Ok(None) };
    let Some(d) = store.draft(tenant, key).map_err(fail)?.filter(|d| d.account_id == id.as_str()) else {
        return Ok(None);
    };
    // The embedded mailbox keeps the message in the home; another keeps it in the rep's mailbox.
    let text = std::fs::read_to_string(&d.path).ok().and_then(|m| tam_core::mime::text_of(&m));
    let as_of = latest_scan_time(store, tenant)?;
    render(
        "draft.html",
        context! {
            tenant => tenant.as_str(), as_of, account_id => id.as_str(), name => row.name, subject => d.subject,
            kind => d.kind.replace('_', " "), date => minute(d.created_at),
            rep_email => d.rep_email, recipients => d.recipients.join(", "), generator => d.generator,
            confidence => d.confidence, note => d.note, text,
        },
    )
    .map(Some)
}

/// The scheduler's job history of the tenant, failures marked.
pub fn jobs(store: &Store, tenant: &TenantId) -> Result<String, String> {
    let fail = |e: tam_store::StoreError| e.to_string();
    let runs = store.job_runs(Some(tenant), 200).map_err(fail)?;
    let failed = runs.iter().filter(|r| r.outcome == "failed" || r.outcome == "missed").count();
    let as_of = latest_scan_time(store, tenant)?;
    let jobs = minijinja::Value::from(minijinja::value::Serde(&runs));
    render("jobs.html", context! { tenant => tenant.as_str(), as_of, jobs, failed })
}

/// The feedback page of a form that could not be read.
pub fn feedback_unreadable() -> String {
    render("feedback.html", context! { title => "This form could not be read", message => "Nothing was recorded: open the link from the alert again." })
        .unwrap_or_else(|e| e)
}

/// The page a feedback link opens (`vote: false`: it asks to confirm, and records nothing) or
/// its form posts to (`vote: true`: it records the vote, once), with its HTTP status.
pub fn feedback(
    store: &mut Store,
    links: Option<&tam_core::feedback::LinkMaker>,
    token: &str,
    vote: bool,
    now: Timestamp,
) -> Result<(u16, String), String> {
    use tam_core::feedback::{Ballot, LinkError};
    let refused = |status: u16, title: &str, message: String| {
        render("feedback.html", context! { title, message }).map(|html| (status, html))
    };
    let opened = Ballot::open(token, |tenant| links.and_then(|l| l.secret(tenant)), now);
    let ballot = match opened {
        Ok(ballot) => ballot,
        // A tenant without a secret reads as a forged link: the page tells no one which
        // tenants take feedback.
        Err(LinkError::Forged | LinkError::NoSecret) => {
            return refused(403, "This link does not work", format!("{}: nothing was recorded.", LinkError::Forged));
        }
        Err(e @ LinkError::Expired(_)) => {
            return refused(410, "This link has expired", format!("{e}: feedback links work for 30 days."));
        }
    };
    let fail = |e: tam_store::StoreError| e.to_string();
    let account = AccountId::parse("account", &ballot.account)
        .ok()
        .and_then(|id| store.account(&ballot.tenant, &id).ok().flatten())
        .map_or_else(|| ballot.account.clone(), |row| row.name);
    let about = context! { rep => ballot.rep.as_str(), account, reason => ballot.reason.replace('_', " ") };
    let earlier =
        if vote { store.record_vote(&ballot, now).map_err(fail)? } else { store.vote_of(&ballot).map_err(fail)? };
    if let Some((was, at)) = earlier {
        let message = format!(
            "This alert was already marked {} on {}; a vote counts once, and this one was not recorded.",
            was.words(),
            at.strftime("%Y-%m-%d %H:%M UTC")
        );
        let html = render("feedback.html", context! { title => "Already recorded", about, message })?;
        return Ok((409, html));
    }
    let words = ballot.vote.words();
    let html = if vote {
        let message = format!("Thank you: this alert is recorded as {words}. It helps tune which alerts reach you.");
        render("feedback.html", context! { title => "Recorded", about, message })?
    } else {
        let message = format!("You are about to mark this alert {words}.");
        render(
            "feedback.html",
            context! { title => "Was this alert useful?", about, message, confirm => words, token },
        )?
    };
    Ok((200, html))
}

/// The tenant's reports: what reps made of the drafts saved in the last 90 days, and what they
/// said of their alerts.
pub fn reports(store: &Store, tenant: &TenantId, now: Timestamp) -> Result<String, String> {
    let since = now.checked_sub(tam_core::SignedDuration::from_hours(24 * 90)).map_err(|e| e.to_string())?;
    let drafts = tam_app::fates::report(store, tenant, since).map_err(|e| e.to_string())?;
    let as_of = latest_scan_time(store, tenant)?;
    let drafts = minijinja::Value::from(minijinja::value::Serde(&drafts));
    let alerts = tam_app::feedback::report(store, tenant, since).map_err(|e| e.to_string())?;
    let alerts = minijinja::Value::from(minijinja::value::Serde(&alerts));
    let since = since.strftime("%Y-%m-%d").to_string();
    render("reports.html", context! { tenant => tenant.as_str(), as_of, drafts, alerts, since })
}

/// What the backtest page replays: the window and the horizon, as the form sends them.
#[derive(Debug, Clone, Default)]
pub struct BacktestQuery {
    /// The first day, if asked.
    pub from: Option<String>,
    /// The last day, if asked.
    pub to: Option<String>,
    /// The horizon in days, if asked.
    pub horizon: Option<String>,
}

/// The tenant's backtest page: the form, and once a window is asked for, the replay of the
/// current rules and the default grid over it (the last four weeks are offered).
pub fn backtest(
    store: &Store,
    tenant: &TenantId,
    rules: &tam_agent::scan::ScanConfig,
    zone: &jiff::tz::TimeZone,
    query: &BacktestQuery,
    own: Option<&TenantId>,
    now: Timestamp,
) -> Result<String, String> {
    let today = now.to_zoned_datetime(zone.clone()).date();
    let default_from = today.checked_sub(jiff::Span::new().days(28)).unwrap_or(today);
    let from = query.from.clone().unwrap_or_else(|| default_from.to_string());
    let to = query.to.clone().unwrap_or_else(|| today.to_string());
    let horizon = query.horizon.clone().unwrap_or_else(|| "14".to_owned());
    let as_of = latest_scan_time(store, tenant)?;
    let page = |report: Option<minijinja::Value>, svg: String, toml: String, error: Option<String>| {
        render(
            "backtest.html",
            context! { tenant => tenant.as_str(), as_of => as_of.clone(), from => &from, to => &to, horizon => &horizon, report, svg, toml, error },
        )
    };
    if query.from.is_none() && query.to.is_none() {
        return page(None, String::new(), String::new(), None);
    }
    let current = tam_app::backtest::current_rules(rules);
    let plan = match backtest_plan(&from, &to, &horizon, &current) {
        Ok(plan) => plan,
        Err(why) => return page(None, String::new(), String::new(), Some(why)),
    };
    let report = match tam_app::backtest::run(store, tenant, &current, zone, &plan, now, |_| {}) {
        Ok(r) => r,
        Err(tam_app::backtest::BacktestError::Window(why)) => {
            return page(None, String::new(), String::new(), Some(why));
        }
        Err(e) => return Err(e.to_string()),
    };
    let svg = tam_app::backtest::svg(&report);
    let toml = report
        .suggested_set()
        .map(|set| tam_app::backtest::toml_lines(&set.rules, &current, own).join("\n"))
        .unwrap_or_default();
    page(Some(minijinja::Value::from(minijinja::value::Serde(&report))), svg, toml, None)
}

/// The plan a backtest form asks for, or what is wrong with it.
fn backtest_plan(
    from: &str,
    to: &str,
    horizon: &str,
    current: &tam_core::backtest::RuleSet,
) -> Result<tam_app::backtest::Plan, String> {
    let date = |field: &str, raw: &str| -> Result<jiff::civil::Date, String> {
        raw.trim().parse().map_err(|_| format!("{field}: {raw:?} is not a date (YYYY-MM-DD)"))
    };
    let (from, to) = (date("From", from)?, date("To", to)?);
    let span = to.since(from).map_err(|e| e.to_string())?.get_days();
    if !(0..=366).contains(&span) {
        return Err("The window is from 1 to 367 days, the first day before the last.".to_owned());
    }
    let horizon_days = match horizon.trim().parse::<u32>() {
        Ok(n @ 1..=60) => n,
        _ => return Err(format!("Horizon: {horizon:?} is not a number of days from 1 to 60")),
    };
    Ok(tam_app::backtest::Plan::with_default_grid(from, to, horizon_days, current))
}

/// A page that says the server is busy with something a moment long.
pub fn busy(why: &str) -> String {
    render("sign_in.html", context! { tenant => "", why })
        .map_or_else(|e| e, |page| page.replace("<h1>Sign in</h1>", "<h1>Busy</h1>"))
}

/// The sign-in page, saying why it is shown.
pub fn sign_in(why: &str) -> String {
    render("sign_in.html", context! { tenant => "", why }).unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    /// WCAG's contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
                if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn every_text_colour_of_the_layout_reads_on_its_background() {
        // The layout's colour pairs: text on white, white on each badge, the header's text.
        let pairs = [
            ("#1f2328", "#ffffff"),
            ("#656d76", "#ffffff"),
            ("#cf222e", "#ffffff"),
            ("#9a6700", "#ffffff"),
            ("#1a7f37", "#ffffff"),
            ("#0969da", "#ffffff"),
            ("#ffffff", "#6e7781"),
            ("#c9d1d9", "#24292f"),
        ];
        let layout = super::LAYOUT;
        for (fg, bg) in pairs {
            assert!(layout.contains(fg) || fg == "#ffffff" || fg == "#0969da", "{fg} is the layout's");
            assert!(contrast(fg, bg) >= 4.5, "{fg} on {bg}: {:.2}", contrast(fg, bg));
        }
        for badge in ["#cf222e", "#9a6700", "#1a7f37", "#6e7781"] {
            assert!(layout.contains(&format!("background:{badge}")), "badge {badge}");
        }
    }
}
