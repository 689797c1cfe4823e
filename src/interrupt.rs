//! Ctrl-C and SIGTERM: one process-wide flag, set by the signal handler and read by whatever is
//! running (an agent, a grading, a sweep's server start), which then stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The flag, installing the handler on first use. The handler only sets it: finished work is
/// saved by whoever reads it.
pub fn cancel_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}
