//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {}

pub fn command(_args: PlotArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
