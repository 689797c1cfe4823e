//! A counting limit on work done at once (gradings under `--grade-jobs`): a held [`Permit`]
//! is one of `n`; waiting gives up when the run is cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct Limit {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One unit of a [`Limit`], given back when dropped.
pub struct Permit<'a>(&'a Limit);

impl Limit {
    pub fn new(n: usize) -> Limit {
        Limit { free: Mutex::new(n.max(1)), freed: Condvar::new() }
    }

    /// Waits for a unit; `None` when `cancel` is set first.
    pub fn acquire(&self, cancel: &AtomicBool) -> Option<Permit<'_>> {
        let mut free = self.free.lock().unwrap();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(Permit(self));
            }
            free = self.freed.wait_timeout(free, Duration::from_millis(100)).unwrap().0;
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap() += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn never_more_than_n_at_once_and_a_cancel_stops_the_wait() {
        let limit = Limit::new(2);
        let cancel = AtomicBool::new(false);
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _p = limit.acquire(&cancel).unwrap();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let held = (limit.acquire(&cancel), limit.acquire(&cancel));
        cancel.store(true, Ordering::SeqCst);
        assert!(limit.acquire(&cancel).is_none(), "a cancelled wait gives up");
        drop(held);
    }
}
