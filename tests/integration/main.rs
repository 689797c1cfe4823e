//! One integration-test binary driving the real `fixbench` binary, a module per area.

mod llama;
mod runner;
mod sandbox;
mod sweep;
mod telemetry;
mod util;
mod validate;
