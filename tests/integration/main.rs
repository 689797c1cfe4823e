//! One integration-test binary driving the real `fixbench` binary, a module per area.

mod agents;
mod bad_input;
mod browser;
mod environments;
mod grading;
mod hostile16;
mod jobs;
mod llama;
mod pool;
mod real_agents;
mod real_codebases;
mod report;
mod report_browser;
mod report_html;
mod runner;
mod sandbox;
mod scale_out;
mod server_build;
mod settings;
mod shard;
mod slots;
mod store;
mod sweep;
mod telemetry;
mod util;
mod validate;
