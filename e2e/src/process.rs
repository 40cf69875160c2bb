//! Child processes that end with the test, whatever happens to it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};

use crate::{Context, Result};

/// A child process killed (SIGKILL) and reaped on drop. With `group`, it
/// leads a process group of its own and the whole group is killed: that is
/// how a browser started by chromedriver goes too, even when no WebDriver
/// session was closed (a panicking test).
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    group: bool,
}

impl ChildGuard {
    pub fn spawn(name: impl Into<String>, mut command: Command, group: bool) -> Result<Self> {
        let name = name.into();
        if group {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .context(format_args!("cannot start {name} ({command:?})"))?;
        Ok(Self {
            name,
            child: Some(child),
            group,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status, if it has exited already.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL (the group too, with `group`), then reap. Idempotent.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.group && child.try_wait().ok().flatten().is_none() {
            // Best effort: `kill` from procps takes a negative pid as a group.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
