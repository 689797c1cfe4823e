//! The commands: one file per subcommand. Each turns its flags into settings, calls the
//! layers below (orchestration: runner, sweep, validate, report, doctor), and prints. Nothing
//! below this folder prints a command's output or knows its flags' names.

pub mod agents;
pub mod baseline;
pub mod compare;
pub mod doctor;
pub mod gate;
pub mod history;
pub mod inject;
pub mod junit;
pub mod merge;
pub mod new;
pub mod plot;
pub mod proxy;
pub mod report;
mod results_arg;
pub mod route;
pub mod run;
pub mod show;
pub mod sweep;
pub mod validate;

pub use results_arg::ResultsArg;
