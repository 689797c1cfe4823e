//! `fixbench plot`: charts with plotters, PNG or SVG by the file's extension. One file per
//! chart kind (as criterion's plotters backend has), sharing `style`'s size, font and colours.

pub mod bars;
pub mod over_time;
pub mod style;
pub mod timeline;

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::group::Metric;
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

/// A chart kind: draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
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

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("`{s}` is not a size: use WIDTHxHEIGHT, e.g. 1280x720 (each 320 to 8000)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| err())?, h.parse().map_err(|_| err())?);
    if !(320..=8000).contains(&w) || !(240..=8000).contains(&h) {
        return Err(err());
    }
    Ok((w, h))
}
