//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

pub fn command(_args: DoctorArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}
