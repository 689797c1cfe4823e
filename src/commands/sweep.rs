//! `fixbench sweep FILE`: one run of the suite per llama-server configuration, then a summary
//! table (or JSON); exits non-zero when the sweep was stopped or no configuration started.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::Error;
use crate::runner::RunArgs;
use crate::settings::Settings;
use crate::sweep::{summary, sweep, ConfigOutcome, ConfigStatus};

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The sweep file: one `[[server]]` table per llama-server configuration.
    pub file: PathBuf,
    /// How long to wait for each server's /health, in seconds.
    #[arg(long, default_value_t = 180.0, value_name = "SECS")]
    pub health_timeout: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn command(args: SweepArgs) -> Result<i32> {
    if !args.run.servers.is_empty() {
        return Err(Error::BadInput("a sweep starts its own servers: drop --server".into()).into());
    }
    if args.run.run_id.is_some() {
        return Err(Error::BadInput(
            "a sweep names its runs itself, one per configuration: drop --run-id (a stopped sweep continues with `fixbench sweep FILE --resume SWEEP_ID`)".into(),
        )
        .into());
    }
    if args.run.dry_run {
        return Err(Error::BadInput(
            "--dry-run is for `fixbench run`; a sweep has nothing to show without servers".into(),
        )
        .into());
    }
    if args.run.junit.is_some() {
        return Err(Error::BadInput(
            "--junit writes one run; a sweep makes one per configuration: export each with `fixbench junit RUN_ID`"
                .into(),
        )
        .into());
    }
    crate::config::check_timeout(args.health_timeout, "--health-timeout")?;
    let settings = Settings::load(&args.run.sources())?;
    let swept = sweep(&args.file, args.health_timeout, &args.run, &settings)?;
    if args.run.json {
        let skipped: Vec<&ConfigOutcome> =
            swept.record.configs.iter().filter(|c| c.status == ConfigStatus::Failed).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "sweep_id": swept.record.sweep_id, "runs": swept.runs, "skipped": skipped })
            )?
        );
    } else {
        print!("{}", summary(&swept.record, &swept.runs));
        eprintln!("sweep: {}", swept.path.display());
    }
    if let (Some(path), false) = (&args.run.report, swept.runs.is_empty()) {
        // The configurations side by side: one column per server configuration.
        let opts = crate::report::html::Options { by: crate::report::group::GroupBy::Server, ..Default::default() };
        let written = crate::report::html::write(&settings.store(), &swept.runs, &opts, path)?;
        eprintln!("{}", written.summary());
    }
    if swept.unfinished() {
        return Err(Error::Interrupted(format!(
            "finished configurations are saved; continue with `fixbench sweep {} --resume {}`",
            args.file.display(),
            swept.record.sweep_id
        ))
        .into());
    }
    if swept.runs.is_empty() {
        return Err(Error::Environment("no server configuration could be started (see the table above)".into()).into());
    }
    Ok(crate::exit_codes::OK)
}
