//! Where a store lives: a SQLite file, or a PostgreSQL database named by URL.

use std::path::PathBuf;

/// Where a store's database is.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created on first open).
    File(PathBuf),
    /// A PostgreSQL database, `postgres://user:password@host:port/db`.
    Postgres(String),
}

impl Location {
    /// Reads a `[store] url` or `TAM_DATABASE_URL`: a `postgres://` (or `postgresql://`) URL.
    /// Anything else is refused with what was expected, never with the value (it may hold a
    /// password pasted in the wrong place).
    pub fn from_url(url: &str) -> Result<Location, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let config: Result<postgres::Config, _> = url.parse();
            return match config {
                Ok(_) => Ok(Location::Postgres(url.to_owned())),
                Err(e) => Err(format!("{} does not read as a PostgreSQL URL: {e}", redact(url))),
            };
        }
        Err("expected a PostgreSQL URL, postgres://user@host:port/database".to_owned())
    }

    /// A schema of the PostgreSQL database at `url` for the caller alone, dropped and created
    /// afresh: `tam bench` runs in schemas of its own and leaves the rest of the database alone.
    pub fn fresh_schema(url: &str, schema: &str) -> Result<Location, crate::StoreError> {
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(crate::StoreError::Connect {
                url: redact(url),
                reason: format!("{schema:?} is not a plain schema name"),
            });
        }
        connect(url)?.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))?;
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(Location::Postgres(format!("{url}{separator}options=-csearch_path%3D{schema}")))
    }

    /// Whether several processes on several machines can share it.
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// Shown without the password.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({self})")
    }
}

/// A URL shown without its password: rebuilt from what the driver reads of it (user, hosts,
/// ports, database), so no spelling of the URL can carry a password into the result. One the
/// driver cannot read is not shown at all.
pub(crate) fn redact(url: &str) -> String {
    use postgres::config::Host;
    let Ok(config) = url.trim().parse::<postgres::Config>() else {
        return "[a PostgreSQL URL that does not read; not shown]".to_owned();
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(if ports.len() == 1 { ports.first() } else { None }) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let database = config.get_dbname().map(|d| format!("/{d}")).unwrap_or_default();
    format!("postgres://{user}{}{database}", hosts.join(","))
}

/// A client connected to `url`; a failure names the URL without its password.
pub(crate) fn connect(url: &str) -> Result<postgres::Client, crate::StoreError> {
    let failed = |reason: String| crate::StoreError::Connect { url: redact(url), reason };
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| failed(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        // A host that does not answer would otherwise hold the caller for the system's TCP
        // timeout, minutes; the URL's `connect_timeout` wins.
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.connect(postgres::NoTls).map_err(|e| failed(cause(&e)))
}

/// A driver error in a line: the server's message (the driver alone says only "db error"),
/// or the driver's error and its first cause.
pub(crate) fn cause(e: &postgres::Error) -> String {
    use std::error::Error;
    if let Some(db) = e.as_db_error() {
        let mut line = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            line.push_str(": ");
            line.push_str(detail);
        }
        return line;
    }
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(redact("postgres://tam:s3cret@db.internal:5432/tam"), "postgres://tam@db.internal:5432/tam");
        assert_eq!(redact("postgres://db:5432/tam?user=tam&password=s3cret"), "postgres://tam@db:5432/tam");
        assert_eq!(redact("postgres://tam@db/tam"), "postgres://tam@db:5432/tam", "the port the driver uses");
        // Passwords as generators make them: the driver reads them, and none is shown.
        for url in [
            "postgres://tam:ab/cd@db:5432/tam",
            "postgres://tam:ab?cd@db:5432/tam",
            "postgres://tam:a%40b@db:5432/tam",
            "postgresql://tam:hunter2@h1:5432,h2:5433/tam?sslmode=disable",
        ] {
            let shown = redact(url);
            for secret in ["ab/cd", "ab?cd", "a%40b", "a@b", "hunter2", "cd@"] {
                assert!(!shown.contains(secret), "{url} shown as {shown}");
            }
        }
        let shown = Location::Postgres("postgresql://u:hunter2@h/d".into()).to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn only_a_postgres_url_is_a_location() {
        assert!(Location::from_url("postgres://tam@localhost:5432/tam").is_ok());
        let refused = Location::from_url("mysql://root:hunter2@h/d").unwrap_err();
        assert!(!refused.contains("hunter2"), "{refused}");
        let refused = Location::from_url("postgres://u:hunter2@h:notaport/d").unwrap_err();
        assert!(!refused.contains("hunter2"), "{refused}");
    }
}
