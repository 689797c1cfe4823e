//! `fixbench doctor [--server URL] [RUN_ID]`: reads a llama-server's `/props`, `/slots` and
//! `/metrics` (and a stored run's requests) and says in plain sentences what is costing time,
//! each with the flag that fixes it.
//!
//! It also says whether the agent sandbox starts on this machine.
//!
//! Gathering (`evidence`) is kept apart from judging (`findings`, plain data in, findings out)
//! so each check can be tested without a server; `facts` sums a run's requests up for the
//! checks, `render` writes the text report.

mod evidence;
mod facts;
mod findings;
mod render;

pub use evidence::Evidence;
pub use findings::diagnose;
pub use render::render;
