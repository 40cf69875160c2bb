//! Where the things under test are: the server binary, the built widget,
//! the browser, and where failures leave their artifacts.

use std::path::{Path, PathBuf};

use crate::{Context, Failure, Result};

/// The workspace root (`e2e/..`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The `optrail-server` binary of the profile the tests were built with:
/// `OPTRAIL_SERVER_BIN`, else next to the test executable's `deps/`
/// folder, else `target/debug/`.
pub fn server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OPTRAIL_SERVER_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Failure::new(format!(
                "OPTRAIL_SERVER_BIN={} is not a file",
                path.display()
            )))
        };
    }
    let beside_tests = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("optrail-server")));
    let candidates = beside_tests
        .into_iter()
        .chain([root().join("target/debug/optrail-server")]);
    let mut tried = Vec::new();
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(Failure::new(format!(
        "the optrail-server binary is missing (looked at {}): run `cargo build -p optrail-server` \
         first (scripts/test.sh does)",
        tried.join(", ")
    )))
}

/// The Trunk-built widget (`dist/`), checked for its `index.html`.
pub fn dist_dir() -> Result<PathBuf> {
    let dist = std::env::var_os("OPTRAIL_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("dist"));
    if dist.join("index.html").is_file() {
        Ok(dist)
    } else {
        Err(Failure::new(format!(
            "the built widget is missing ({} has no index.html): run `scripts/build-web.sh` \
             first (after `scripts/setup.sh`; scripts/test.sh does both)",
            dist.display()
        )))
    }
}

/// A static directory for the server (`ServerOptions::static_dir`): the
/// built widget plus the pages of `e2e/fixtures/` (host pages with options
/// of their own). Removed when dropped.
pub fn site_with_fixtures() -> Result<tempfile::TempDir> {
    let site = tempfile::Builder::new()
        .prefix("optrail-e2e-site-")
        .tempdir()
        .context("cannot create a static directory")?;
    copy_dir(&dist_dir()?, site.path())?;
    copy_dir(&root().join("e2e/fixtures"), site.path())?;
    Ok(site)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).context("reading a directory to copy")? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `CHROMEDRIVER`, else `/usr/bin/chromedriver`.
pub fn chromedriver() -> Result<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Failure::new(format!(
            "chromedriver is missing at {}: run `scripts/setup.sh` (Debian's chromium-driver) \
             or set CHROMEDRIVER",
            path.display()
        )))
    }
}

/// `CHROME`, else `/usr/bin/chromium`.
pub fn chromium() -> Result<PathBuf> {
    let path = std::env::var_os("CHROME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Failure::new(format!(
            "Chromium is missing at {}: run `scripts/setup.sh` (Debian's chromium) or set CHROME",
            path.display()
        )))
    }
}

/// `e2e-artifacts/` at the workspace root (gitignored).
pub fn artifacts_dir() -> PathBuf {
    root().join("e2e-artifacts")
}
