//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

pub fn command(_args: CompareArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
