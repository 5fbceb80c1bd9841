//! `GET /metrics`: Prometheus text, every tenant's for the scraper's token, a tenant's own for its token.

use super::*;

pub(super) async fn metrics(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Answer<Response> {
    // The scraper's token sees every tenant; a tenant's token sees its own figures only.
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let only = match (&s.metrics_token, bearer) {
        (Some(scraper), Some(given)) if same(scraper.as_bytes(), given.trim().as_bytes()) => None,
        _ => Some(s.tenant(&headers)?),
    };
    let text = blocking(&s, move |s| {
        let store = s.store()?;
        let mut all = Vec::new();
        for tenant in store.tenants()? {
            if only.as_ref().is_some_and(|o| *o != tenant.id) {
                continue;
            }
            let m = store.tenant_metrics(&tenant.id)?;
            all.push((tenant.id, m));
        }
        // The text format wants each family's samples together, under its HELP and TYPE.
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<String>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for sample in samples {
                out.push_str(&format!("{name}{sample}\n"));
            }
        };
        family(
            "tam_accounts",
            "gauge",
            "Accounts by latest health status.",
            all.iter()
                .flat_map(|(t, m)| {
                    m.accounts.iter().map(move |(status, n)| format!("{{tenant=\"{t}\",status=\"{status}\"}} {n}"))
                })
                .collect(),
        );
        family(
            "tam_scans_total",
            "counter",
            "Scans stored.",
            all.iter().map(|(t, m)| format!("{{tenant=\"{t}\"}} {}", m.scans)).collect(),
        );
        family(
            "tam_scan_duration_seconds",
            "gauge",
            "How long the latest scheduled scan took.",
            all.iter()
                .filter_map(|(t, m)| m.last_scan_seconds.map(|secs| format!("{{tenant=\"{t}\"}} {secs:.3}")))
                .collect(),
        );
        family(
            "tam_outbox",
            "gauge",
            "Outbox rows by channel and state.",
            all.iter()
                .flat_map(|(t, m)| {
                    m.outbox.iter().map(move |(effect, state, n)| {
                        format!("{{tenant=\"{t}\",channel=\"{effect}\",state=\"{state}\"}} {n}")
                    })
                })
                .collect(),
        );
        family(
            "tam_llm_tokens_total",
            "counter",
            "Model tokens spent.",
            all.iter()
                .flat_map(|(t, m)| {
                    [("input", m.tokens.0), ("output", m.tokens.1)]
                        .map(|(direction, n)| format!("{{tenant=\"{t}\",direction=\"{direction}\"}} {n}"))
                })
                .collect(),
        );
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
