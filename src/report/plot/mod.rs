//! `fixbench plot`: charts with plotters, PNG or SVG by the file's extension. One file per
//! chart kind (as criterion's plotters backend has), sharing `style`'s size, font and colours.

mod bars;
mod over_time;
pub mod style;
mod timeline;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::group::{GroupBy, Metric};
use super::runs::{self, ResultsArg, Skipped};
use crate::error::Error;
use crate::store::RunRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The metric per run over time, a series per group, the spread of repeats shaded
    OverTime,
    /// Grouped bars comparing the groups of the given runs, problem by problem
    Bars,
    /// One trial's requests on a time axis: queue, prefill, decode, and the agent's own time
    Timeline,
}

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
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    pub size: (u32, u32),
    #[command(flatten)]
    pub results: ResultsArg,
}

/// A chart kind: draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    pub fn of(path: &Path) -> Result<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(Error::BadInput(format!("-o {}: name a .png or .svg file", path.display())).into()),
        }
    }
}

/// Draws `chart` into `path`, through a temp file renamed into place.
pub fn save(chart: &impl Chart, path: &Path, format: ImageFormat, size: (u32, u32)) -> Result<()> {
    style::register_fonts();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let suffix = match format {
        ImageFormat::Png => ".png",
        ImageFormat::Svg => ".svg",
    };
    let tmp = tempfile::Builder::new().prefix(".fixbench-plot-").suffix(suffix).tempfile_in(dir)?;
    match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
            chart.draw(&root)?;
            root.present().map_err(pe)?;
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(tmp.path(), size).into_drawing_area();
            chart.draw(&root)?;
            root.present().map_err(pe)?;
        }
    }
    readable(tmp.path())?;
    tmp.persist(path).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// Temp files are created owner-only; a picture is for sharing.
pub(crate) fn readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("failed to set the permissions of {}", path.display()))
}

/// The error when none of `runs` has a figure of `metric` to plot: names the metric, the runs
/// looked at, and what would record the figure.
pub(crate) fn no_figure<'a>(metric: Metric, runs: impl IntoIterator<Item = &'a RunRecord>) -> anyhow::Error {
    let runs: Vec<&RunRecord> = runs.into_iter().collect();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    let looked_at = match ids.as_slice() {
        [] => "the runs".to_string(),
        [one] => format!("run {one}"),
        few if few.len() <= 3 => format!("runs {}", few.join(", ")),
        many => format!("{} runs ({} … {})", many.len(), many[0], many[many.len() - 1]),
    };
    let fix = if !metric.needs_server() {
        "they hold no graded trial: plot runs whose trials ran their tests (see `fixbench history`)"
    } else if runs.iter().any(|r| r.server.is_some()) {
        "it is llama-server telemetry, which their trials lack: `fixbench show RUN_ID` says \
         what each trial is missing and why"
    } else {
        "it is llama-server telemetry, and runs without a server record none: make runs with \
         `fixbench run --server URL`, or plot --metric passed, resolved or wall"
    };
    Error::BadInput(format!("no `{}` figure to plot in {looked_at}: {fix}", metric.name())).into()
}

/// A plotters error as an anyhow error (its types carry backend generics).
pub(crate) fn pe<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("failed to draw the chart: {e:?}")
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("`{s}` is not a size: use WIDTHxHEIGHT, e.g. 1280x720 (each 320 to 8000)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| err())?, h.parse().map_err(|_| err())?);
    if !(320..=8000).contains(&w) || !(240..=8000).contains(&h) {
        return Err(err());
    }
    Ok((w, h))
}
