//! The dashboard: server-rendered HTML (minijinja, auto-escaped), no scripts. `/` lists the
//! tenant's accounts grouped by status with score and trend, and the scheduler's recent runs;
//! `/accounts/{id}` shows the score history chart, why the score is what it is, the open
//! tickets, and the drafts and other effects with their delivery state.
//!
//! A browser signs in with the tenant's API token through the sign-in form (posted, so the
//! token stays out of URLs) or `?token=` once (for a bookmark or a headless browser); either
//! way it is kept in an HttpOnly, SameSite=Strict cookie. An `Authorization: Bearer` header
//! works too.

use minijinja::{Environment, context};
use serde::Serialize;
use tam_core::comms::ScorePoint;
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::Store;

const LAYOUT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}tam{% endblock %}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:.6rem 1.5rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
.red{color:#cf222e}.amber{color:#9a6700}.green{color:#1a7f37}.muted{color:#656d76}
.badge{display:inline-block;min-width:2.2rem;text-align:center;border-radius:1rem;padding:0 .5rem;color:#fff;font-weight:600}
.badge.red{background:#cf222e;color:#fff}.badge.amber{background:#bf8700;color:#fff}.badge.green{background:#1a7f37;color:#fff}.badge.none{background:#8c959f}
.trend{white-space:nowrap}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
.columns>section{min-width:0}
.columns table{table-layout:fixed}
.columns td:first-child{width:3.2rem}.columns td.trend{width:6.8rem}
.columns td a,.columns td .muted{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
</style></head>
<body><header><a href="/">tam</a> <span class="muted">· {{ tenant }}</span></header><main>{% block body %}{% endblock %}</main></body></html>"#;

const HOME: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ tenant }}{% endblock %}{% block body %}
<h1>Accounts{% if rep %} of {{ rep }}{% endif %}</h1>
{% if rep %}<p><a href="/">All accounts</a></p>{% endif %}
<div class="columns">
{% for group in groups %}<section id="{{ group.status }}">
<h2 class="{{ group.status }}">{{ group.title }} ({{ group.accounts|length }})</h2>
{% if group.accounts %}<table>{% for a in group.accounts %}
<tr><td><span class="badge {{ a.status or "none" }}">{{ a.score if a.score is not none else "–" }}</span></td>
<td><a href="/accounts/{{ a.account_id|path }}">{{ a.name }}</a><span class="muted" title="{{ a.rep_email }}">{{ a.rep_email }}</span></td>
<td class="trend">{{ trend_word(a.trend) }}</td></tr>{% endfor %}</table>{% else %}<p class="muted">None.</p>{% endif %}
</section>{% endfor %}
</div>
<h2>Scheduled jobs</h2>
{% if jobs %}<table><tr><th>Slot</th><th>Job</th><th>Outcome</th><th>What happened</th></tr>
{% for j in jobs %}<tr><td>{{ j.slot }}</td><td>{{ j.job }}</td><td class="{{ "red" if j.outcome in ["failed", "missed"] else "" }}">{{ j.outcome }}</td><td>{{ j.detail or "" }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">No job has run yet: <code>tam serve</code> runs them.</p>{% endif %}
{% endblock %}"#;

const ACCOUNT: &str = r#"{% extends "layout.html" %}{% block title %}tam · {{ name }}{% endblock %}{% block body %}
<h1>{{ name }} {% if score is not none %}<span class="badge {{ status }}">{{ score }}</span>{% endif %}</h1>
<p class="muted">{{ account_id }} · rep {{ rep_name }} &lt;{{ rep_email }}&gt; · {{ open_count }} open ticket(s) · last heartbeat {{ last_heartbeat or "never" }}</p>
<h2>Score history</h2>
{% if chart %}<figure>{{ chart|safe }}<figcaption class="muted">{{ history }} scan(s); dashed lines at 70 and 40.</figcaption></figure>{% else %}<p class="muted">Not scanned yet.</p>{% endif %}
<h2>Why</h2>
{% if why %}<ul>{% for w in why %}<li>{{ w }}</li>{% endfor %}</ul>{% else %}<p class="muted">Nothing takes points off.</p>{% endif %}
<h2>Open tickets</h2>
{% if tickets %}<table><tr><th>Ticket</th><th>Priority</th><th>Status</th><th>Subject</th><th>Age</th></tr>
{% for t in tickets %}<tr><td>{{ t.id }}</td><td>{{ t.priority }}</td><td>{{ t.status }}</td><td>{{ t.subject }}</td><td>{{ t.age }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">None open.</p>{% endif %}
<h2>Drafts and effects</h2>
{% if effects %}<table><tr><th>Effect</th><th>State</th><th>Attempts</th><th>Where, or why not</th></tr>
{% for e in effects %}<tr><td>{{ e.kind }}</td><td class="{{ "red" if e.state == "failed" else "" }}">{{ e.state }}</td><td>{{ e.attempts }}</td><td>{{ e.detail }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Nothing planned for this account yet.</p>{% endif %}
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
    env.add_filter("path", |s: String| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    });
    env.add_function("trend_word", |t: Option<String>| -> String {
        match t.as_deref() {
            Some("improving") => "▲ improving".into(),
            Some("declining") => "▼ declining".into(),
            Some("stable") => "● stable".into(),
            _ => "–".into(),
        }
    });
    env
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, String> {
    environment().get_template(name).and_then(|t| t.render(ctx)).map_err(|e| format!("rendering {name}: {e}"))
}

#[derive(Serialize)]
struct Group {
    status: &'static str,
    title: &'static str,
    accounts: Vec<tam_store::AccountHealth>,
}

/// The tenant's overview.
pub fn home(store: &Store, tenant: &TenantId, rep: Option<&str>) -> Result<String, String> {
    let mut all = store.account_health(tenant).map_err(|e| e.to_string())?;
    if let Some(rep) = rep {
        all.retain(|a| a.rep_email.eq_ignore_ascii_case(rep));
    }
    let mut groups: Vec<Group> = [("red", "Red"), ("amber", "Amber"), ("green", "Green"), ("none", "Not scanned")]
        .into_iter()
        .map(|(status, title)| Group { status, title, accounts: Vec::new() })
        .collect();
    for a in all {
        let at = match a.status.as_deref() {
            Some("red") => 0,
            Some("amber") => 1,
            Some("green") => 2,
            _ => 3,
        };
        groups[at].accounts.push(a);
    }
    let jobs = store.job_runs(Some(tenant), 12).map_err(|e| e.to_string())?;
    let (groups, jobs) = (
        minijinja::Value::from(minijinja::value::Serde(&groups)),
        minijinja::Value::from(minijinja::value::Serde(&jobs)),
    );
    render("home.html", context! { tenant => tenant.as_str(), groups, jobs, rep })
}

/// One account, or `None` when the tenant has no such account.
pub fn account(store: &Store, tenant: &TenantId, id: &AccountId, now: Timestamp) -> Result<Option<String>, String> {
    let fail = |e: tam_store::StoreError| e.to_string();
    let Some(row) = store.account(tenant, id).map_err(fail)? else { return Ok(None) };
    let mut history = store.snapshots(tenant, id, 90).map_err(fail)?;
    history.reverse();
    let points: Vec<ScorePoint> = history.iter().map(|h| ScorePoint { as_of: h.as_of, score: h.score }).collect();
    let chart = match (points.first(), points.last()) {
        (Some(first), Some(last)) => Some(tam_writer::score_chart(&points, first.as_of, last.as_of)),
        _ => None,
    };
    let latest = history.last();
    let why: Vec<String> =
        // With its points, as `tam explain` shows it.
        latest
            .map(|s| s.deductions.iter().map(|d| format!("-{} {}", d.points, d.explain())).collect())
            .unwrap_or_default();
    let tickets: Vec<minijinja::Value> = store
        .open_ticket_facts(tenant, id, now)
        .map_err(fail)?
        .into_iter()
        .map(|t| {
            let days = t.age_hours / 24.0;
            let age = if days >= 1.0 { format!("{days:.0} d") } else { format!("{:.0} h", t.age_hours) };
            context! { id => t.id.as_str(), priority => t.priority.as_str(), status => t.status.as_str(), subject => t.subject, age }
        })
        .collect();
    let effects: Vec<minijinja::Value> = store
        .outbox(tenant, None)
        .map_err(fail)?
        .into_iter()
        .filter(|r| r.account.as_deref() == Some(id.as_str()))
        .rev()
        .take(40)
        .map(|r| {
            let detail =
                r.receipt.clone().or(r.last_error.clone()).unwrap_or_else(|| format!("due {}", r.next_attempt_at));
            context! { kind => r.kind.as_str(), state => r.state.as_str(), attempts => r.attempts, detail }
        })
        .collect();
    render(
        "account.html",
        context! {
            tenant => tenant.as_str(), account_id => id.as_str(), name => row.name, rep_name => row.rep_name, rep_email => row.rep_email.as_str(),
            last_heartbeat => row.last_heartbeat.map(|t| t.to_string()), open_count => row.open_tickets,
            score => latest.map(|s| s.score), status => latest.map(|s| s.status.as_str()),
            chart, history => points.len(), why, tickets, effects,
        },
    )
    .map(Some)
}

/// The sign-in page, saying why it is shown.
pub fn sign_in(why: &str) -> String {
    render("sign_in.html", context! { tenant => "", why }).unwrap_or_else(|e| e)
}
