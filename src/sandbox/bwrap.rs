//! The bubblewrap command line: probing that it can run here, and wrapping an agent's argv.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::view::SYSTEM;
use crate::exec::{wait_until, Waited};

/// The bubblewrap binary: `FIXBENCH_BWRAP`, else `bwrap` on PATH.
pub fn binary() -> PathBuf {
    std::env::var_os("FIXBENCH_BWRAP").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("bwrap"))
}

/// Namespaces every sandbox gets: its own processes, and a user and cgroup namespace where the
/// kernel allows them. The network stays shared so that the agent reaches the proxy on
/// loopback.
const NAMESPACES: &[&str] = &["--unshare-pid", "--unshare-user-try", "--unshare-cgroup-try"];

/// Flags of every sandbox. The agent is pid 1 of its namespace (`--as-pid-1`, no bwrap reaper
/// in between): when it exits the kernel kills whatever it left and bwrap exits only after
/// that, so no bwrap process outlives the agent (a reaper that did would be re-parented to
/// fixbench and counted as a process the agent left behind). As pid 1 it ignores signals
/// from outside other than SIGKILL, the only one fixbench sends.
const FLAGS: &[&str] = &["--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL"];
/// Namespaces used when the probe shows they work.
const OPTIONAL_NAMESPACES: &[&str] = &["--unshare-ipc", "--unshare-uts"];

/// Why bubblewrap cannot run here, or the namespace flags that work. Probed once per process.
pub fn probe(bwrap: &Path) -> Result<Vec<&'static str>, String> {
    static RESULT: OnceLock<Result<Vec<&'static str>, String>> = OnceLock::new();
    RESULT.get_or_init(|| probe_uncached(bwrap)).clone()
}

fn probe_uncached(bwrap: &Path) -> Result<Vec<&'static str>, String> {
    let full: Vec<&'static str> = NAMESPACES.iter().chain(OPTIONAL_NAMESPACES).copied().collect();
    match try_sandbox(bwrap, &full) {
        Ok(()) => Ok(full),
        Err(_) => try_sandbox(bwrap, NAMESPACES).map(|()| NAMESPACES.to_vec()),
    }
}

/// Starts `true` in a minimal sandbox with `namespaces`.
fn try_sandbox(bwrap: &Path, namespaces: &[&str]) -> Result<(), String> {
    let mut child = Command::new(bwrap)
        .args(FLAGS)
        .args(namespaces)
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("`{}` is not installed", bwrap.display()),
            _ => format!("cannot start `{}`: {e}", bwrap.display()),
        })?;
    let limit = Duration::from_secs(20);
    let status = match wait_until(&mut child, Instant::now() + limit, limit, || false).map_err(|e| e.to_string())? {
        Waited::Exited(status) => status,
        Waited::TimedOut | Waited::GaveUp => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`{}` did not start a sandbox within 20 s", bwrap.display()));
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        use std::io::Read as _;
        let _ = s.read_to_string(&mut err);
    }
    let err = err.trim();
    Err(if err.is_empty() { format!("`{}` failed with {status}", bwrap.display()) } else { err.to_string() })
}

/// What one sandboxed run mounts.
#[derive(Debug, Clone)]
pub struct Mounts<'a> {
    pub namespaces: &'a [&'static str],
    /// Shown read-only at the same path.
    pub read_only: &'a [PathBuf],
    /// Shown read-write at the same path (the trial's scratch folder: workdir and home).
    pub read_write: &'a [PathBuf],
    pub cwd: &'a Path,
}

/// The full command: `bwrap <mounts> -- <argv>`.
pub fn wrap(bwrap: &Path, m: &Mounts, argv: &[String]) -> Vec<String> {
    let mut a: Vec<String> = vec![bwrap.to_string_lossy().into_owned()];
    let mut push = |words: &[&str]| a.extend(words.iter().map(|w| w.to_string()));
    push(FLAGS);
    push(m.namespaces);
    for dir in SYSTEM {
        let p = Path::new(dir);
        match std::fs::symlink_metadata(p) {
            Ok(md) if md.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    push(&["--symlink", &target.to_string_lossy(), dir]);
                }
            }
            Ok(md) if md.is_dir() => push(&["--ro-bind", dir, dir]),
            _ => {}
        }
    }
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    // A resolv.conf that points outside /etc (systemd-resolved) comes along.
    if let Ok(real) = Path::new("/etc/resolv.conf").canonicalize() {
        if !SYSTEM.iter().any(|s| real.starts_with(s)) {
            let r = real.to_string_lossy();
            push(&["--ro-bind", &r, &r]);
        }
    }
    for p in m.read_only {
        let p = p.to_string_lossy();
        push(&["--ro-bind", &p, &p]);
    }
    for p in m.read_write {
        let p = p.to_string_lossy();
        push(&["--bind", &p, &p]);
    }
    push(&["--remount-ro", "/", "--chdir", &m.cwd.to_string_lossy(), "--"]);
    a.extend(argv.iter().cloned());
    a
}

/// bubblewrap's own complaint (it could not set the sandbox up, or exec the program), which
/// it prints as the first line of stderr, prefixed `bwrap: `, before exiting with 1.
pub fn own_error(stderr_log: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(stderr_log).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let line = text.lines().next()?;
    line.strip_prefix("bwrap: ").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_mounts_in_order_and_ends_with_the_argv() {
        let ro = vec![PathBuf::from("/opt/agents")];
        let rw = vec![PathBuf::from("/tmp/fixbench-x")];
        let m =
            Mounts { namespaces: NAMESPACES, read_only: &ro, read_write: &rw, cwd: Path::new("/tmp/fixbench-x/work") };
        let argv = wrap(Path::new("bwrap"), &m, &["agent".into(), "--flag".into()]);
        let s = argv.join(" ");
        let at = |w: &str| s.find(w).unwrap_or_else(|| panic!("`{w}` missing in {s}"));
        assert!(at("--tmpfs /tmp") < at("--bind /tmp/fixbench-x /tmp/fixbench-x"), "{s}");
        assert!(at("--ro-bind /opt/agents") < at("--bind /tmp/fixbench-x"), "{s}");
        assert!(s.contains("--unshare-pid") && s.contains("--as-pid-1") && s.contains("--cap-drop ALL"), "{s}");
        assert!(!s.contains("--unshare-net") && !s.contains("--unshare-all"), "the network stays shared: {s}");
        assert!(s.ends_with("--remount-ro / --chdir /tmp/fixbench-x/work -- agent --flag"), "{s}");
    }

    #[test]
    fn own_errors_are_told_from_the_agents() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("err");
        std::fs::write(&f, "bwrap: execvp agent: No such file or directory\n").unwrap();
        assert_eq!(own_error(&f).as_deref(), Some("execvp agent: No such file or directory"));
        std::fs::write(&f, "Traceback\n").unwrap();
        assert_eq!(own_error(&f), None);
    }
}
