//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {}

pub fn command(_args: HistoryArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
