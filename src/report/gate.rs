//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct GateArgs {}

#[derive(Debug, clap::Args)]
pub struct BaselineArgs {}

pub fn command(_args: GateArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}

pub fn baseline_command(_args: BaselineArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
