//! A throw-away PostgreSQL cluster (`initdb` + `pg_ctl`, from the distribution's packages) on a
//! free port, and a fresh database per test.
//!
//! `scripts/test` starts one cluster for the whole run and names it in `TAM_TEST_POSTGRES`
//! (`postgres://tam@127.0.0.1:<port>`); then the store and end-to-end tests run on it, each in a
//! database of its own. Without it they run on SQLite, and the tests only PostgreSQL can run
//! start a cluster of their own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The cluster `scripts/test` started for this run, if any.
pub fn shared_cluster() -> Option<String> {
    std::env::var("TAM_TEST_POSTGRES").ok().filter(|u| !u.trim().is_empty())
}

/// Where a test's store goes: a fresh database of the shared cluster when there is one, or
/// `None` for the SQLite default.
pub fn test_database() -> Option<String> {
    shared_cluster().map(|cluster| create_database(&cluster))
}

/// A new, empty database on the cluster at `cluster` (`postgres://user@host:port`); its URL.
pub fn create_database(cluster: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("tam_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let (user, host, port) = parts(cluster);
    let status = Command::new(bin_dir().join("createdb"))
        .args(["-h", &host, "-p", &port, "-U", &user, &name])
        .stdout(Stdio::null())
        .status()
        .expect("createdb runs");
    assert!(status.success(), "createdb {name} on {cluster} failed");
    format!("{}/{name}", cluster.trim_end_matches('/'))
}

/// `(user, host, port)` of `postgres://user@host:port`.
fn parts(cluster: &str) -> (String, String, String) {
    let rest = cluster.split_once("://").map_or(cluster, |(_, rest)| rest).trim_end_matches('/');
    let (user, host_port) = rest.split_once('@').unwrap_or(("postgres", rest));
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    (user.to_owned(), host.to_owned(), port.to_owned())
}

/// The directory of PostgreSQL's programs: `TAM_PG_BIN`, or the newest
/// `/usr/lib/postgresql/<version>/bin`, or whatever `PATH` finds.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TAM_PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
        versions
            .filter_map(|v| v.ok())
            .filter_map(|v| Some((v.file_name().to_str()?.parse::<u32>().ok()?, v.path().join("bin"))))
            .max()
            .map(|(_, bin)| bin)
    });
    newest.unwrap_or_default()
}

/// A cluster of its own, stopped and removed when dropped.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    /// `pg_ctl`'s `-o` options: its port and socket directory.
    options: String,
    /// `postgres://tam@127.0.0.1:<port>`: add `/<database>`.
    pub url: String,
}

impl PostgresServer {
    /// Creates and starts one (about a second). Runs as the `postgres` user when this process
    /// is root, which PostgreSQL refuses to run as.
    pub fn start() -> PostgresServer {
        let dir = tempfile::Builder::new().prefix("tam-pg-").tempdir().unwrap();
        let data = dir.path().join("data");
        as_server_user(dir.path());
        let initdb = server_command("initdb")
            .args(["-D", &data.to_string_lossy(), "-A", "trust", "-U", "tam", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C.UTF-8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb must be installed (scripts/test installs PostgreSQL)");
        assert!(initdb.success(), "initdb failed in {}", dir.path().display());
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=200",
                dir.path().display()
            );
            if pg_start(dir.path(), &options) {
                return PostgresServer { dir, options, url: format!("postgres://tam@127.0.0.1:{port}") };
            }
        }
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        panic!("PostgreSQL did not start on any of 10 ports:\n{log}");
    }

    /// A new, empty database on it; its URL.
    pub fn database(&self) -> String {
        create_database(&self.url)
    }

    /// Stops the server at once, as a crash or a failover would: its clients' connections end.
    pub fn stop(&self) {
        let _ = server_command("pg_ctl")
            .args(["-D", &self.dir.path().join("data").to_string_lossy(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts it again after [`PostgresServer::stop`], on the same port, with its data.
    pub fn restart(&self) {
        assert!(pg_start(self.dir.path(), &self.options), "PostgreSQL did not start again");
    }
}

/// `pg_ctl start` of the cluster in `dir`, waiting until it accepts connections.
fn pg_start(dir: &Path, options: &str) -> bool {
    server_command("pg_ctl")
        .args(["-D", &dir.join("data").to_string_lossy(), "-l", &dir.join("log").to_string_lossy()])
        .args(["-o", options, "-w", "-t", "30", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("pg_ctl runs")
        .success()
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The cluster `scripts/test` started, or one of this test's own: for tests only PostgreSQL can
/// run (several replicas on one database, `tam migrate`). Keep the server, if any, alive while
/// the database is used.
pub fn cluster() -> (Option<PostgresServer>, String) {
    match shared_cluster() {
        Some(url) => (None, url),
        None => {
            let server = PostgresServer::start();
            let url = server.url.clone();
            (Some(server), url)
        }
    }
}

fn is_root() -> bool {
    // The process's effective uid, as `id -u` says it, without a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn server_command(program: &str) -> Command {
    let path = bin_dir().join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn as_server_user(dir: &Path) {
    if is_root() {
        let status = Command::new("chown").args(["-R", "postgres"]).arg(dir).status().expect("chown runs");
        assert!(status.success(), "chown postgres {}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_user_host_and_port() {
        assert_eq!(parts("postgres://tam@127.0.0.1:5999"), ("tam".into(), "127.0.0.1".into(), "5999".into()));
    }
}
