# The seed's scorer (HealthScorer.compute_score in the research note) as the stored scan it was
# meant for, on the same book as `tam bench`: each account's open tickets, scored, one row
# stored per account (in a scratch database). `store` mode reads tam's store, one ticket query
# per account as `get_open_tickets(account_id)` did; `book` mode reads the import file itself.
import json, sqlite3, sys, time
from datetime import datetime

mode, source, scratch, tenant, as_of_text = sys.argv[1:6]
started = time.perf_counter()
as_of = datetime.fromisoformat(as_of_text.replace("Z", "+00:00"))


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def score(urgent_ages_days, open_count, hours_since_beat):
    score = 100
    if max(urgent_ages_days, default=0.0) > 3:
        score -= len(urgent_ages_days) * 20
    score -= max(0, open_count - 5) * 5
    if hours_since_beat is not None:
        if hours_since_beat > 144:
            score -= 30
        elif hours_since_beat > 72:
            score -= 15
    score = max(0, min(100, score))
    return score, "Red" if score < 40 else "Amber" if score < 70 else "Green"


rows = []
if mode == "store":
    at = int(as_of.timestamp()) * 10**9
    c = sqlite3.connect(source)
    accounts = c.execute("select id, last_heartbeat from accounts where tenant_id = ? order by id", (tenant,)).fetchall()
    for account, beat in accounts:
        tickets = c.execute(
            "select priority, created_at from tickets where tenant_id = ? and account_id = ?"
            " and status in ('open', 'pending') and created_at <= ?", (tenant, account, at)).fetchall()
        urgent = [(at - t[1]) / 86400e9 for t in tickets if t[0] <= 2]
        hours = None if beat is None else (at - beat) / 3600e9
        rows.append((tenant, account, as_of_text) + score(urgent, len(tickets), hours))
    c.close()
else:
    beats, tickets = {}, {}
    with open(source) as f:
        for line in f:
            r = json.loads(line)
            if r["record"] == "account":
                beats[r["id"]] = r.get("last_heartbeat")
            elif r["record"] == "ticket" and r.get("status") in ("open", "pending"):
                tickets.setdefault(r["account_id"], []).append(r)
    for account, beat in beats.items():
        mine = [t for t in tickets.get(account, []) if instant(t["created_at"]) <= as_of]
        urgent = [(as_of - instant(t["created_at"])).total_seconds() / 86400 for t in mine if t["priority"] in ("P1", "P2")]
        hours = None if beat is None else (as_of - instant(beat)).total_seconds() / 3600
        rows.append((tenant, account, as_of_text) + score(urgent, len(mine), hours))
out = sqlite3.connect(scratch)
out.execute("pragma journal_mode=wal")
out.execute("pragma synchronous=normal")
out.execute("create table if not exists snapshots (tenant_id, account_id, as_of, score, status,"
            " primary key (tenant_id, account_id, as_of)) without rowid")
out.executemany("insert or replace into snapshots values (?, ?, ?, ?, ?)", rows)
out.commit()
out.close()
print(f"{len(rows)} {time.perf_counter() - started:.3f}")
