//! Invariants of the layout that no compiler checks (ARCHITECTURE.md states them).

use crate::repo;

#[test]
fn the_core_has_no_io_dependencies() {
    let manifest = std::fs::read_to_string(repo().join("crates/tam-core/Cargo.toml")).unwrap();
    for forbidden in ["tokio", "reqwest", "rusqlite", "tam-store", "tam-agent", "axum", "redis"] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(forbidden)),
            "tam-core must stay pure, but its Cargo.toml lists {forbidden}"
        );
    }
}

#[test]
fn every_crate_root_says_what_it_owns() {
    for entry in std::fs::read_dir(repo().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let root = ["src/lib.rs", "src/main.rs"].iter().map(|f| dir.join(f)).find(|p| p.exists()).unwrap();
        let text = std::fs::read_to_string(&root).unwrap();
        assert!(text.starts_with("//!"), "{} does not start with a //! crate doc", root.display());
    }
}

#[test]
fn the_core_the_store_and_the_agent_never_read_the_clock() {
    // The instant comes from the caller (the binary reads it once per command or tick), so a
    // scan, a plan or a task at a given `now` always does the same.
    for krate in ["tam-core", "tam-store", "tam-agent"] {
        for entry in walk(&repo().join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&entry).unwrap();
            for forbidden in ["Timestamp::now", "SystemTime::now", "Instant::now", "Zoned::now"] {
                assert!(!text.contains(forbidden), "{} calls {forbidden}", entry.display());
            }
        }
    }
}

/// Each crate's normal (not dev) dependencies, from `cargo metadata`.
fn dependencies() -> std::collections::BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"].as_array().unwrap();
            let normal = deps.iter().filter(|d| d["kind"].is_null()).map(|d| d["name"].as_str().unwrap().to_owned());
            (p["name"].as_str().unwrap().to_owned(), normal.collect())
        })
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let allowed: &[(&str, &[&str])] = &[
        ("tam-core", &[]),
        ("tam-store", &["tam-core"]),
        ("tam-writer", &["tam-core"]),
        ("tam-connectors", &["tam-core", "tam-store"]),
        ("tam-agent", &["tam-core", "tam-store"]),
        ("tam-app", &["tam-core", "tam-store", "tam-agent", "tam-connectors"]),
        ("tam-testkit", &[]),
        ("tam", &["tam-core", "tam-store", "tam-writer", "tam-connectors", "tam-agent", "tam-app"]),
    ];
    let deps = dependencies();
    assert_eq!(deps.len(), allowed.len(), "a new crate needs its place in this table: {:?}", deps.keys());
    for (krate, may) in allowed {
        for dep in deps[*krate].iter().filter(|d| d.starts_with("tam")) {
            assert!(may.contains(&dep.as_str()), "{krate} depends on {dep}, which is not below it");
        }
    }
}

#[test]
fn only_the_connectors_the_writer_and_the_binary_speak_http() {
    // The application's logic goes through ports; a SaaS API's HTTP is a connector's (or, for
    // the model providers, the writer's), and serving HTTP is the binary's.
    let deps = dependencies();
    for krate in ["tam-core", "tam-store", "tam-agent"] {
        for network in ["ureq", "axum", "tokio", "reqwest", "hyper"] {
            assert!(!deps[krate].iter().any(|d| d == network), "{krate} depends on {network}");
        }
    }
    for network in ["ureq", "axum", "tokio", "reqwest", "hyper"] {
        assert!(
            !deps["tam-app"].iter().any(|d| d == network),
            "tam-app speaks through connectors, yet depends on {network}"
        );
    }
    for network in ["axum", "tokio"] {
        for krate in ["tam-connectors", "tam-writer"] {
            assert!(!deps[krate].iter().any(|d| d == network), "{krate} serves nothing, yet depends on {network}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn the_scan_path_runs_one_way() {
    // scan → effects: planning the outbox never reaches back into the scan.
    let effects = std::fs::read_to_string(repo().join("crates/tam-agent/src/effects.rs")).unwrap();
    assert!(!effects.contains("crate::scan::"), "effects.rs imports from scan.rs");
}

#[test]
fn the_application_and_the_binary_name_no_saas_endpoint() {
    // A SaaS API's paths and methods are a connector's: the application asks for databases,
    // pages and tickets by what they are, not by `PATCH /v1/pages/{id}`.
    for entry in walk(&repo().join("crates/tam/src")).into_iter().chain(walk(&repo().join("crates/tam-app/src"))) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for raw in [".request(\"", ".request_as(\""] {
            assert!(!text.contains(raw), "{} calls an API by path ({raw}...)", entry.display());
        }
        // Nor does it spell one out: a string that starts with an API's path is a connector's.
        for path in
            ["\"/v1/pages", "\"/v1/databases", "\"/api/v1/", "\"/Tickets/", "\"/rest/api/", "\"/gmail/", "\"/v1/spaces"]
        {
            assert!(!text.contains(path), "{} names an API path ({path}...)", entry.display());
        }
    }
}

#[test]
fn the_api_mcp_the_clients_and_the_config_never_reach_into_the_commands() {
    // cli/ is the commands' argument parsing and output; what the API, the MCP server or the
    // clients need of it belongs below it (the application and its views, the clients, the home).
    let src = repo().join("crates/tam/src");
    let shared = ["http", "mcp", "clients", "config"].iter().flat_map(|d| walk(&src.join(d)));
    let files = ["clients.rs", "home.rs", "a2a.rs", "schema.rs"].map(|f| src.join(f));
    let mut checked = 0;
    for entry in shared.chain(files) {
        checked += 1;
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(!text.contains("crate::cli::"), "{} uses a command's module", entry.display());
    }
    assert!(checked > 20, "the files were found ({checked})");
}
