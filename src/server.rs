//! Starting and stopping llama-server for sweeps and the quickstart. The server gets a free
//! loopback port, `--metrics`, its own process group, and is told to die with fixbench
//! (PR_SET_PDEATHSIG); `Drop` stops it (terminate, then kill after a grace period).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::exec::{wait_until, Waited};

/// The llama-server the project's setup builds (scripts/build-llama-server.sh).
pub fn cached_binary() -> PathBuf {
    cache_dir().join("llama-server-0.3.36/bin/llama-server")
}

/// The SmolLM2 model the project's setup fetches (scripts/fetch-model.sh).
pub fn cached_model() -> PathBuf {
    cache_dir().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn cache_dir() -> PathBuf {
    match std::env::var_os("FIXBENCH_CACHE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/fixbench"),
    }
}

/// The binary to use when none is named: `FIXBENCH_LLAMA_SERVER`, the setup's build, PATH.
pub fn default_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FIXBENCH_LLAMA_SERVER") {
        return PathBuf::from(p);
    }
    let cached = cached_binary();
    if cached.exists() {
        cached
    } else {
        PathBuf::from("llama-server")
    }
}

#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub model: PathBuf,
    /// Extra flags, passed as given.
    pub args: Vec<String>,
    pub log: PathBuf,
    pub health_timeout: Duration,
    /// Its `LLAMA_API_KEY`, when it should want one (fixbench's own environment has none).
    pub api_key: Option<String>,
}

pub struct RunningServer {
    child: Option<Child>,
    pub url: String,
    /// The command line it was started with, less the address (host, port), which changes
    /// between starts: the fingerprint's `flags`.
    pub flags: Vec<String>,
}

/// What a user whose llama-server dies at start-up can do.
pub const WAY_OUT: &str =
    "rebuild it for this machine with scripts/build-llama-server.sh (it smoke-tests what it builds), \
or point FIXBENCH_LLAMA_SERVER (a sweep's `binary`) at a llama-server of your own";

/// How a process ended, in words: `exited with code 1`, `was killed by SIGSEGV (signal 11)`.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("was killed by {} (signal {sig})", s.as_str()),
            Err(_) => format!("was killed by signal {sig}"),
        },
        (None, None) => format!("ended with {status}"),
    }
}

/// The sentence for a llama-server that ended before it was healthy: how it ended, and the way
/// out when a signal killed it (a binary that cannot run here); an exit code is a refusal its
/// log explains (a bad flag, a missing file).
pub fn died_at_start(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let how = describe_exit(status);
    match status.signal() {
        Some(_) => format!("llama-server {how} during start-up: {WAY_OUT}"),
        None => format!("llama-server {how} during start-up (its log says why)"),
    }
}

/// Why a server could not be used: a sentence and the tail of its log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct StartFailure {
    pub reason: String,
    pub log_tail: String,
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl RunningServer {
    pub fn start(spec: &ServerSpec, cancel: &AtomicBool) -> Result<RunningServer, StartFailure> {
        let fail = |reason: String, log: &Path| StartFailure { reason, log_tail: log_tail(log, 15) };
        if !spec.model.is_file() {
            return Err(fail(format!("model file {} does not exist", spec.model.display()), &spec.log));
        }
        let port = free_port().map_err(|e| fail(format!("no free loopback port: {e}"), &spec.log))?;
        // The flags a fingerprint records, then the address, which changes between starts.
        let mut recorded: Vec<String> = vec!["-m".into(), spec.model.to_string_lossy().into_owned()];
        recorded.extend(spec.args.iter().cloned());
        recorded.push("--metrics".into());
        let address = ["--host".to_string(), "127.0.0.1".into(), "--port".into(), port.to_string()];
        if let Some(dir) = spec.log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let log = std::fs::File::create(&spec.log)
            .map_err(|e| fail(format!("cannot create {}: {e}", spec.log.display()), &spec.log))?;
        let log2 = log.try_clone().map_err(|e| fail(e.to_string(), &spec.log))?;
        let mut cmd = Command::new(&spec.binary);
        cmd.args(&recorded).args(&address).stdin(Stdio::null()).stdout(log).stderr(log2);
        if let Some(key) = &spec.api_key {
            cmd.env("LLAMA_API_KEY", key);
        }
        // SAFETY: setsid and prctl are async-signal-safe and touch no shared memory.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            fail(
                format!(
                    "cannot start {}: {e} (run scripts/build-llama-server.sh, or name `binary`)",
                    spec.binary.display()
                ),
                &spec.log,
            )
        })?;
        let mut full = vec![spec.binary.to_string_lossy().into_owned()];
        full.extend(recorded);
        let mut server = RunningServer { child: Some(child), url: format!("http://127.0.0.1:{port}"), flags: full };
        let url = format!("{}/health", server.url);
        let mut healthy = false;
        let child = server.child.as_mut().expect("started above");
        let waited = wait_until(child, Instant::now() + spec.health_timeout, Duration::from_millis(200), || {
            healthy = ureq::get(&url).timeout(Duration::from_secs(2)).call().is_ok();
            healthy || cancel.load(Ordering::SeqCst)
        });
        match waited {
            Ok(Waited::GaveUp) if healthy => Ok(server),
            Ok(Waited::GaveUp) => Err(fail("interrupted while waiting for the server".into(), &spec.log)),
            Ok(Waited::Exited(status)) => {
                server.child = None;
                Err(fail(died_at_start(status), &spec.log))
            }
            Ok(Waited::TimedOut) => Err(fail(
                format!("llama-server was not healthy within {:.0} s", spec.health_timeout.as_secs_f64()),
                &spec.log,
            )),
            Err(e) => Err(fail(format!("cannot wait for llama-server: {e}"), &spec.log)),
        }
    }

    /// Terminates the server (its whole process group), killing it after a grace period.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pgid = Pid::from_raw(child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let grace = Duration::from_secs(5);
        if let Ok(Waited::Exited(_)) = wait_until(&mut child, Instant::now() + grace, grace, || false) {
            return;
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a log file, read from its end.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn exits_are_told_by_code_or_signal_name() {
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(1 << 8)), "exited with code 1");
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(11)), "was killed by SIGSEGV (signal 11)");
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(4 | 0x80)), "was killed by SIGILL (signal 4)");
    }
}
