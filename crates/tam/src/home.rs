//! The home directory: where the database, the config and (later) drafts live.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tam_store::{Location, Store};

use crate::Outcome;
use crate::config::{self, Config};

/// A resolved home directory.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// `--home`, else `TAM_HOME` (clap reads both), else the platform data directory.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home> {
        let dir = match flag {
            Some(dir) => dir,
            None => {
                platform_data_dir().context("cannot find a data directory; pass --home or set TAM_HOME")?.join("tam")
            }
        };
        Ok(Home { dir })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("tam.toml")
    }

    /// The home's SQLite file, the store unless the config names another.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("tam.db")
    }

    /// Where the store is: the config's PostgreSQL database, else the home's SQLite file.
    pub fn store_location(&self, config: &Config) -> Location {
        config.store.clone().unwrap_or_else(|| Location::File(self.db_path()))
    }

    /// Creates the directory if needed and opens the store; every command works on a fresh home.
    pub fn open(&self) -> Result<(Store, Config)> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create home {}", self.dir.display()))?;
        let config = Config::load(&self.config_path(), config::tam_env()?)?;
        let store = Store::open_at(&self.store_location(&config))?;
        Ok((store, config))
    }
}

fn platform_data_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if cfg!(windows) {
        return var("APPDATA");
    }
    if cfg!(target_os = "macos") {
        return var("HOME").map(|h| h.join("Library/Application Support"));
    }
    var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))
}

pub fn init(home: &Home) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let path = home.config_path();
    let wrote = write_if_absent(&path, &config::default_file())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "home      {}", home.dir.display())?;
    writeln!(
        out,
        "config    {} ({})",
        path.display(),
        if wrote { "written with commented defaults" } else { "kept as it was" }
    )?;
    writeln!(out, "database  {} (schema version {})", home.store_location(&config), store.schema_version()?)?;
    Ok(Outcome::Done)
}

fn write_if_absent(path: &Path, text: &str) -> Result<bool> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}
