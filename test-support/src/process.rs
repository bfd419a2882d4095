//! Processes a test owns: a binary of the workspace started with exactly
//! the environment the test gives it (nothing inherited, as in a
//! container), its output captured in a file so a failing check can show
//! it, killed when dropped; and reading a process' memory from `/proc`
//! (Linux), with which the resilience tests and the bench measure the
//! gateway.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running process owned by a test.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `program` with only `env` set; stdout and stderr go to
    /// `<log_dir>/<name>.log`.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(name: &str, program: &Path, env: &BTreeMap<String, String>, log_dir: &Path) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let stdout = File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let stderr = stdout.try_clone().expect("clone the log file handle");
        let child = Command::new(program)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Self { name: name.to_owned(), child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL: a crash, not a shutdown) and
    /// reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `check` every 20 ms until it yields `Some`, or panics after
    /// `timeout` (or as soon as the process exits) with the process output.
    pub fn wait_for<T>(&mut self, what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) while waiting for {what}; its output:\n{}", self.name, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what} from {}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The resident set size of process `pid` in KiB (`VmRSS` of
/// `/proc/<pid>/status`); `None` off Linux or when the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, "VmRSS:")
}

/// This process' soft limit of open files (`Max open files` of
/// `/proc/self/limits`); `None` off Linux or when unlimited.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits.lines().find_map(|l| l.strip_prefix("Max open files"))?.split_whitespace().next()?.parse().ok()
}

/// A `kB` field of a `/proc/<pid>/status` text.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(field))?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0) || !cfg!(target_os = "linux"));
        assert!(open_files_limit().is_some_and(|n| n > 0) || !cfg!(target_os = "linux"));
    }
}
