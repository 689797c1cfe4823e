//! One integration-test binary driving the real `fixbench` binary, a module per area.

mod runner;
mod util;
mod validate;
