//! Runs the `redis-benchmark` tool (Debian's `redis-tools`) for baselines
//! and reads the requests per second and latencies from its `--csv` output.

use std::process::Stdio;
use std::time::Duration;

use crate::error::Error;

const TOOL: &str = "redis-benchmark";
const INSTALL_HINT: &str = "Debian/Ubuntu: `apt-get install -y redis-tools`; macOS: `brew install redis`";

/// Fails with an install hint when `redis-benchmark` is missing.
pub async fn require() -> Result<(), Error> {
    crate::target::require_tool(TOOL, INSTALL_HINT).await
}

/// One `redis-benchmark` invocation.
#[derive(Debug, Clone)]
pub struct RedisBenchmark {
    /// `-h`
    pub host: String,
    /// `-p`
    pub port: u16,
    /// `-n`: requests in total.
    pub requests: u64,
    /// `-c`: connections.
    pub clients: u32,
    /// `-P`: requests per pipeline.
    pub pipeline: u32,
    /// `-r`: the range of `__rand_int__`; `None` leaves it unreplaced.
    pub keyspace: Option<u64>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// What one run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Requests per second.
    pub rps: f64,
    /// Median request latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile request latency, in milliseconds.
    pub p99_ms: f64,
}

impl RedisBenchmark {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-h".to_owned(),
            self.host.clone(),
            "-p".to_owned(),
            self.port.to_string(),
            "-n".to_owned(),
            self.requests.to_string(),
            "-c".to_owned(),
            self.clients.to_string(),
            "-P".to_owned(),
            self.pipeline.to_string(),
        ];
        if let Some(keyspace) = self.keyspace {
            args.extend(["-r".to_owned(), keyspace.to_string()]);
        }
        args.push("--csv".to_owned());
        args.extend(self.command.iter().cloned());
        args
    }

    /// The command line as a shell would take it, to paste and reproduce.
    pub fn command_line(&self) -> String {
        std::iter::once(TOOL.to_owned()).chain(self.args().iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
    }

    /// Runs it, killing it after `limit`.
    pub async fn run(&self, limit: Duration) -> Result<Measured, Error> {
        let child = tokio::process::Command::new(TOOL)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::MissingTool { tool: TOOL, hint: INSTALL_HINT },
                _ => Error::Tool { command: TOOL.to_owned(), detail: e.to_string() },
            })?;
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| Error::Timeout { what: format!("{TOOL} {}", self.command.join(" ")), limit })?
            .map_err(|e| Error::Tool { command: TOOL.to_owned(), detail: e.to_string() })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::Tool {
                command: TOOL.to_owned(),
                detail: format!("{}: {stderr}{stdout}", output.status),
            });
        }
        parse_csv(&stdout).map_err(|detail| Error::Tool { command: TOOL.to_owned(), detail })
    }
}

/// Reads the last data row of `--csv` output:
/// `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`.
/// The test name is the command line, unescaped (a JSON argument brings its
/// own quotes and commas), so the numbers are taken from the right.
fn parse_csv(stdout: &str) -> Result<Measured, String> {
    const NUMBERS: usize = 7;
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("\"test\""))
        .ok_or_else(|| format!("no result row in its output: {stdout:?}"))?;
    let fields: Vec<&str> = line.trim_end_matches('"').rsplitn(NUMBERS + 1, "\",\"").collect();
    if fields.len() != NUMBERS + 1 {
        return Err(format!("unexpected CSV row: {line}"));
    }
    // rsplitn yields from the right: max, p99, p95, p50, min, avg, rps.
    let number = |i: usize, what: &str| -> Result<f64, String> {
        let value: f64 = fields[i].parse().map_err(|_| format!("{what} is not a number in: {line}"))?;
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(format!("{what} is {value} (too few requests to time?) in: {line}"))
        }
    };
    Ok(Measured { rps: number(6, "rps")?, p50_ms: number(3, "p50")?, p99_ms: number(1, "p99")? })
}

/// Quotes `arg` for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/=@%+,".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_numbers_are_read_from_the_right() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET k:__rand_int__ {\"a\":\"b, c\",\"d\":1}\",\"500000.00\",\"1.329\",\"0.440\",\"1.295\",\"2.415\",\"2.607\",\"2.735\"\n";
        assert_eq!(parse_csv(out), Ok(Measured { rps: 500_000.0, p50_ms: 1.295, p99_ms: 2.607 }));
    }

    #[test]
    fn unmeasurable_runs_are_errors() {
        let out = "\"SET k v\",\"inf\",\"0.054\",\"0.024\",\"0.031\",\"0.151\",\"0.151\",\"0.151\"\n";
        assert!(parse_csv(out).unwrap_err().contains("rps is inf"));
        assert!(parse_csv("").is_err());
        assert!(parse_csv("\"SET\",\"1\"").is_err());
    }

    #[test]
    fn command_line_quotes_what_the_shell_would_split() {
        let bench = RedisBenchmark {
            host: "127.0.0.1".to_owned(),
            port: 7000,
            requests: 10,
            clients: 50,
            pipeline: 16,
            keyspace: Some(1_000),
            command: vec!["SET".to_owned(), "k:__rand_int__".to_owned(), r#"{"a":"it's"}"#.to_owned()],
        };
        assert_eq!(
            bench.command_line(),
            r#"redis-benchmark -h 127.0.0.1 -p 7000 -n 10 -c 50 -P 16 -r 1000 --csv SET k:__rand_int__ '{"a":"it'\''s"}'"#
        );
    }
}
