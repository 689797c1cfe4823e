//! Agent presets shipped with fixbench. TODO(owner): not built yet.

use anyhow::Result;

use super::Agent;

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {}

pub fn command(_args: AgentsArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}

pub fn find(_name: &str) -> Result<Option<Agent>> {
    Ok(None)
}

pub fn names() -> Vec<String> {
    vec![]
}

/// How to install a preset's agent, for "not installed" messages.
pub fn install_hint(_name: &str) -> Option<String> {
    None
}

/// Usage the agent reported about itself (tokens, turns), read from its stdout log.
pub fn usage(_name: &str, _stdout: &std::path::Path) -> Option<serde_json::Value> {
    None
}
