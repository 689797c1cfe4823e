//! The metric over time: x = run date, y = the metric, one series per group. Each point is
//! the mean over the run's repeats of the suite; the band and whiskers span their min…max.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Mark};
use super::{no_figure, pe, Chart};
use crate::error::Error;
use crate::report::group::{GroupBy, Metric};
use crate::store::RunRecord;

pub struct OverTime {
    metric: Metric,
    by: String,
    t0: DateTime<Utc>,
    series: Vec<Series>,
    /// Groups that have no value of the metric at all, and why.
    missing: Vec<String>,
    runs: usize,
    results: String,
}

struct Series {
    name: String,
    points: Vec<Point>,
}

#[derive(Clone, Copy)]
struct Point {
    /// Days since `t0`.
    x: f64,
    mean: f64,
    lo: f64,
    hi: f64,
}

/// Sums over the trials of one suite repeat (one agent's repeat within one run).
#[derive(Default)]
struct Suite {
    passed: u64,
    total: u64,
    resolved: u32,
    trials: u32,
    values: Vec<f64>,
}

impl Suite {
    fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Passed => (self.total > 0).then(|| self.passed as f64 / self.total as f64 * 100.0),
            Metric::Resolved => (self.trials > 0).then(|| self.resolved as f64 / self.trials as f64 * 100.0),
            _ => (!self.values.is_empty()).then(|| self.values.iter().sum::<f64>() / self.values.len() as f64),
        }
    }
}

impl OverTime {
    pub fn build(runs: &[RunRecord], by: &GroupBy, metric: Metric, results: &Path) -> Result<OverTime> {
        if runs.is_empty() {
            return Err(Error::BadInput(format!(
                "no runs to plot in {} (start one with `fixbench run`, or widen --since)",
                results.display()
            ))
            .into());
        }
        let mut runs: Vec<&RunRecord> = runs.iter().collect();
        runs.sort_by_key(|r| r.started_at);
        let t0 = runs[0].started_at;
        let mut order: Vec<String> = Vec::new();
        let mut points: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for run in &runs {
            let mut suites: BTreeMap<(String, &str, u32), Suite> = BTreeMap::new();
            for t in &run.trials {
                let g = by.key(run, t);
                if !order.contains(&g) {
                    order.push(g.clone());
                }
                let s = suites.entry((g, t.agent.as_str(), t.repeat)).or_default();
                s.passed += t.grade.passed as u64;
                s.total += t.grade.total as u64;
                s.resolved += t.grade.resolved as u32;
                s.trials += 1;
                s.values.extend(metric.value(t));
            }
            let mut per_group: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for ((g, _, _), s) in &suites {
                if let Some(v) = s.value(metric) {
                    per_group.entry(g.as_str()).or_default().push(v);
                }
            }
            let x = (run.started_at - t0).num_seconds() as f64 / 86_400.0;
            for (g, vals) in per_group {
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                points.entry(g.to_string()).or_default().push(Point { x, mean, lo, hi });
            }
        }
        let mut series = Vec::new();
        let mut missing = Vec::new();
        for name in order {
            match points.remove(&name) {
                Some(p) => series.push(Series { name, points: p }),
                None if metric.needs_server() => missing.push(format!("{name}: no server")),
                None => missing.push(format!("{name}: no value")),
            }
        }
        if series.is_empty() {
            return Err(no_figure(metric, runs.iter().copied()));
        }
        Ok(OverTime {
            metric,
            by: by.name(),
            t0,
            series,
            missing,
            runs: runs.len(),
            results: results.display().to_string(),
        })
    }
}

impl Chart for OverTime {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (xmin, xmax) = all.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.x), b.max(p.x)));
        let first = self.t0 + Duration::seconds((xmin * 86_400.0) as i64);
        let last = self.t0 + Duration::seconds((xmax * 86_400.0) as i64);
        // At least a day wide, centred on the runs, so one run or one afternoon still reads.
        let (xmin, xmax) = if xmax - xmin < 1.0 {
            let mid = (xmin + xmax) / 2.0;
            (mid - 0.5, mid + 0.5)
        } else {
            (xmin, xmax)
        };
        let span = xmax - xmin;
        let pad = span * 0.04;
        // Percentages get a little headroom so a point at 100% does not sit on the frame.
        let ymax =
            if self.metric.is_percent() { 104.0 } else { style::nice_max(all.map(|p| p.hi).fold(0.0, f64::max)) };

        let title = format!("{} over time, by {}", style::capitalised(self.metric.title()), self.by);
        let subtitle = format!(
            "{} run{}, {} to {} · point: mean of the run's repeats · shading and whiskers: their min–max",
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            first.format("%Y-%m-%d"),
            last.format("%Y-%m-%d")
        );
        let (plot, side) = style::plot_and_legend(root, &title, &subtitle)?;

        let t0 = self.t0;
        let fmt_x = move |x: &f64| {
            let t = t0 + Duration::seconds((*x * 86_400.0) as i64);
            if span < 2.0 {
                t.format("%m-%d %H:%M").to_string()
            } else {
                t.format("%b %d").to_string()
            }
        };
        let mut chart = style::cartesian(&plot, (xmin - pad)..(xmax + pad), 0.0..ymax)?;
        style::draw_axes(
            chart
                .configure_mesh()
                .x_desc("run date (UTC)")
                .y_desc(self.metric.title())
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&|y| style::axis_number(*y))
                .x_labels(8)
                .y_labels(8),
        )?;

        let mut entries = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let c = style::colour(i);
            let band: Vec<(f64, f64)> =
                s.points.iter().map(|p| (p.x, p.hi)).chain(s.points.iter().rev().map(|p| (p.x, p.lo))).collect();
            if s.points.len() > 1 {
                chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.14).filled()))).map_err(pe)?;
            }
            // Whiskers help with a few runs; with many, the band says it without the clutter.
            let whiskers = s.points.len() <= 20;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .filter(|p| whiskers && p.hi > p.lo)
                        .map(|p| ErrorBar::new_vertical(p.x, p.lo, p.mean, p.hi, c.mix(0.7).stroke_width(2), 8)),
                )
                .map_err(pe)?;
            chart
                .draw_series(LineSeries::new(s.points.iter().map(|p| (p.x, p.mean)), c.stroke_width(3)))
                .map_err(pe)?;
            chart.draw_series(s.points.iter().map(|p| Circle::new((p.x, p.mean), 5, c.filled()))).map_err(pe)?;
            entries.push((s.name.clone(), c, Mark::Line));
        }
        let mut heading = self.by.clone();
        for m in &self.missing {
            entries.push((m.clone(), style::GRID_BOLD, Mark::Block));
        }
        if entries.len() > 14 {
            heading = format!("{} ({} groups)", self.by, entries.len());
        }
        style::legend(&side, &heading, &entries)?;
        let _ = &self.results;
        Ok(())
    }
}
