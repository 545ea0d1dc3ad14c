//! What Linux says about a process: CPU seconds (`/proc/PID/stat`) and resident memory
//! (`/proc/PID/status`: `VmRSS`, and the peak `VmHWM`).

use std::path::Path;

/// A process's CPU time and memory at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time, in seconds (all threads).
    pub cpu_seconds: f64,
    /// Resident memory now, in bytes.
    pub rss_bytes: u64,
    /// Peak resident memory so far, in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
pub fn sample(pid: u32, clock_ticks: u64) -> Option<ProcSample> {
    sample_at(&Path::new("/proc").join(pid.to_string()), clock_ticks)
}

/// This process's sample.
pub fn sample_self(clock_ticks: u64) -> Option<ProcSample> {
    sample_at(Path::new("/proc/self"), clock_ticks)
}

fn sample_at(dir: &Path, clock_ticks: u64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ProcSample {
        cpu_seconds: ticks as f64 / clock_ticks.max(1) as f64,
        rss_bytes: status_kib(&status, "VmRSS:").unwrap_or(0) * 1024,
        peak_rss_bytes: status_kib(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// `utime + stime` from a `/proc/PID/stat` line. The command name (field 2) is in parentheses and
/// may hold spaces or parentheses itself, so the fields are counted from the last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   1234 kB` line of `/proc/PID/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The kernel's clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`; 100 if unknown,
/// which is what Linux uses on every common architecture).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}
