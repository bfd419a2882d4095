//! Reading a process' memory from `/proc` (Linux): the resilience tests and
//! the bench tool measure the gateway with it.

/// The resident set size of process `pid` in KiB (`VmRSS` of
/// `/proc/<pid>/status`); `None` off Linux or when the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, "VmRSS:")
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
    }
}
