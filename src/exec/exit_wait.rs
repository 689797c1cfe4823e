//! Waiting for a child to exit without polling: a pidfd (Linux 5.3+) becomes readable the
//! moment the process ends, so a 3 ms sandboxed `true` is noticed at 3 ms, not at the next tick
//! of a sleep loop. Where pidfds are missing (old kernels, seccomp filters), it falls back to
//! sleeping 1 ms, backing off to 10 ms. [`wait_until`] is the one wait for a child with a
//! deadline that every caller uses.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How [`wait_until`] ended.
#[derive(Debug)]
pub enum Waited {
    Exited(ExitStatus),
    /// The deadline passed with the child still running.
    TimedOut,
    /// `give_up` said to stop waiting, the child still running.
    GaveUp,
}

/// Waits for `child` to exit until `deadline`, asking `give_up` at once and then every `every`
/// (a Ctrl-C flag, a health check) whether to stop waiting. An exit is noticed as it happens.
/// The child is left as it is: reaped when it exited, else still running.
pub fn wait_until(
    child: &mut Child,
    deadline: Instant,
    every: Duration,
    mut give_up: impl FnMut() -> bool,
) -> std::io::Result<Waited> {
    let mut exit = ExitWait::new(child.id() as i32);
    let mut next_ask = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        if Instant::now() >= next_ask {
            if give_up() {
                return Ok(Waited::GaveUp);
            }
            next_ask = Instant::now() + every;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Waited::TimedOut);
        }
        exit.wait(deadline.min(next_ask).saturating_duration_since(now));
    }
}

pub struct ExitWait {
    pidfd: Option<OwnedFd>,
    backoff: Duration,
}

impl ExitWait {
    /// For `pid`, a child of ours not yet reaped (so its pid cannot be reused meanwhile).
    pub fn new(pid: i32) -> ExitWait {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a non-negative return is a descriptor we own and nothing else closes.
        let pidfd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) });
        ExitWait { pidfd, backoff: Duration::from_millis(1) }
    }

    /// Returns when the process has exited or `at_most` has passed, whichever is first.
    pub fn wait(&mut self, at_most: Duration) {
        match &self.pidfd {
            Some(fd) => {
                let timeout = PollTimeout::try_from(at_most.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
                // EINTR just returns early.
                let _ = poll(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], timeout);
            }
            None => {
                std::thread::sleep(self.backoff.min(at_most));
                self.backoff = (self.backoff * 2).min(Duration::from_millis(10));
            }
        }
    }

    #[cfg(test)]
    pub fn uses_pidfd(&self) -> bool {
        self.pidfd.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_when_the_child_exits_not_at_the_timeout() {
        let _serial = crate::exec::tests::serial();
        let mut child = std::process::Command::new("sleep").arg("0.05").spawn().unwrap();
        let mut w = ExitWait::new(child.id() as i32);
        assert!(w.uses_pidfd(), "this kernel should have pidfd_open");
        let t = Instant::now();
        w.wait(Duration::from_secs(20));
        let waited = t.elapsed();
        assert!(child.try_wait().unwrap().is_some(), "woke before the child exited");
        assert!(waited < Duration::from_secs(10), "waited {waited:?}: the exit did not wake the wait");
    }

    #[test]
    fn returns_at_the_timeout_while_the_child_runs() {
        let _serial = crate::exec::tests::serial();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut w = ExitWait::new(child.id() as i32);
        w.wait(Duration::from_millis(20));
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn wait_until_tells_an_exit_a_timeout_and_giving_up() {
        let _serial = crate::exec::tests::serial();
        let far = Instant::now() + Duration::from_secs(20);
        let mut quick = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let waited = wait_until(&mut quick, far, Duration::from_secs(20), || false).unwrap();
        assert!(matches!(waited, Waited::Exited(s) if s.code() == Some(3)), "{waited:?}");

        let mut slow = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let t = Instant::now();
        let waited = wait_until(&mut slow, t + Duration::from_millis(50), Duration::from_secs(20), || false).unwrap();
        assert!(matches!(waited, Waited::TimedOut) && t.elapsed() >= Duration::from_millis(50), "{waited:?}");
        // Asked at once, then every 30 ms, however often the wait itself wakes.
        let mut asked = 0;
        let waited = wait_until(&mut slow, far, Duration::from_millis(30), || {
            asked += 1;
            asked == 3
        })
        .unwrap();
        assert!(matches!(waited, Waited::GaveUp) && t.elapsed() >= Duration::from_millis(110), "{waited:?}");
        slow.kill().unwrap();
        slow.wait().unwrap();
    }
}
