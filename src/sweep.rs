//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct SweepArgs {}

pub fn command(_args: SweepArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
