//! `fixbench plot`: runs over time, grouped bars, or one trial's request timeline, as PNG or SVG.

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::ResultsArg;
use crate::error::Error;
use crate::report::group::{GroupBy, Metric};
use crate::report::plot::{bars, over_time, parse_size, save, style, timeline, ImageFormat, Kind};
use crate::report::runs::{self, Skipped};

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// What to draw
    #[arg(long, value_enum, default_value_t = Kind::OverTime)]
    pub kind: Kind,
    /// Runs to draw: for `bars` the runs to compare [default: latest], for `timeline` the run
    /// holding the trial [default: latest]; `over-time` draws every stored run
    #[arg(value_name = "RUN_ID")]
    pub runs: Vec<String>,
    /// The figure on the y axis
    #[arg(long, value_enum, default_value_t = Metric::Passed)]
    pub metric: Metric,
    /// What a series (or a bar colour) is: agent, model, quant, server, run or label:KEY
    #[arg(long, value_name = "GROUPING", default_value = "agent")]
    pub by: GroupBy,
    /// Only runs started since: YYYY-MM-DD, an RFC 3339 time, or a span such as 7d
    #[arg(long, value_name = "DATE", value_parser = runs::parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// For `timeline`: the trial, as `problem/agent/repeat` [default: the one that waited
    /// longest on the server]
    #[arg(long, value_name = "TRIAL_ID")]
    pub trial: Option<String>,
    /// The picture to write: FILE.png or FILE.svg
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Picture size in pixels, WIDTHxHEIGHT
    #[arg(long, value_name = "WxH", default_value = style::DEFAULT_SIZE, value_parser = parse_size)]
    pub size: (u32, u32),
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: PlotArgs) -> Result<i32> {
    let format = ImageFormat::of(&args.output)?;
    let store = args.results.store()?;
    match args.kind {
        Kind::OverTime => {
            if !args.runs.is_empty() {
                return Err(Error::BadInput(
                    "`--kind over-time` draws every stored run: leave out the run ids (narrow it with --since)".into(),
                )
                .into());
            }
            let (runs, skipped) = runs::load_all(&store, args.since)?;
            Skipped::warn_all(&skipped);
            let chart = over_time::OverTime::build(&runs, &args.by, args.metric, &store.root)?;
            save(&chart, &args.output, format, args.size)?;
        }
        Kind::Bars => {
            let names = if args.runs.is_empty() { vec!["latest".to_string()] } else { args.runs.clone() };
            let (mut runs, skipped) = runs::load_named(&store, &names)?;
            Skipped::warn_all(&skipped);
            if let Some(since) = args.since {
                runs.retain(|r| r.started_at >= since);
                if runs.is_empty() {
                    return Err(Error::BadInput(format!(
                        "none of the named runs started since {}: widen --since or name other runs",
                        since.format("%Y-%m-%d %H:%M UTC")
                    ))
                    .into());
                }
            }
            let chart = bars::Bars::build(&runs, &args.by, args.metric)?;
            save(&chart, &args.output, format, args.size)?;
        }
        Kind::Timeline => {
            if args.runs.len() > 1 {
                return Err(
                    Error::BadInput("`--kind timeline` draws one trial of one run: name one RUN_ID".into()).into()
                );
            }
            let run = runs::load_one(&store, args.runs.first().map(String::as_str).unwrap_or("latest"))?;
            let chart = timeline::Timeline::build(&run, args.trial.as_deref())?;
            eprintln!("timeline of trial {} of run {}", chart.trial_id(), run.run_id);
            save(&chart, &args.output, format, args.size)?;
        }
    }
    eprintln!("wrote {}", args.output.display());
    Ok(crate::exit_codes::OK)
}
