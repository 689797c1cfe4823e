//! Grouped bars: for the given runs, one cluster per problem (and the whole suite), one bar
//! per group. Whiskers: the Wilson 95% interval for rates, min–max of trials otherwise.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Mark};
use super::{no_figure, pe, Chart};
use crate::report::group::{GroupBy, Metric};
use crate::report::stats;
use crate::store::RunRecord;

/// (mean, whisker low, whisker high, trials)
type Bar = (f64, f64, f64, usize);

pub struct Bars {
    metric: Metric,
    by: String,
    groups: Vec<String>,
    /// Cluster labels: the problems, then `all problems`.
    clusters: Vec<String>,
    /// [cluster][group], `None` where the group has no value.
    values: Vec<Vec<Option<Bar>>>,
    missing: Vec<String>,
    runs: Vec<String>,
}

impl Bars {
    pub fn build(runs: &[RunRecord], by: &GroupBy, metric: Metric) -> Result<Bars> {
        let mut groups: Vec<String> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for run in runs {
            for t in &run.trials {
                let g = by.key(run, t);
                if !groups.contains(&g) {
                    groups.push(g);
                }
                if !problems.contains(&t.problem) {
                    problems.push(t.problem.clone());
                }
            }
        }
        problems.sort();
        let mut clusters = problems.clone();
        clusters.push("all problems".into());
        let mut values = Vec::new();
        for (ci, cluster) in clusters.iter().enumerate() {
            let all = ci == problems.len();
            let mut row = Vec::new();
            for g in &groups {
                let trials: Vec<_> = runs
                    .iter()
                    .flat_map(|r| r.trials.iter().map(move |t| (r, t)))
                    .filter(|(r, t)| (all || &t.problem == cluster) && &by.key(r, t) == g)
                    .map(|(_, t)| t)
                    .collect();
                let vals: Vec<f64> = trials.iter().filter_map(|t| metric.value(t)).collect();
                if vals.is_empty() {
                    row.push(None);
                    continue;
                }
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let (lo, hi) = if metric == Metric::Resolved {
                    let k = trials.iter().filter(|t| t.grade.resolved).count() as u32;
                    let (lo, hi) = stats::wilson(k, trials.len() as u32);
                    (lo * 100.0, hi * 100.0)
                } else {
                    (
                        vals.iter().cloned().fold(f64::INFINITY, f64::min),
                        vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    )
                };
                row.push(Some((mean, lo, hi, vals.len())));
            }
            values.push(row);
        }
        let missing: Vec<String> = groups
            .iter()
            .enumerate()
            .filter(|(gi, _)| values.iter().all(|row| row[*gi].is_none()))
            .map(|(_, g)| format!("{g}: {}", if metric.needs_server() { "no server" } else { "no value" }))
            .collect();
        if groups.is_empty() || missing.len() == groups.len() {
            return Err(no_figure(metric, runs));
        }
        Ok(Bars {
            metric,
            by: by.name(),
            groups,
            clusters,
            values,
            missing,
            runs: runs.iter().map(|r| r.run_id.clone()).collect(),
        })
    }
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n_groups = self.groups.len() as f64;
        let ymax = if self.metric.is_percent() {
            100.0
        } else {
            style::nice_max(self.values.iter().flatten().flatten().map(|v| v.2).fold(0.0, f64::max))
        };
        let whiskers = if self.metric == Metric::Resolved { "Wilson 95% interval" } else { "min–max of trials" };
        let runs = if self.runs.len() <= 2 { self.runs.join(", ") } else { format!("{} runs", self.runs.len()) };
        let title = format!("{} by {}", style::capitalised(self.metric.title()), self.by);
        let subtitle = format!("{runs} · bar: mean over trials · whiskers: {whiskers}");
        let (plot, side) = style::plot_and_legend(root, &title, &subtitle)?;

        let clusters = self.clusters.clone();
        let mut chart = style::cartesian(&plot, -0.5..(self.clusters.len() as f64 - 0.5), 0.0..ymax)?;
        style::draw_axes(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc("problem")
                .y_desc(self.metric.title())
                .x_labels(self.clusters.len() * 2 + 1)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        clusters.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| style::axis_number(*y)),
        )?;

        let slot = 0.8 / n_groups;
        for (ci, row) in self.values.iter().enumerate() {
            for (gi, v) in row.iter().enumerate() {
                let Some((mean, lo, hi, _)) = *v else {
                    continue;
                };
                let c = style::colour(gi);
                let x0 = ci as f64 - 0.4 + gi as f64 * slot;
                let x1 = x0 + slot * 0.9;
                chart.draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, mean)], c.filled()))).map_err(pe)?;
                let xm = (x0 + x1) / 2.0;
                if hi > lo {
                    // A whisker with caps (ErrorBar would also mark the mean, which the bar shows).
                    let cap = slot * 0.15;
                    let line = style::TEXT.stroke_width(2);
                    chart
                        .draw_series([
                            PathElement::new(vec![(xm, lo), (xm, hi)], line),
                            PathElement::new(vec![(xm - cap, lo), (xm + cap, lo)], line),
                            PathElement::new(vec![(xm - cap, hi), (xm + cap, hi)], line),
                        ])
                        .map_err(pe)?;
                }
            }
        }
        let mut entries: Vec<_> =
            self.groups.iter().enumerate().map(|(i, g)| (g.clone(), style::colour(i), Mark::Block)).collect();
        entries.retain(|(g, _, _)| !self.missing.iter().any(|m| m.starts_with(&format!("{g}:"))));
        entries.extend(self.missing.iter().map(|m| (m.clone(), style::GRID_BOLD, Mark::Block)));
        style::legend(&side, &self.by, &entries)?;
        Ok(())
    }
}
