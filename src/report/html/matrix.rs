//! The problem × group matrix: one row per run and problem, one column per group (`--by`),
//! each cell its trials' resolve rate with its Wilson interval, mean tests passed, decode speed
//! and mean time.

use std::collections::BTreeMap;

use super::escape::fragment_part;
use super::view::{Matrix, MatrixCell, MatrixRow};
use crate::report::group::GroupBy;
use crate::report::stats;
use crate::store::{RunRecord, TrialRecord};

pub fn build(runs: &[RunRecord], by: &GroupBy) -> Matrix {
    let mut groups: Vec<String> = Vec::new();
    // (run, problem) in order, and each (run, problem, group)'s trials.
    let mut rows: Vec<(usize, String)> = Vec::new();
    let mut cells: BTreeMap<(usize, &str, usize), Vec<&TrialRecord>> = BTreeMap::new();
    for (r, run) in runs.iter().enumerate() {
        let mut planned: Vec<&TrialRecord> = run.trials.iter().collect();
        let order = crate::store::plan_order(&run.config);
        planned.sort_by(|a, b| order(a, b));
        for t in planned {
            let key = by.key(run, t);
            let g = groups.iter().position(|n| *n == key).unwrap_or_else(|| {
                groups.push(key);
                groups.len() - 1
            });
            if !rows.iter().any(|(rr, p)| *rr == r && *p == t.problem) {
                rows.push((r, t.problem.clone()));
            }
            cells.entry((r, &t.problem, g)).or_default().push(t);
        }
    }
    // Per (problem, group): the resolve rates of the runs that have it.
    let mut rates: BTreeMap<(&str, usize), Vec<(u32, u32)>> = BTreeMap::new();
    for ((_, p, g), trials) in &cells {
        rates.entry((p, *g)).or_default().push(counts(trials));
    }
    let differs = |p: &str, g: usize| {
        let r = &rates[&(p, g)];
        // Equal rates: k_a / n_a == k_b / n_b.
        r.iter().any(|&(k, n)| u64::from(k) * u64::from(r[0].1) != u64::from(r[0].0) * u64::from(n))
    };
    let rows = rows
        .iter()
        .map(|(r, problem)| {
            let run = &runs[*r];
            let cells: Vec<Option<MatrixCell>> = (0..groups.len())
                .map(|g| {
                    let trials = cells.get(&(*r, problem.as_str(), g))?;
                    Some(cell(run, problem, &groups[g], trials, runs.len() > 1 && differs(problem, g)))
                })
                .collect();
            MatrixRow {
                run: run.run_id.clone(),
                problem: problem.clone(),
                fail: cells.iter().flatten().any(|c| c.fail),
                differs: cells.iter().flatten().any(|c| c.differs),
                cells,
            }
        })
        .collect();
    Matrix { by: by.name(), groups, rows }
}

/// (resolved, trials).
fn counts(trials: &[&TrialRecord]) -> (u32, u32) {
    (trials.iter().filter(|t| t.grade.resolved).count() as u32, trials.len() as u32)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn cell(run: &RunRecord, problem: &str, group: &str, trials: &[&TrialRecord], differs: bool) -> MatrixCell {
    let (resolved, n) = counts(trials);
    let (lo, hi) = stats::wilson(resolved, n);
    let passed = mean(trials.iter().map(|t| t.grade.passed as f64)).unwrap_or(0.0);
    let total = trials.iter().map(|t| t.grade.total).max().unwrap_or(0);
    let decode = mean(trials.iter().filter_map(|t| t.telemetry.server.as_ref()?.decode_tps).filter(|v| v.is_finite()));
    let wall = mean(trials.iter().map(|t| t.wall_s)).unwrap_or(0.0);
    let rate = resolved as f64 / n.max(1) as f64;
    MatrixCell {
        group: group.to_string(),
        href: format!("#cell={}", fragment_part(&format!("{}/{problem}/{group}", run.run_id))),
        resolved,
        n,
        rate: format!("{:.0}%", rate * 100.0),
        ci: format!("{:.0}–{:.0}%", lo * 100.0, hi * 100.0),
        passed: format!("{passed:.1}/{total}"),
        decode: decode.map(|d| format!("{d:.1} tok/s")),
        wall: format!("{wall:.0} s"),
        fail: resolved < n,
        differs,
        level: if resolved == n { 4 } else { (rate * 4.0).floor() as u8 },
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;

    #[test]
    fn cells_count_resolved_trials_and_mark_differences_between_runs() {
        let agents = vec!["a".to_string()];
        let mut one = synth::run_record("R1", Utc::now(), &agents);
        let mut two = synth::run_record("R2", Utc::now(), &agents);
        for rep in 0..3 {
            one.trials.push(synth::trial("expr_calc", "a", rep, if rep == 0 { 11 } else { 15 }, 15, 11));
            two.trials.push(synth::trial("expr_calc", "a", rep, 15, 15, 11));
        }
        let m = build(&[one, two], &GroupBy::Agent);
        assert_eq!(m.groups, ["a"]);
        let c = m.rows[0].cells[0].as_ref().unwrap();
        assert_eq!((c.resolved, c.n, c.fail, c.differs), (2, 3, true, true));
        assert_eq!(c.href, "#cell=R1/expr_calc/a");
        assert!(!m.rows[1].fail && m.rows[1].differs);
    }
}
