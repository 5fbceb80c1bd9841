//! End-to-end tests: the real `tam` binary against a throw-away home.

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

mod api;
mod architecture;
mod backtest;
mod cli;
mod conformance;
mod dashboard;
mod fates;
mod feedback;
mod google;
mod jira;
mod kayako;
mod llm;
mod mcp;
mod notion;
mod postgres;
mod redis;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh `TAM_HOME` and a way to run `tam` in it. Its store is the home's SQLite file, or a
/// fresh PostgreSQL database when `scripts/test` names a cluster in `TAM_TEST_POSTGRES`.
pub(crate) struct TestHome {
    dir: tempfile::TempDir,
    database: Option<String>,
}

/// What a `tam` run printed and how it exited.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl TestHome {
    pub(crate) fn new() -> TestHome {
        TestHome { dir: tempfile::tempdir().unwrap(), database: tam_testkit::postgres::test_database() }
    }

    /// A home whose store is its SQLite file, whatever the run's back end.
    pub(crate) fn sqlite() -> TestHome {
        TestHome { dir: tempfile::tempdir().unwrap(), database: None }
    }

    /// A home whose store is the PostgreSQL database at `url`.
    pub(crate) fn on(url: &str) -> TestHome {
        TestHome { dir: tempfile::tempdir().unwrap(), database: Some(url.to_owned()) }
    }

    /// `tam` in this home, with no `TAM_*` variable of the test's own environment.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tam"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAM_")) {
            cmd.env_remove(key);
        }
        cmd.env("TAM_HOME", self.dir.path().join("home"));
        if let Some(url) = &self.database {
            cmd.env("TAM_DATABASE_URL", url);
        }
        cmd
    }

    /// The home's store, as `tam` opens it.
    pub(crate) fn store(&self) -> tam_store::Store {
        match &self.database {
            Some(url) => tam_store::Store::connect(url).unwrap(),
            None => tam_store::Store::open(&self.dir.path().join("home/tam.db")).unwrap(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn tam_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command();
        cmd.args(args).envs(env.iter().copied());
        let Output { status, stdout, stderr } = cmd.output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    pub(crate) fn tam(&self, args: &[&str]) -> Run {
        self.tam_env(args, &[])
    }

    /// Runs `tam` and expects success.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let run = self.tam(args);
        assert_eq!(run.code, 0, "tam {args:?} failed:\n{}\n{}", run.stdout, run.stderr);
        run.stdout
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
