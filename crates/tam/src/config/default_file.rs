//! The file `tam init` writes: every option at its default, commented out.

use super::*;

/// The file `tam init` writes: every option, commented out at its default.
pub fn default_file() -> String {
    let s = ScoringConfig::default();
    let e = EscalationConfig::default();
    let i = ImportConfig::default();
    let r = DeliveryPolicy::default();
    format!(
        r#"# tam configuration. Every option is shown at its default, commented out.
# Environment variables override the file: TAM_SCORING__AGED_P1_P2_POINTS=25 sets
# [scoring] aged_p1_p2_points. Secrets never go in this file.

[scoring]
# An open P1/P2 ticket older than this (strictly) is aged.
# aged_p1_p2_after_hours = {}
# aged_p1_p2_points = {}
# aged_p1_p2_cap = {}
# Open tickets beyond this many cost open_volume_points each.
# open_volume_free_tickets = {}
# open_volume_points = {}
# open_volume_cap = {}
# Silence strictly longer than these costs the points. Never monitored = no deduction.
# heartbeat_silence_after_hours = {}
# heartbeat_silence_points = {}
# heartbeat_silence_severe_after_hours = {}
# heartbeat_silence_severe_points = {}
# heartbeat_silence_cap = {}
# Status bands: score >= green_min_score is green, >= amber_min_score amber, else red.
# green_min_score = {}
# amber_min_score = {}
# Trend: against the snapshot trend_lookback_days earlier (± trend_tolerance_days).
# trend_lookback_days = {}
# trend_tolerance_days = {}
# trend_min_delta = {}

[escalation]
# score_below = {}
# cool_down_days = {}
# worsen_points = {}
# alert_budget_per_rep = {}
# A digest lists the rep's worst accounts and counts the rest by status and reason.
# digest_top_accounts = {}
# Lower a rep's budget (never below 1) when most of their last 30 days' rated alerts were
# marked not useful through the alerts' feedback links.
# adapt_alert_budget = {}

[import]
# future_tolerance_minutes = {}
# default_check_in_interval_days = {}

[outbox]
# Deliveries (drafts, CRM, events, alerts) are retried with exponential backoff, then left
# `failed` for `tam outbox retry`.
# max_attempts = {}
# base_delay_ms = {}
# max_delay_ms = {}
# How long a claimed delivery stays its replica's; then another may claim it again (a replica
# that died or stalled). Longer than a batch of drafts takes, model retries included.
# lease_seconds = {}

[writer]
# Who writes drafts: "template" (offline, no network) or "llm" (the models below, in order,
# falling back to the template when every model fails or answers badly twice).
# mode = "template"
# retries_per_model = 2
# retry_base_ms = 1000
# concurrency_per_provider = 3
#
# [[writer.models]]
#   provider = "anthropic"            # or "openai", "openai_compatible"
#   model = "claude-sonnet-4-5"
#   api_key_env = "ANTHROPIC_API_KEY" # the variable's name; the key never goes in this file
#   base_url = "https://api.anthropic.com"
#   timeout_ms = 60000
#   max_tokens = 2000

[event_bus]
# Where events for other agents (the Sales Agent) go: "local" (a table here) or "redis"
# (Redis Streams, one stream per tenant and kind: tam:<tenant>:escalations, ...).
# kind = "local"
# redis_url = "redis://127.0.0.1:6379"
# maxlen = 100000

[chat]
# Where chat alerts go: "local" (the notification log), "webhook" (Google Chat incoming
# webhooks; each URL is a secret, so the config names the variable that holds it) or "api"
# (the Chat API as a Chat app that is a member of each rep's space; the variable named by
# service_account_file_env holds the path of the app's service-account key file).
# kind = "local"
# default_webhook_env = "TAM_CHAT_WEBHOOK"
# default_space = "spaces/AAAA"
# service_account_file_env = "TAM_GOOGLE_SERVICE_ACCOUNT_FILE"
# base_url = "https://chat.googleapis.com"
# min_interval_ms = 1000
# timeout_ms = 10000
# concurrency = 8               # spaces posted to at once; one space's messages stay in order
# [chat.webhooks]
#   "spaces/AAAA" = "TAM_CHAT_WEBHOOK_SUPPORT"

[mail]
# Where customer drafts and email alerts go: "local" (drafts/ and the notification log in
# this home) or "gmail" (drafts in each rep's mailbox, alerts sent from alerts_from to the
# rep only). Gmail uses a service account with domain-wide delegation; the variable named
# here holds the path of its key file.
# kind = "local"
# service_account_file_env = "TAM_GOOGLE_SERVICE_ACCOUNT_FILE"
# alerts_from = "tam-alerts@vendor.example"
# base_url = "https://gmail.googleapis.com"
# timeout_ms = 30000
# concurrency = 64              # Gmail calls at once; each mailbox keeps to 250 quota units/s
# bcc = ["crm-log@vendor.example"]  # blind-copied on every customer draft (your own addresses)
# What became of each draft is read from the rep's Sent mail with this scope, added to the
# delegation: "gmail.readonly" (whole messages, and search) or "gmail.metadata" (first words).
# read_scope = "gmail.readonly"

[notion]
# Notion as the CRM of one tenant: `tam sync notion` reads its accounts and tickets (only the
# pages edited since the last sync). The token is a secret: the config names its variable.
# tenant = "acme"
# token_env = "NOTION_TOKEN"
# accounts_database = "..."
# tickets_database = "..."
# base_url = "https://api.notion.com"
# version = "2022-06-28"
# requests_per_second = 3.0
# timeout_ms = 30000
# [notion.accounts]          the property names, as `tam notion init` creates them
#   name = "Name"
#   rep_email = "Rep Email"
#   last_edited_by = "Last edited by"  of type Last edited by: syncs skip pages tam edited
#                                      last (its writes' answers are imported instead); "" off
# [notion.tickets]
#   account = "Account"
#   priority = "Priority"
#   last_edited_by = "Last edited by"
# [notion.health]            written back to the account page by scans
#   score = "Health Score"
#   escalated = "Escalated"
#   profile = "TAM Profile"  the relation to the relationship profile sub-page

[jira]
# Jira Cloud as the ticket source of one tenant: `tam sync jira` asks for the project's issues
# updated since the last sync. Basic auth with an API token; the config names its variable.
# tenant = "acme"
# base_url = "https://your-site.atlassian.net"
# email = "tam@vendor.example"
# token_env = "JIRA_API_TOKEN"
# project = "SUP"            # or several: "SUP, OPS"
# webhook_secret_env = "JIRA_WEBHOOK_SECRET"  # the secret webhooks are signed with
# jql = "issuetype != Epic"  # more JQL, and-ed to the project and the watermark
# time_zone = "UTC"  # the Jira user's zone: JQL reads dates in it
# page_size = 100
# timeout_ms = 30000
# escalation_label = "escalation"  # an issue with it is a real escalation, for tam backtest
# [jira.account]             which field names the account
#   field = "labels"         or "components", or a custom field (customfield_10002)
#   prefix = "account:"      for labels and components: account:acme means acme
# [jira.account.accounts]    a field value and the account id it stands for
#   "Acme Corp" = "acme"
# [jira.statuses]            status names to open/pending/resolved/closed, before the category
#   "Waiting for customer" = "pending"
# [jira.categories]          status categories (new, indeterminate, done)
#   done = "resolved"

[kayako]
# Kayako as the ticket source of one tenant: `tam sync kayako` reads the tickets with activity
# since the last sync. api = "classic" (XML, every request signed with the API key and secret)
# or "json" (kayako.com API v1, the agent's email and password). Secrets stay in variables.
# tenant = "acme"
# api = "classic"
# base_url = "https://helpdesk.vendor.example/api/index.php"
# api_key_env = "KAYAKO_API_KEY"
# secret_env = "KAYAKO_SECRET_KEY"
# departments = "1,2"  # Classic: the department ids to list
# email = "tam@vendor.example"
# password_env = "KAYAKO_PASSWORD"
# page_size = 100
# timeout_ms = 30000
# account_field = "userorganization"  # Classic: userorganization(id); JSON: a custom field key,
#                                      # organization (name), organization_id or requester; several,
#                                      # comma-separated, are tried in order
# missing_priority = "P4"  # Kayako allows tickets without a priority
# escalation_tag = "escalation"  # a ticket with it is a real escalation, for tam backtest
# [kayako.accounts]          a field value and the account id it stands for
#   "Acme Corp" = "acme"
# [kayako.types]             ticket types and their kind (feature requests become opportunities):
#   "4" = "feature_request"  # Classic type ids are per installation; JSON labels such as
#                            # "Feature request" are read by name unless listed here
# [kayako.statuses]          status titles to open/pending/resolved/closed
#   "On Hold" = "pending"

[priorities]
# Source priority names mapped to P1..P4, on top of the built-in Jira and Kayako names
# (Highest/Blocker/Critical/Urgent = P1, High/Major = P2, Medium/Normal = P3,
# Low/Lowest/Minor/Trivial = P4).
# "Sev 1" = "P1"

[api]
# The HTTP API of `tam serve` (none unless listen is set). Each tenant's bearer token is in the
# variable named here; a token sees only its own tenant.
# listen = "127.0.0.1:8787"
# public_url = "https://tam.example.com"  # where clients reach it (the A2A agent card names it)
# max_body_bytes = 262144
# heartbeats_per_second = 500.0
# heartbeat_burst = 1000
# metrics_token_env = "TAM_METRICS_TOKEN"  # sees every tenant's /metrics; a tenant's token sees its own
# [api.tokens]
#   acme = "TAM_API_TOKEN_ACME"
# [api.release_secrets]        POST /v1/webhooks/release, signed X-Hub-Signature: sha256=...
#   acme = "TAM_RELEASE_SECRET_ACME"
# [api.feedback_secrets]       signs the "useful" / "not useful" links of the tenant's alerts,
#   acme = "TAM_FEEDBACK_SECRET_ACME"  served at public_url/feedback/... (16+ characters)

[store]
# The home's SQLite file by default. Several `tam serve` replicas share one PostgreSQL (14 or
# later) instead; TAM_DATABASE_URL wins over this, and is the place for a password.
# url = "postgres://tam@db.internal:5432/tam"

[tickets]
# A ticket's page, with {{id}} where its id goes: the dashboard links ticket ids to it.
# url = "https://support.example.com/tickets/{{id}}"

# Per-tenant overrides, option by option:
# [tenants.acme]
# time_zone = "Europe/Berlin"   # `tam serve` runs the tenant's jobs on its clock (UTC by default)
# [tenants.acme.scoring]
# aged_p1_p2_after_hours = 48
"#,
        s.aged_p1_p2_after_hours,
        s.aged_p1_p2_points,
        s.aged_p1_p2_cap,
        s.open_volume_free_tickets,
        s.open_volume_points,
        s.open_volume_cap,
        s.heartbeat_silence_after_hours,
        s.heartbeat_silence_points,
        s.heartbeat_silence_severe_after_hours,
        s.heartbeat_silence_severe_points,
        s.heartbeat_silence_cap,
        s.green_min_score,
        s.amber_min_score,
        s.trend_lookback_days,
        s.trend_tolerance_days,
        s.trend_min_delta,
        e.score_below,
        e.cool_down_days,
        e.worsen_points,
        e.alert_budget_per_rep,
        e.digest_top_accounts,
        e.adapt_alert_budget,
        i.future_tolerance_minutes,
        i.default_check_in_interval_days,
        r.max_attempts,
        r.base_delay_ms,
        r.max_delay_ms,
        r.lease_seconds,
    )
}
