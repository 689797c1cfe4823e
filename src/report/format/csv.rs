//! CSV: one line per problem (and the total), one column per group and figure, numbers
//! unformatted; a missing figure (no server, not run) is an empty field, never 0.

use anyhow::Result;

use super::Formatter;
use crate::report::compare::{Cell, Comparison, Delta};
use crate::report::stats::Spread;

pub struct CsvFormatter;

/// The per-group columns, after the group's name and a colon.
const COLUMNS: [&str; 25] = [
    "trials",
    "tests",
    "passed_mean",
    "passed_sd",
    "passed_delta",
    "passed_delta_lo",
    "passed_delta_hi",
    "resolved",
    "resolved_rate",
    "resolved_lo",
    "resolved_hi",
    "resolved_delta",
    "resolved_delta_lo",
    "resolved_delta_hi",
    "pass_at_k",
    "wall_s_mean",
    "wall_s_sd",
    "wall_s_delta",
    "prefill_tps_mean",
    "prefill_tps_delta",
    "decode_tps_mean",
    "decode_tps_delta",
    "cache_hit_ratio_mean",
    "cache_hit_ratio_delta",
    "noise",
];

impl Formatter for CsvFormatter {
    fn render(&self, cmp: &Comparison) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["problem".to_string(), "k".to_string()];
        for g in &cmp.groups {
            header.extend(COLUMNS.iter().map(|c| format!("{}={}:{c}", cmp.by, g.name)));
        }
        w.write_record(&header)?;
        for row in &cmp.rows {
            let mut rec = vec![row.problem.clone(), cmp.k.to_string()];
            for c in &row.cells {
                match c {
                    None => rec.extend(COLUMNS.iter().map(|_| String::new())),
                    Some(c) => rec.extend(fields(c)),
                }
            }
            w.write_record(&rec)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

fn fields(c: &Cell) -> Vec<String> {
    let n = |v: f64| format!("{v}");
    let o = |v: Option<f64>| v.map(n).unwrap_or_default();
    let mean = |s: &Option<Spread>| o(s.map(|s| s.mean));
    let d = c.delta.as_ref();
    let diff = |x: Option<&Delta>| o(x.map(|x| x.diff));
    let lo = |x: Option<&Delta>| o(x.and_then(|x| x.ci).map(|c| c.0));
    let hi = |x: Option<&Delta>| o(x.and_then(|x| x.ci).map(|c| c.1));
    // Which deltas could be noise, by figure name.
    let noise: Vec<&str> = d
        .map(|d| {
            [
                ("passed", Some(&d.passed)),
                ("resolved", Some(&d.resolved_rate)),
                ("wall", Some(&d.wall_s)),
                ("prefill", d.prefill_tps.as_ref()),
                ("decode", d.decode_tps.as_ref()),
                ("cache", d.cache_hit_ratio.as_ref()),
            ]
            .into_iter()
            .filter(|(_, x)| x.is_some_and(|x| x.noise))
            .map(|(name, _)| name)
            .collect()
        })
        .unwrap_or_default();
    vec![
        c.trials.to_string(),
        c.tests.to_string(),
        n(c.passed.mean),
        o(c.passed.sd),
        diff(d.map(|d| &d.passed)),
        lo(d.map(|d| &d.passed)),
        hi(d.map(|d| &d.passed)),
        c.resolved.to_string(),
        n(c.resolved_rate),
        n(c.resolved_ci.0),
        n(c.resolved_ci.1),
        diff(d.map(|d| &d.resolved_rate)),
        lo(d.map(|d| &d.resolved_rate)),
        hi(d.map(|d| &d.resolved_rate)),
        o(c.pass_at_k),
        n(c.wall_s.mean),
        o(c.wall_s.sd),
        diff(d.map(|d| &d.wall_s)),
        mean(&c.prefill_tps),
        diff(d.and_then(|d| d.prefill_tps.as_ref())),
        mean(&c.decode_tps),
        diff(d.and_then(|d| d.decode_tps.as_ref())),
        mean(&c.cache_hit_ratio),
        diff(d.and_then(|d| d.cache_hit_ratio.as_ref())),
        noise.join(" "),
    ]
}
