//! `report::compare::Comparison` of the runs, each run a group and the first the reference,
//! laid out for the page: a row per run, a column per problem and the total.

use anyhow::Result;

use super::view::{CompareCell, CompareRow, CompareView, DeltaView};
use crate::report::compare::{Cell, Comparison, Delta, Verdict};
use crate::report::group::GroupBy;
use crate::store::RunRecord;

pub fn build(runs: &[RunRecord]) -> Result<CompareView> {
    let cmp = Comparison::build(runs, &GroupBy::Run, None, None)?;
    let columns = cmp.rows.iter().map(|r| r.problem.clone()).collect();
    let rows = cmp
        .groups
        .iter()
        .enumerate()
        .map(|(g, info)| CompareRow {
            name: info.name.clone(),
            reference: info.reference,
            cells: cmp.rows.iter().map(|row| row.cells[g].as_ref().map(cell)).collect(),
        })
        .collect();
    let mut notes = cmp.notes.clone();
    notes.push(format!(
        "each run is a group; deltas are against {} (the first run), with 95% intervals; `?` marks a difference that could be noise",
        cmp.groups.iter().find(|g| g.reference).map_or("", |g| g.name.as_str())
    ));
    Ok(CompareView { by: cmp.by, columns, rows, notes })
}

fn cell(c: &Cell) -> CompareCell {
    let sd = c.passed.sd.map(|s| format!(" ± {s:.1}")).unwrap_or_default();
    let mut deltas = Vec::new();
    if let Some(d) = &c.delta {
        deltas.push(delta("resolved", &d.resolved_rate, |v| format!("{:+.0} pts", v * 100.0)));
        deltas.push(delta("passed", &d.passed, |v| format!("{v:+.1}")));
        if let Some(dt) = &d.decode_tps {
            deltas.push(delta("decode", dt, |v| format!("{v:+.1} tok/s")));
        }
        deltas.push(delta("time", &d.wall_s, |v| format!("{v:+.0} s")));
    }
    CompareCell {
        resolved: format!("{}/{} ({:.0}%)", c.resolved, c.trials, c.resolved_rate * 100.0),
        ci: format!("{:.0}–{:.0}%", c.resolved_ci.0 * 100.0, c.resolved_ci.1 * 100.0),
        passed: format!("{:.1}{sd} of {}", c.passed.mean, c.tests),
        decode: c.decode_tps.map(|s| format!("{:.1} tok/s", s.mean)),
        deltas,
    }
}

fn delta(what: &'static str, d: &Delta, show: impl Fn(f64) -> String) -> DeltaView {
    DeltaView {
        what,
        text: show(d.diff),
        ci: d.ci.map(|(lo, hi)| format!("{} … {}", show(lo), show(hi))).unwrap_or_else(|| "no interval".into()),
        verdict: match d.verdict {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
        },
        noise: d.noise,
    }
}
