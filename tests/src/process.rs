//! A binary of the workspace running as its own process with exactly the
//! environment a test gives it (nothing inherited, as in a container), its
//! output captured in a file so a failing check can show it. Killed when
//! dropped.

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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
