//! A one-line progress bar on stderr, drawn only when stderr is a terminal. With no known
//! total (0) it counts instead.

use std::io::{IsTerminal, Write};

pub struct Progress {
    label: String,
    total: u64,
    enabled: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        Progress { label: label.into(), total, enabled: Progress::shown() }
    }

    /// Whether a bar is drawn: worth counting its total only then.
    pub fn shown() -> bool {
        // A daemon's stderr is its JSON log: no bar there.
        std::io::stderr().is_terminal() && !crate::log::json()
    }

    pub fn update(&self, done: u64) {
        if !self.enabled {
            return;
        }
        if self.total == 0 {
            let _ = write!(std::io::stderr(), "\r{} {done}", self.label);
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done.min(self.total) * WIDTH / self.total) as usize;
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH as usize - filled));
        let _ = write!(std::io::stderr(), "\r{} [{bar}] {done}/{}", self.label, self.total);
    }

    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
