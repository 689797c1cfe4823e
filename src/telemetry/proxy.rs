//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {}

pub fn command(_args: ProxyArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
