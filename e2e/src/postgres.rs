//! A throw-away PostgreSQL cluster (`scripts/pg.sh`) for the scenarios
//! that run several server instances on one database: initdb in a
//! temporary directory, a free loopback port, no system service. Stopped
//! (immediately) and removed when dropped.
//!
//! Debian's `postgresql` package must be installed (`scripts/setup.sh`
//! installs it): without it, starting fails and says so. A scenario that
//! needs it fails rather than skips.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use crate::{Context, Failure, Result, workspace};

/// A running cluster; its database URL is [`Postgres::url`].
pub struct Postgres {
    dir: TempDir,
    url: String,
}

impl Postgres {
    /// initdb and start; blocks for the few seconds that takes.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("optrail-e2e-pg-")
            .tempdir()
            .context("cannot create the cluster's temporary directory")?;
        // As root the cluster runs as `postgres`, which must reach it.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))
            .context("cannot open the cluster's directory to the postgres user")?;
        let output = Command::new(script())
            .arg("start")
            .arg(data(&dir))
            // Durability is not what the scenarios check; speed is welcome.
            .env("PG_SETTINGS", "-c fsync=off")
            .output()
            .context("cannot run scripts/pg.sh")?;
        if !output.status.success() {
            let _ = Command::new(script()).arg("stop").arg(data(&dir)).output();
            return Err(Failure::new(format!(
                "this scenario needs PostgreSQL, and scripts/pg.sh could not start it ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(Self { dir, url })
    }

    /// `postgres://optrail@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(data(&self.dir))
            .output();
    }
}

/// The cluster's directory inside `dir` (pg.sh creates it).
fn data(dir: &TempDir) -> PathBuf {
    dir.path().join("pg")
}

fn script() -> PathBuf {
    workspace::root().join("scripts/pg.sh")
}
