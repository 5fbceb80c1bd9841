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
fn the_core_never_reads_the_clock() {
    for entry in walk(&repo().join("crates/tam-core/src")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for forbidden in ["Timestamp::now", "SystemTime::now", "Instant::now", "Zoned::now"] {
            assert!(!text.contains(forbidden), "{} calls {forbidden}", entry.display());
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
