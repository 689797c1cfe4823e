//! Waiting for a child to exit without polling: a pidfd (Linux 5.3+) becomes readable the
//! moment the process ends, so a 3 ms sandboxed `true` is noticed at 3 ms, not at the next tick
//! of a sleep loop. Where pidfds are missing (old kernels, seccomp filters), it falls back to
//! sleeping 1 ms, backing off to 10 ms.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

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
    use std::time::Instant;

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
}
