//! fixbench's exit codes, documented in the README. A trial that fails is data, not an error:
//! `run` exits 0 whatever the scores.

/// The command finished (for `run`: every trial ran, whatever the scores).
pub const OK: i32 = 0;
/// fixbench itself broke (an I/O error, a bug): the message says where.
pub const HARNESS_FAILURE: i32 = 1;
/// Bad input: a flag, a config file, an unknown agent or problem. The message names the fix.
pub const BAD_INPUT: i32 = 2;
/// The environment is missing something: Python, pytest, bubblewrap, a reachable server.
pub const ENVIRONMENT: i32 = 3;
/// `validate` found an unsound problem.
pub const VALIDATION_FAILED: i32 = 4;
/// `gate` found a regression.
pub const GATE_FAILED: i32 = 5;
/// Interrupted (Ctrl-C / SIGTERM): finished trials are saved, `--resume RUN_ID` continues.
pub const INTERRUPTED: i32 = 130;
