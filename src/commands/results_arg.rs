//! `--results DIR` and `--config FILE`, the flags every report command shares.

use std::path::PathBuf;

use anyhow::Result;

use crate::settings::{Settings, Sources};
use crate::store::Store;

/// `--results DIR` and `--config FILE`, shared by every report command.
#[derive(Debug, Clone, clap::Args)]
pub struct ResultsArg {
    /// The results folder to read [default: harness.toml's run.results, else results]
    #[arg(long, env = "FIXBENCH_RESULTS", value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// The harness config file [default: ./harness.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ResultsArg {
    /// The store: `--results`, else harness.toml's `run.results`, else `results`, as
    /// `fixbench run` chooses it.
    pub fn store(&self) -> Result<Store> {
        Ok(self.settings()?.store())
    }

    /// The settings these flags choose.
    pub fn settings(&self) -> Result<Settings> {
        Settings::load(&Sources { config: self.config.clone(), results: self.results.clone(), ..Default::default() })
    }
}
