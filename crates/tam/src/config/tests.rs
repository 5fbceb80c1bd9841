use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn the_default_file_uncommented_is_the_defaults() {
    // Option lines are `# key = value` with a lower-case key; prose starts with a capital.
    let is_option = |rest: &str| {
        rest.split_once(" = ")
            .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    };
    let uncommented: String = default_file()
        .lines()
        .take_while(|l| !l.starts_with("# Per-tenant"))
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if is_option(rest) => rest,
            _ if l.starts_with('#') => "",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = load(&uncommented, &[]).unwrap();
    let scan = config.rules.scan(None);
    assert_eq!(scan.scoring, ScoringConfig::default());
    assert_eq!(scan.escalation, EscalationConfig::default());
    assert_eq!(config.rules.retry, DeliveryPolicy::default());
    assert!(uncommented.contains("aged_p1_p2_cap = 60"));
    // The sections written as literals: each option that has a default shows it. (The
    // others, such as a tenant or a database id, show an example.)
    let d = load("", &[]).unwrap();
    let mut differ = Vec::new();
    macro_rules! same {
        ($($section:ident . $field:ident),+ $(,)?) => {$(
            let (shown, default) = (format!("{:?}", config.$section.$field), format!("{:?}", d.$section.$field));
            if shown != default {
                differ.push(format!("[{}] {}: the file shows {shown}, the default is {default}",
                    stringify!($section), stringify!($field)));
            }
        )+};
    }
    let (shown, default) =
        (config.rules.import_options(Timestamp::UNIX_EPOCH), d.rules.import_options(Timestamp::UNIX_EPOCH));
    if (shown.future_tolerance, shown.default_check_in_interval_days)
        != (default.future_tolerance, default.default_check_in_interval_days)
    {
        differ.push(format!("[import]: the file shows {shown:?}, the default is {default:?}"));
    }
    same!(
        writer.mode,
        writer.retries_per_model,
        writer.retry_base_ms,
        writer.concurrency_per_provider,
        event_bus.kind,
        event_bus.redis_url,
        event_bus.maxlen,
        chat.kind,
        chat.service_account_file_env,
        chat.base_url,
        chat.min_interval_ms,
        chat.timeout_ms,
        chat.concurrency,
        mail.kind,
        mail.service_account_file_env,
        mail.base_url,
        mail.timeout_ms,
        mail.concurrency,
        notion.token_env,
        notion.base_url,
        notion.version,
        notion.requests_per_second,
        notion.timeout_ms,
        jira.token_env,
        jira.webhook_secret_env,
        jira.time_zone,
        jira.page_size,
        jira.timeout_ms,
        kayako.api,
        kayako.api_key_env,
        kayako.secret_env,
        kayako.password_env,
        kayako.page_size,
        kayako.timeout_ms,
        kayako.account_field,
        kayako.missing_priority,
        api.max_body_bytes,
        api.heartbeats_per_second,
        api.heartbeat_burst,
    );
    assert!(differ.is_empty(), "the default file disagrees with the defaults:\n{}", differ.join("\n"));
}

#[test]
fn tenants_override_option_by_option_and_env_wins() {
    let config = load(
        "[scoring]\naged_p1_p2_points = 25\n[tenants.acme.scoring]\naged_p1_p2_cap = 40\n[priorities]\n\"Sev 1\" = \"P1\"\n",
        &[
            ("TAM_ESCALATION__COOL_DOWN_DAYS", "3"),
            ("TAM_HOME", "/ignored"),
            ("TAM_TENANTS__Acme__ESCALATION__WORSEN_POINTS", "4"),
        ],
    )
    .unwrap();
    let acme = config.rules.scan(Some(&TenantId::parse("t", "acme").unwrap()));
    assert_eq!((acme.scoring.aged_p1_p2_points, acme.scoring.aged_p1_p2_cap), (25, 40));
    let other = config.rules.scan(Some(&TenantId::parse("t", "other").unwrap()));
    assert_eq!((other.scoring.aged_p1_p2_points, other.scoring.aged_p1_p2_cap), (25, 60));
    assert_eq!(other.escalation.cool_down_days, 3);
    assert_eq!(config.rules.priorities().get("sev 1"), Some(Priority::P1));
    let upper = config.rules.scan(Some(&TenantId::parse("t", "Acme").unwrap()));
    assert_eq!(upper.escalation.worsen_points, 4, "tenant ids keep their case");
}

#[test]
fn a_secret_pasted_where_a_variable_name_belongs_is_named_by_its_option_and_never_shown() {
    let secret = "https://chat.googleapis.com/v1/spaces/AAA/messages?key=KEY123&token=TOK456";
    let cases = [
        ("[chat]\nkind = \"webhook\"\ndefault_webhook_env = \"{s}\"\n", "[chat] default_webhook_env"),
        ("[chat.webhooks]\n\"spaces/AAA\" = \"{s}\"\n", "[chat.webhooks] \"spaces/AAA\""),
        ("[notion]\ntoken_env = \"{s}\"\n", "[notion] token_env"),
        ("[jira]\ntoken_env = \"{s}\"\n", "[jira] token_env"),
        ("[jira]\nwebhook_secret_env = \"{s}\"\n", "[jira] webhook_secret_env"),
        ("[kayako]\nsecret_env = \"{s}\"\n", "[kayako] secret_env"),
        ("[api.tokens]\nacme = \"{s}\"\n", "[api.tokens] acme"),
        ("[api.release_secrets]\nacme = \"{s}\"\n", "[api.release_secrets] acme"),
        ("[api]\nmetrics_token_env = \"{s}\"\n", "[api] metrics_token_env"),
        (
            "[[writer.models]]\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"{s}\"\n",
            "[[writer.models]] anthropic/m: api_key_env",
        ),
    ];
    for (text, option) in cases {
        let error = format!("{:#}", load(&text.replace("{s}", secret), &[]).unwrap_err());
        assert!(error.contains(option) && error.contains("must name an environment variable"), "{error}");
        assert!(!error.contains("KEY123") && !error.contains("TOK456"), "the secret is never shown: {error}");
    }
}

#[test]
fn each_kind_reads_its_words_and_names_the_others_when_given_a_wrong_one() {
    let c = load("[event_bus]\nkind = \"redis\"\n[chat]\nkind = \"webhook\"\n[kayako]\napi = \"json\"\n", &[]).unwrap();
    assert_eq!(
        (c.event_bus.kind, c.chat.kind, c.kayako.api),
        (EventBusKind::Redis, ChatKind::Webhook, KayakoApi::Json)
    );
    let d = load("", &[]).unwrap();
    assert_eq!((d.mail.kind, d.writer.mode, d.chat.kind), (MailKind::Local, WriterMode::Template, ChatKind::Local));
    let env = load("", &[("TAM_CHAT__KIND", "api")]).unwrap();
    assert_eq!(env.chat.kind, ChatKind::Api);
    let err = format!("{:#}", load("[chat]\nkind = \"teams\"\n", &[]).unwrap_err());
    assert!(err.contains(r#"[chat] kind "teams" is not "local", "webhook" or "api""#), "{err}");
    assert_eq!(ChatKind::Webhook.to_string(), "webhook");
}

#[test]
fn mistakes_name_the_option() {
    let err = |text: &str| format!("{:#}", load(text, &[]).unwrap_err());
    assert!(err("[scoring]\naged_p1_p2_pionts = 1\n").contains("unknown field `aged_p1_p2_pionts`"));
    assert!(err("[scoring]\namber_min_score = 90\n").contains("amber_min_score"));
    assert!(err("[scorng]\n").contains("unknown section [scorng]"));
    assert!(err("[priorities]\nUrgent = \"P9\"\n").contains("\"Urgent\""));
    assert!(err("[tenants.acme.scoring]\ngreen_min_score = 101\n").contains("[tenants.acme]"));
    assert!(
        err("[tenants.acme.scorng]\naged_p1_p2_points = 1\n").contains("[tenants.acme]: unknown section \"scorng\"")
    );
    assert!(err("[tenants.acme]\naged_p1_p2_points = 1\n").contains("unknown section \"aged_p1_p2_points\""));
    assert!(err("[escalation]\nscore_below = 80\n").contains("score_below"));
    assert!(err("[mail]\nkind = \"gmail\"\n").contains("needs alerts_from"));
    assert!(err("[mail]\nkind = \"gmail\"\nalerts_from = \"alerts\"\n").contains("[mail] alerts_from"));
    assert!(err("[chat]\nkind = \"api\"\ndefault_space = \"AAA\"\n").contains("not a space name"));
    assert!(err("[mail]\nkind = \"smtp\"\n").contains("[mail] kind \"smtp\""));
    let path = "[mail]\nkind = \"gmail\"\nalerts_from = \"a@v.example\"\nservice_account_file_env = \"/k.json\"\n";
    assert!(err(path).contains("must name an environment variable"));
    let env = load("", &[("TAM_SCORNG__X", "1")]).unwrap_err().to_string();
    assert_eq!(
        env,
        "environment variable TAM_SCORNG__X: unknown section \"scorng\" (known: scoring, escalation, import, outbox, priorities, tenants, writer, event_bus, chat, mail, notion, jira, kayako, api, tickets, store)"
    );
}
