//! Running an untrusted command: its own session, stdin from /dev/null, stdout and stderr to
//! capped files, a deadline, and no survivors. fixbench makes itself a child subreaper, so a
//! process that escapes the agent's session (double fork, `setsid`) is re-parented to us and
//! killed with the rest.

mod exit_wait;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

pub use exit_wait::{wait_until, Waited};

/// How often a running agent is checked for a Ctrl-C (its exit wakes us at once).
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Bytes of each stream kept on disk; the rest is counted and dropped.
pub const DEFAULT_LOG_CAP: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set on top of the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Start from an empty environment instead of inheriting ours.
    pub env_clear: bool,
    pub timeout: Duration,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub log_cap: u64,
    /// A descriptor of ours the command inherits under the same number (grading's report
    /// channel); every other descriptor is closed on exec.
    pub inherit_fd: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    /// Why the command could not be started at all.
    pub spawn_error: Option<String>,
    pub elapsed: Duration,
    pub stdout: StreamStats,
    pub stderr: StreamStats,
    /// Processes still alive when the command ended (or timed out) and killed by us.
    pub killed_leftovers: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    pub kept: u64,
    pub dropped: u64,
}

/// Makes this process a child subreaper (Linux): orphans of the agent become our children.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

pub fn run(spec: &ExecSpec, cancel: &AtomicBool) -> ExecOutcome {
    let start = Instant::now();
    let mut out = ExecOutcome::default();
    let (stdout_file, stderr_file) = match (File::create(&spec.stdout), File::create(&spec.stderr)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            out.spawn_error = Some(format!("cannot create the agent's log files: {e}"));
            return out;
        }
    };
    let our_children_before = children_of(std::process::id() as i32);

    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]).current_dir(&spec.cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if spec.env_clear {
        cmd.env_clear();
    }
    cmd.envs(&spec.env);
    // Its processes inherit a mark of this command, so that an orphan re-parented to us is
    // told apart from another command's (several run at once).
    let mark = next_mark();
    cmd.env(MARK_VAR, &mark);
    // The command dies with fixbench (SIGKILLed, it runs no cleanup), as bubblewrap's
    // --die-with-parent and the server do: an unsandboxed agent would keep running.
    let parent = nix::unistd::getpid();
    let inherit_fd = spec.inherit_fd;
    // SAFETY: setsid, prctl, getppid and fcntl are async-signal-safe; nothing else runs
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if nix::unistd::getppid() != parent {
                // fixbench died before the death signal was set up.
                return Err(std::io::Error::other("fixbench exited"));
            }
            if let Some(fd) = inherit_fd {
                use nix::fcntl::{fcntl, FcntlArg, FdFlag};
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    // Spawned and registered under the lock, so that a concurrent `kill_all` that sees the
    // new child in the process table also sees it registered.
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let spawned = cmd.spawn();
    if let Ok(c) = &spawned {
        running.insert(c.id() as i32);
    }
    drop(running);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            out.spawn_error = Some(format!("cannot start `{}`: {e}", spec.argv[0]));
            out.elapsed = start.elapsed();
            return out;
        }
    };
    let pid = child.id() as i32;
    let _running = Running(pid);
    let cap = spec.log_cap;
    let so = child.stdout.take().expect("piped");
    let se = child.stderr.take().expect("piped");
    let t_out = thread::spawn(move || drain(so, stdout_file, cap));
    let t_err = thread::spawn(move || drain(se, stderr_file, cap));

    let status = match wait_until(&mut child, start + spec.timeout, CANCEL_CHECK, || cancel.load(Ordering::SeqCst)) {
        Ok(Waited::Exited(status)) => Some(status),
        Ok(Waited::TimedOut) => {
            out.timed_out = true;
            None
        }
        Ok(Waited::GaveUp) => {
            out.interrupted = true;
            None
        }
        Err(_) => None,
    };
    out.killed_leftovers = kill_all(pid, &our_children_before, &mark);
    let status = match status {
        Some(s) => Some(s),
        None => child.wait().ok(),
    };
    if let Some(status) = status {
        use std::os::unix::process::ExitStatusExt;
        out.exit_code = status.code();
        out.signal = status.signal();
    }
    out.elapsed = start.elapsed();
    out.stdout = t_out.join().unwrap_or_default();
    out.stderr = t_err.join().unwrap_or_default();
    out
}

/// The agents being run right now by this process (version probes run several at once). A
/// new child of ours that is one of them is not another agent's orphan.
static RUNNING: std::sync::Mutex<BTreeSet<i32>> = std::sync::Mutex::new(BTreeSet::new());

/// Removes its entry from [`RUNNING`] when the command is done.
struct Running(i32);

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Copies a pipe to a file up to `cap` bytes, counting and dropping the rest, in fixed memory.
fn drain(mut from: impl Read, mut to: File, cap: u64) -> StreamStats {
    let mut stats = StreamStats::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = cap.saturating_sub(stats.kept) as usize;
        let keep = n.min(room);
        if keep > 0 && to.write_all(&buf[..keep]).is_ok() {
            stats.kept += keep as u64;
        }
        stats.dropped += (n - keep) as u64;
    }
    let _ = to.flush();
    stats
}

/// The environment variable that marks every process of one command.
pub const MARK_VAR: &str = "FIXBENCH_EXEC";

/// A mark no other command of this process has had.
fn next_mark() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The value of [`MARK_VAR`] in `pid`'s environment as it started: `Some("")` when it has
/// none (it cleared its environment), `None` when the process is gone or unreadable.
fn mark_of(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARK_VAR}=");
    let found = environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()));
    Some(found.unwrap_or_default())
}

/// Kills the agent's process group, every descendant of `root`, and every orphan re-parented to
/// us since the agent started that carries `mark` (or no mark, while no other command runs);
/// repeats until none is left. Returns how many it killed.
pub fn kill_all(root: i32, ours_before: &BTreeSet<i32>, mark: &str) -> usize {
    let _ = killpg(Pid::from_raw(root), Signal::SIGKILL);
    let me = std::process::id() as i32;
    let mut killed = BTreeSet::new();
    for _ in 0..200 {
        let table = process_table();
        let others = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let alone = others.iter().all(|&p| p == root);
        let mut roots: Vec<i32> = vec![root];
        roots.extend(
            table
                .iter()
                .filter(|(_, &pp)| pp == me)
                .map(|(&p, _)| p)
                .filter(|p| !ours_before.contains(p) && !others.contains(p))
                // Another command's orphan is left to that command; one that cleared its
                // environment is unattributable, and killed once this command runs alone.
                .filter(|&p| mark_of(p).is_some_and(|m| m == mark || (m.is_empty() && alone))),
        );
        let victims: Vec<i32> = descendants(&table, &roots).into_iter().filter(|&p| p != me && is_alive(p)).collect();
        if victims.is_empty() {
            break;
        }
        for &p in &victims {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            killed.insert(p);
        }
        // Reap the ones that were re-parented to us, leaving the agent itself to `Child::wait`.
        for &p in &victims {
            if p != root && table.get(&p) == Some(&me) {
                let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    killed.remove(&root);
    killed.len()
}

fn is_alive(pid: i32) -> bool {
    // A zombie is dead already: only its parent's wait is missing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_state_and_ppid(&stat), Some(('Z', _)) | None),
        Err(_) => false,
    }
}

/// `pid → ppid` for every process on the machine.
fn process_table() -> BTreeMap<i32, i32> {
    let mut table = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
                if let Some((_, ppid)) = stat_state_and_ppid(&stat) {
                    table.insert(pid, ppid);
                }
            }
        }
    }
    table
}

/// The state letter and parent pid of a `/proc/PID/stat` line (the command name may hold
/// spaces and parentheses, so parse from the last `)`).
fn stat_state_and_ppid(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn descendants(table: &BTreeMap<i32, i32>, roots: &[i32]) -> BTreeSet<i32> {
    let mut found: BTreeSet<i32> = roots.iter().copied().filter(|p| table.contains_key(p)).collect();
    loop {
        let before = found.len();
        for (&p, &pp) in table {
            if found.contains(&pp) {
                found.insert(p);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: i32) -> BTreeSet<i32> {
    process_table().into_iter().filter(|&(_, pp)| pp == pid).map(|(p, _)| p).collect()
}

/// Runs a short command with a deadline; returns its stdout (up to 64 KiB) if it exited with 0.
pub fn probe_output(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path, timeout: Duration) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let spec = ExecSpec {
        argv: argv.to_vec(),
        cwd: cwd.to_path_buf(),
        env: env.clone(),
        env_clear: false,
        timeout,
        stdout: dir.path().join("out"),
        stderr: dir.path().join("err"),
        log_cap: 64 * 1024,
        inherit_fd: None,
    };
    let o = run(&spec, &AtomicBool::new(false));
    if o.exit_code != Some(0) {
        return None;
    }
    std::fs::read_to_string(dir.path().join("out")).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The tests that run commands take turns: each counts the processes it killed, and a
    /// neighbour's unmarked orphan would be counted by whichever ends alone.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spec(dir: &Path, script: &str, timeout_ms: u64) -> ExecSpec {
        ExecSpec {
            argv: vec!["bash".into(), "-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: BTreeMap::new(),
            env_clear: false,
            timeout: Duration::from_millis(timeout_ms),
            stdout: dir.join("out"),
            stderr: dir.join("err"),
            log_cap: 1000,
            inherit_fd: None,
        }
    }

    #[test]
    fn exit_code_and_capped_output() {
        let _serial = serial();
        let d = tempfile::tempdir().unwrap();
        let o = run(&spec(d.path(), "head -c 5000 /dev/zero; echo err >&2; exit 3", 10_000), &AtomicBool::new(false));
        assert_eq!(o.exit_code, Some(3));
        assert!(!o.timed_out);
        assert_eq!(o.stdout, StreamStats { kept: 1000, dropped: 4000 });
        assert_eq!(std::fs::metadata(d.path().join("out")).unwrap().len(), 1000);
        assert_eq!(std::fs::read_to_string(d.path().join("err")).unwrap(), "err\n");
    }

    #[test]
    fn missing_binary_is_an_outcome() {
        let _serial = serial();
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path(), "", 1000);
        s.argv = vec!["/nonexistent/agent".into()];
        let o = run(&s, &AtomicBool::new(false));
        assert!(o.spawn_error.unwrap().contains("/nonexistent/agent"));
    }

    #[test]
    fn timeout_kills_children_in_other_sessions() {
        let _serial = serial();
        become_subreaper();
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("pids");
        let script = format!(
            "sleep 300 & echo $! >> {p}; setsid sleep 301 & echo $! >> {p}; (setsid bash -c 'sleep 302 & echo $! >> {p}; wait' &); sleep 1000",
            p = pidfile.display()
        );
        let o = run(&spec(d.path(), &script, 700), &AtomicBool::new(false));
        assert!(o.timed_out);
        let pids: Vec<i32> = std::fs::read_to_string(&pidfile).unwrap().lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(pids.len(), 3, "the script should have started three sleepers");
        for p in pids {
            assert!(!is_alive(p), "process {p} survived the timeout");
        }
    }

    #[test]
    fn commands_run_at_once_do_not_kill_each_other() {
        let _serial = serial();
        let d = tempfile::tempdir().unwrap();
        let (slow_dir, quick_dir) = (d.path().join("slow"), d.path().join("quick"));
        std::fs::create_dir_all(&slow_dir).unwrap();
        std::fs::create_dir_all(&quick_dir).unwrap();
        let slow = spec(&slow_dir, "sleep 0.5; exit 7", 10_000);
        let quick = spec(&quick_dir, "sleep 0.2; exit 0", 10_000);
        let no = AtomicBool::new(false);
        // The slow one starts after the quick one looked at our children, and is still running
        // when the quick one ends and kills what it left.
        let (s, q) = thread::scope(|sc| {
            let q = sc.spawn(|| run(&quick, &no));
            thread::sleep(Duration::from_millis(50));
            let s = sc.spawn(|| run(&slow, &no));
            (s.join().unwrap(), q.join().unwrap())
        });
        assert_eq!(q.exit_code, Some(0));
        assert_eq!(s.exit_code, Some(7), "the slow command was killed when the quick one ended: {s:?}");
        assert_eq!(q.killed_leftovers + s.killed_leftovers, 0);
    }

    #[test]
    fn an_orphan_is_killed_by_its_own_command_and_spared_by_a_neighbour() {
        let _serial = serial();
        become_subreaper();
        let d = tempfile::tempdir().unwrap();
        let (a_dir, b_dir) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a_dir).unwrap();
        std::fs::create_dir_all(&b_dir).unwrap();
        // Each leaves a sleeper that escaped its session and is re-parented to us; the quick one
        // ends while the slow one and its sleeper still run.
        let orphan = |dir: &Path, rest: &str| {
            let p = dir.join("orphan");
            format!("(setsid sleep 300 & echo $! > {p}) ; {rest}", p = p.display())
        };
        let quick = spec(&a_dir, &orphan(&a_dir, "sleep 0.3"), 10_000);
        let slow = spec(&b_dir, &orphan(&b_dir, "sleep 1.2"), 10_000);
        let no = AtomicBool::new(false);
        let read = |dir: &Path| -> i32 { std::fs::read_to_string(dir.join("orphan")).unwrap().trim().parse().unwrap() };
        let (q, s, b_orphan_after_a) = thread::scope(|sc| {
            let s = sc.spawn(|| run(&slow, &no));
            thread::sleep(Duration::from_millis(100));
            let q = run(&quick, &no);
            let b_alive = is_alive(read(&b_dir));
            (q, s.join().unwrap(), b_alive)
        });
        assert_eq!(q.killed_leftovers, 1, "the quick command kills its own orphan: {q:?}");
        assert!(!is_alive(read(&a_dir)));
        assert!(b_orphan_after_a, "the quick command spared its neighbour's orphan");
        assert_eq!(s.exit_code, Some(0), "{s:?}");
        assert_eq!(s.killed_leftovers, 1, "the slow command kills its own orphan: {s:?}");
        assert!(!is_alive(read(&b_dir)));
    }

    #[test]
    fn parses_stat_with_odd_names() {
        assert_eq!(stat_state_and_ppid("42 (a) b) c) S 7 42 42"), Some(('S', 7)));
    }
}
