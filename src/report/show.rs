//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {}

pub fn command(_args: ShowArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
