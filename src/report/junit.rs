//! TODO(owner): not built yet.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct JunitArgs {}

pub fn command(_args: JunitArgs) -> Result<i32> {
    anyhow::bail!("not built yet")
}

/// Writes `run` as JUnit XML to `path` (`run_dir` holds its logs).
pub fn write_file(_run: &crate::store::RunRecord, _run_dir: &std::path::Path, _path: &std::path::Path) -> Result<()> {
    anyhow::bail!("JUnit export is not built yet")
}
