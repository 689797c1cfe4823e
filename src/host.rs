//! The machine a run ran on, recorded with every run.

use crate::store::Host;

/// fixbench's cache folder, where setup keeps llama-server and the model and runs keep what
/// outlives them (model hashes, problems' environments): `$FIXBENCH_CACHE`, else
/// `$XDG_CACHE_HOME/fixbench`, else `~/.cache/fixbench`.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("FIXBENCH_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("fixbench"))
}

pub fn describe() -> Host {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpu = read("/proc/cpuinfo").and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let memory_bytes = read("/proc/meminfo").and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    Host {
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_bytes,
        hostname: hostname(),
    }
}

/// This machine's host name, when the kernel says.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string())
}

/// The git commit fixbench was built from (set by build.rs), if known.
pub fn git_commit() -> Option<String> {
    option_env!("FIXBENCH_GIT_COMMIT").filter(|s| !s.is_empty()).map(str::to_string)
}
