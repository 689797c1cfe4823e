//! `fixbench compare`: runs side by side, grouped by agent, model, quant, server or a label.
//! Rows are problems plus a total; each group gets a column group; every group but the reference
//! (`--against`, else the first to appear) carries its deltas against the reference, with a flag
//! where the interval says "could be noise".

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use super::group::GroupBy;
use super::stats::{self, Estimate, Spread};
use crate::error::Error;
use crate::store::{RunRecord, TrialRecord};

/// A comparison, plain data: what every output format renders.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The grouping, e.g. `agent` or `label:flags`.
    pub by: String,
    pub runs: Vec<String>,
    /// The k of pass@k.
    pub k: u32,
    pub groups: Vec<GroupInfo>,
    /// One row per problem, then the total row.
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub runs: Vec<String>,
    pub trials: usize,
    /// The group the others' deltas are taken against.
    pub reference: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub problem: String,
    pub is_total: bool,
    /// One per group, in group order; `None` where the group has no trial of the problem.
    pub cells: Vec<Option<Cell>>,
}

/// One group's figures on one problem (or on the whole suite, in the total row).
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub trials: usize,
    /// Tests per trial (summed over problems in the total row).
    pub tests: u32,
    /// Tests passed per trial (total row: per repeat of the whole suite).
    pub passed: Spread,
    pub resolved: u32,
    pub resolved_rate: f64,
    /// Wilson 95% interval of the resolved rate.
    pub resolved_ci: (f64, f64),
    /// pass@k over the repeats (total row: the mean over problems); `None` with fewer than k trials.
    pub pass_at_k: Option<f64>,
    pub wall_s: Spread,
    /// Trials that had server figures; 0 means the runs had no server.
    pub server_trials: usize,
    pub prefill_tps: Option<Spread>,
    pub decode_tps: Option<Spread>,
    /// As a fraction, 0–1.
    pub cache_hit_ratio: Option<Spread>,
    pub timeouts: u32,
    pub errors: u32,
    /// Against the reference group; `None` in its own cells and where it has no figures.
    pub delta: Option<Deltas>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deltas {
    pub passed: Delta,
    pub resolved_rate: Delta,
    pub pass_at_k: Option<Delta>,
    pub wall_s: Delta,
    pub prefill_tps: Option<Delta>,
    pub decode_tps: Option<Delta>,
    pub cache_hit_ratio: Option<Delta>,
}

/// A difference `this - reference group`, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    pub diff: f64,
    /// `diff` over the reference group's value, where that is not zero.
    pub relative: Option<f64>,
    /// 95% interval of `diff`; `None` when the samples are too small to tell.
    pub ci: Option<(f64, f64)>,
    pub verdict: Verdict,
    /// The interval includes zero (or there is none): the difference could be noise.
    pub noise: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    Same,
}

impl Delta {
    fn new(diff: f64, base: f64, ci: Option<(f64, f64)>, higher_is_better: bool) -> Delta {
        let verdict = if diff.abs() < 1e-9 {
            Verdict::Same
        } else if (diff > 0.0) == higher_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        let noise = verdict != Verdict::Same && ci.map_or(true, |(lo, hi)| lo <= 0.0 && hi >= 0.0);
        Delta { diff, relative: (base.abs() > 1e-12).then(|| diff / base), ci, verdict, noise }
    }

    fn of_means(a: &Spread, b: &Spread, higher_is_better: bool) -> Delta {
        let d = Estimate::diff(&a.estimate(), &b.estimate());
        Delta::new(b.mean - a.mean, a.mean, d.interval(), higher_is_better)
    }
}

/// The trials of one group on one problem, kept for the statistics.
#[derive(Default)]
struct Bucket<'a> {
    trials: Vec<&'a TrialRecord>,
}

impl Comparison {
    /// `against` names the reference group by its key; without it the first group is.
    pub fn build(runs: &[RunRecord], by: &GroupBy, k: Option<u32>, against: Option<&str>) -> Result<Comparison> {
        // Groups in order of first appearance, each run's trials read as it planned them.
        let mut group_names: Vec<String> = Vec::new();
        let mut group_runs: Vec<Vec<String>> = Vec::new();
        let mut problems: BTreeSet<&str> = BTreeSet::new();
        let mut buckets: BTreeMap<(usize, &str), Bucket> = BTreeMap::new();
        // Per (group, run, agent, repeat): the suite's passed tests, for the total row.
        let mut suites: BTreeMap<(usize, &str, &str, u32), f64> = BTreeMap::new();
        for run in runs {
            let mut planned: Vec<&crate::store::TrialRecord> = run.trials.iter().collect();
            let order = crate::store::plan_order(&run.config);
            planned.sort_by(|a, b| order(a, b));
            for t in planned {
                let key = by.key(run, t);
                let g = match group_names.iter().position(|n| *n == key) {
                    Some(g) => g,
                    None => {
                        group_names.push(key);
                        group_runs.push(Vec::new());
                        group_names.len() - 1
                    }
                };
                if !group_runs[g].contains(&run.run_id) {
                    group_runs[g].push(run.run_id.clone());
                }
                problems.insert(&t.problem);
                buckets.entry((g, &t.problem)).or_default().trials.push(t);
                *suites.entry((g, &run.run_id, &t.agent, t.repeat)).or_default() += t.grade.passed as f64;
            }
        }
        if group_names.is_empty() {
            return Err(Error::BadInput(format!(
                "the runs {} hold no finished trial to compare",
                runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let reference = match against {
            Some(key) => reference_group(&group_names, by, key)?,
            None => 0,
        };
        // k defaults to the repeats of one run: the fewest trials any run has of a problem and agent.
        let mut per_run: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
        for run in runs {
            for t in &run.trials {
                *per_run.entry((&run.run_id, &t.problem, &t.agent)).or_default() += 1;
            }
        }
        let k = k.unwrap_or_else(|| per_run.values().copied().min().unwrap_or(1)).max(1);
        let mut notes = Vec::new();

        let mut rows = Vec::new();
        for p in &problems {
            let cells: Vec<Option<Cell>> =
                (0..group_names.len()).map(|g| buckets.get(&(g, *p)).map(|b| cell(&b.trials, k, None))).collect();
            rows.push(Row { problem: p.to_string(), is_total: false, cells });
        }
        let mut total_cells = Vec::new();
        for g in 0..group_names.len() {
            let trials: Vec<&TrialRecord> =
                buckets.range((g, "")..(g + 1, "")).flat_map(|(_, b)| b.trials.iter().copied()).collect();
            let suite: Vec<f64> = suites.iter().filter(|(key, _)| key.0 == g).map(|(_, v)| *v).collect();
            let mut c = cell(&trials, k, Some(&suite));
            c.tests = problems
                .iter()
                .filter_map(|p| buckets.get(&(g, *p)).and_then(|b| b.trials.iter().map(|t| t.grade.total).max()))
                .sum();
            let per_problem: Vec<f64> = rows.iter().filter_map(|r| r.cells[g].as_ref()?.pass_at_k).collect();
            c.pass_at_k = (!per_problem.is_empty()).then(|| per_problem.iter().sum::<f64>() / per_problem.len() as f64);
            total_cells.push(Some(c));
        }
        rows.push(Row { problem: "total".into(), is_total: true, cells: total_cells });

        let sets: BTreeSet<Vec<&str>> = (0..group_names.len())
            .map(|g| problems.iter().copied().filter(|p| buckets.contains_key(&(g, *p))).collect())
            .collect();
        if sets.len() > 1 {
            notes.push("the groups ran different problems: their total rows do not compare like for like".into());
        }

        // Deltas against the reference group.
        for row in &mut rows {
            let Some(base) = row.cells[reference].clone() else {
                continue;
            };
            for (g, c) in row.cells.iter_mut().enumerate() {
                if let Some(c) = c.as_mut().filter(|_| g != reference) {
                    c.delta = Some(deltas(&base, c));
                }
            }
        }

        let groups = group_names
            .into_iter()
            .zip(group_runs)
            .enumerate()
            .map(|(g, (name, runs))| GroupInfo {
                name,
                runs,
                trials: buckets.range((g, "")..(g + 1, "")).map(|(_, b)| b.trials.len()).sum(),
                reference: g == reference,
            })
            .collect();
        Ok(Comparison { by: by.name(), runs: runs.iter().map(|r| r.run_id.clone()).collect(), k, groups, rows, notes })
    }
}

/// The index of the group `--against` names: its key (`oracle`), or the header's `agent=oracle`.
fn reference_group(names: &[String], by: &GroupBy, against: &str) -> Result<usize> {
    let header = format!("{by}=");
    let key = match against.strip_prefix(&header) {
        Some(key) if !names.iter().any(|n| n == against) => key,
        _ => against,
    };
    names.iter().position(|n| n == key).ok_or_else(|| {
        let known: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        Error::BadInput(format!(
            "--against `{against}`: the runs have no such group by {by}; their groups are {}: \
             name one of them, or group another way with --by",
            known.join(", ")
        ))
        .into()
    })
}

/// A cell from its trials; `suite` (total row) replaces per-trial passed counts.
fn cell(trials: &[&TrialRecord], k: u32, suite: Option<&[f64]>) -> Cell {
    let n = trials.len() as u32;
    let resolved = trials.iter().filter(|t| t.grade.resolved).count() as u32;
    let passed: Vec<f64> = match suite {
        Some(s) => s.to_vec(),
        None => trials.iter().map(|t| t.grade.passed as f64).collect(),
    };
    let wall: Vec<f64> = trials.iter().map(|t| t.wall_s).collect();
    let server = |f: fn(&crate::store::ServerDelta) -> Option<f64>| {
        let v: Vec<f64> =
            trials.iter().filter_map(|t| t.telemetry.server.as_ref().and_then(f)).filter(|v| v.is_finite()).collect();
        Spread::of(&v)
    };
    Cell {
        trials: trials.len(),
        tests: trials.iter().map(|t| t.grade.total).max().unwrap_or(0),
        passed: Spread::of(&passed).expect("a cell has trials"),
        resolved,
        resolved_rate: resolved as f64 / n.max(1) as f64,
        resolved_ci: stats::wilson(resolved, n),
        pass_at_k: stats::pass_at_k(n, resolved, k),
        wall_s: Spread::of(&wall).expect("a cell has trials"),
        server_trials: trials.iter().filter(|t| t.telemetry.server.is_some()).count(),
        prefill_tps: server(|s| s.prefill_tps),
        decode_tps: server(|s| s.decode_tps),
        cache_hit_ratio: server(|s| s.cache_hit_ratio),
        timeouts: trials.iter().filter(|t| t.agent_run.timed_out).count() as u32,
        errors: trials.iter().filter(|t| t.error.is_some()).count() as u32,
        delta: None,
    }
}

fn deltas(a: &Cell, b: &Cell) -> Deltas {
    let rate_ci = stats::newcombe_diff(a.resolved, a.trials as u32, b.resolved, b.trials as u32);
    let resolved_rate = Delta::new(b.resolved_rate - a.resolved_rate, a.resolved_rate, Some(rate_ci), true);
    let pass_at_k = match (a.pass_at_k, b.pass_at_k) {
        (Some(x), Some(y)) => {
            let mut d = Delta::new(y - x, x, None, true);
            // pass@k has no interval of its own; it moves with the resolved counts.
            d.noise = d.verdict != Verdict::Same && resolved_rate.noise;
            Some(d)
        }
        _ => None,
    };
    let both = |x: &Option<Spread>, y: &Option<Spread>| match (x, y) {
        (Some(x), Some(y)) => Some(Delta::of_means(x, y, true)),
        _ => None,
    };
    Deltas {
        passed: Delta::of_means(&a.passed, &b.passed, true),
        resolved_rate,
        pass_at_k,
        wall_s: Delta::of_means(&a.wall_s, &b.wall_s, false),
        prefill_tps: both(&a.prefill_tps, &b.prefill_tps),
        decode_tps: both(&a.decode_tps, &b.decode_tps),
        cache_hit_ratio: both(&a.cache_hit_ratio, &b.cache_hit_ratio),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;

    /// One run: agent `a` passes 11 of 15 on expr_calc, `b` 13, `c` 15 (two repeats each).
    fn three_agents() -> Vec<RunRecord> {
        let agents: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut run = synth::run_record("20260201-120000-0001", Utc::now(), &agents);
        for (agent, passed) in [("a", 11), ("b", 13), ("c", 15)] {
            for rep in 0..2 {
                run.trials.push(synth::trial("expr_calc", agent, rep, passed, 15, 11));
            }
        }
        vec![run]
    }

    #[test]
    fn against_takes_the_deltas_against_the_named_group() {
        let runs = three_agents();
        let cmp = Comparison::build(&runs, &GroupBy::Agent, None, Some("b")).unwrap();
        let reference: Vec<bool> = cmp.groups.iter().map(|g| g.reference).collect();
        assert_eq!(reference, [false, true, false], "groups keep their order");
        for row in &cmp.rows {
            let diff = |g: usize| row.cells[g].as_ref().unwrap().delta.as_ref().map(|d| d.passed.diff);
            assert_eq!((diff(0), diff(1), diff(2)), (Some(-2.0), None, Some(2.0)));
        }
        // The header's spelling works too; without --against the first group is the reference.
        let cmp = Comparison::build(&runs, &GroupBy::Agent, None, Some("agent=c")).unwrap();
        assert!(cmp.groups[2].reference);
        let cmp = Comparison::build(&runs, &GroupBy::Agent, None, None).unwrap();
        assert!(cmp.groups[0].reference && cmp.rows[0].cells[0].as_ref().unwrap().delta.is_none());
    }

    #[test]
    fn against_an_unknown_group_is_bad_input_that_lists_the_groups() {
        let err = Comparison::build(&three_agents(), &GroupBy::Agent, None, Some("z")).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&err), crate::exit_codes::BAD_INPUT);
        let msg = err.to_string();
        assert!(msg.contains("--against `z`") && msg.contains("`a`, `b`, `c`"), "{msg}");
    }
}
