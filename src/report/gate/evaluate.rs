//! The gate's judgement, plain data in and out: the score drop (bootstrap over trials, or
//! McNemar's test with single repeats) and the speed checks, each with its interval.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::error::Error;
use crate::report::stats::{self, resample_mean};
use crate::store::{Outcome, RunRecord, TrialRecord};

/// The p-value under which McNemar's test calls a drop real (single repeats only).
pub const ALPHA: f64 = 0.05;

/// The gate's findings, plain data.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub baseline: String,
    pub run: String,
    pub passed: bool,
    /// One sentence per reason the gate failed.
    pub failures: Vec<String>,
    pub pairs: usize,
    pub repeats: (usize, usize),
    pub score: ScoreCheck,
    pub speed: Vec<SpeedCheck>,
    /// Problem/agent pairs whose score moved, worst first.
    pub moved: Vec<Moved>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreCheck {
    /// Mean tests passed per repeat of the (paired) suite.
    pub baseline: f64,
    pub run: f64,
    pub tests: u32,
    /// `baseline - run`: positive is a drop.
    pub drop: f64,
    /// Percentile bootstrap over trials (stratified by problem and agent).
    pub drop_ci: (f64, f64),
    /// Per-test outcome pairs (repeat i against repeat i) that went pass → fail and fail → pass.
    pub pass_to_fail: u32,
    pub fail_to_pass: u32,
    /// One-sided exact McNemar p-value for "more passes became failures than chance allows".
    pub mcnemar_p: f64,
    /// How the drop was judged: `bootstrap` with two or more repeats a side, else `mcnemar`.
    pub judged_by: String,
    pub max_drop: f64,
    pub regressed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpeedCheck {
    pub metric: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub run: Option<f64>,
    /// How many times slower the run is (> 1: slower); `None` when a side lacks the figure.
    pub slowdown: Option<f64>,
    pub slowdown_ci: Option<(f64, f64)>,
    pub max_slowdown: Option<f64>,
    pub regressed: bool,
    /// Why there is no figure ("no server").
    pub missing: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub pair: String,
    pub baseline: f64,
    pub run: f64,
    /// Tests that passed in every baseline repeat and failed in at least one of the run's.
    pub broke: Vec<String>,
}

type Key = (String, String);

/// Whether to pair by problem alone: each run has one agent, under different names.
fn pair_by_problem(base: &RunRecord, run: &RunRecord) -> bool {
    let agents = |r: &RunRecord| r.trials.iter().map(|t| t.agent.clone()).collect::<std::collections::BTreeSet<_>>();
    let (a, b) = (agents(base), agents(run));
    a.len() == 1 && b.len() == 1 && a != b
}

/// Trials by (problem, agent), each list in repeat order; agent left empty when `by_problem`.
fn group(run: &RunRecord, by_problem: bool) -> BTreeMap<Key, Vec<&TrialRecord>> {
    let mut m: BTreeMap<Key, Vec<&TrialRecord>> = BTreeMap::new();
    for t in &run.trials {
        let agent = if by_problem { String::new() } else { t.agent.clone() };
        m.entry((t.problem.clone(), agent)).or_default().push(t);
    }
    for v in m.values_mut() {
        v.sort_by_key(|t| t.repeat);
    }
    m
}

fn key_name(k: &Key) -> String {
    if k.1.is_empty() {
        k.0.clone()
    } else {
        format!("{}/{}", k.0, k.1)
    }
}

pub fn evaluate(base: &RunRecord, run: &RunRecord, max_drop: f64, max_slowdown: Option<f64>) -> Result<Verdict> {
    let by_problem = pair_by_problem(base, run);
    let b = group(base, by_problem);
    let r = group(run, by_problem);
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    if by_problem {
        notes.push("each run has one agent, under different names: paired by problem".into());
    }
    let missing: Vec<String> = b.keys().filter(|k| !r.contains_key(*k)).map(key_name).collect();
    if !missing.is_empty() {
        failures.push(format!(
            "the run lacks {} the baseline has: {}",
            plural(missing.len(), "pair"),
            missing.join(", ")
        ));
    }
    let extra: Vec<String> = r.keys().filter(|k| !b.contains_key(*k)).map(key_name).collect();
    if !extra.is_empty() {
        notes.push(format!("not in the baseline, left out: {}", extra.join(", ")));
    }
    let keys: Vec<&Key> = b.keys().filter(|k| r.contains_key(*k)).collect();
    if keys.is_empty() {
        return Err(Error::BadInput(format!(
            "run {} and baseline {} share no problem and agent: nothing to gate",
            run.run_id, base.run_id
        ))
        .into());
    }

    // Score: suite sums of per-pair means.
    let passed = |ts: &[&TrialRecord]| ts.iter().map(|t| t.grade.passed as f64).collect::<Vec<f64>>();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let samples: Vec<(Vec<f64>, Vec<f64>)> = keys.iter().map(|k| (passed(&b[*k]), passed(&r[*k]))).collect();
    let base_score: f64 = samples.iter().map(|(x, _)| mean(x)).sum();
    let run_score: f64 = samples.iter().map(|(_, y)| mean(y)).sum();
    let drop = base_score - run_score;
    let drop_ci =
        stats::bootstrap(|rng| samples.iter().map(|(x, y)| resample_mean(x, rng) - resample_mean(y, rng)).sum());
    let tests: u32 = keys.iter().map(|k| b[*k].iter().map(|t| t.grade.total).max().unwrap_or(0)).sum();

    // McNemar over per-test outcomes, repeat i against repeat i.
    let (mut p2f, mut f2p) = (0u32, 0u32);
    let mut moved = Vec::new();
    for k in &keys {
        let (bt, rt) = (&b[*k], &r[*k]);
        for (x, y) in bt.iter().zip(rt.iter()) {
            let outcomes = |t: &TrialRecord| {
                t.grade.tests.iter().map(|r| (r.name.clone(), r.outcome == Outcome::Passed)).collect::<BTreeMap<_, _>>()
            };
            let (ox, oy) = (outcomes(x), outcomes(y));
            for (name, &px) in &ox {
                // A test missing from the run's results counts as not passed.
                let py = oy.get(name).copied().unwrap_or(false);
                match (px, py) {
                    (true, false) => p2f += 1,
                    (false, true) => f2p += 1,
                    _ => {}
                }
            }
        }
        let (mb, mr) = (mean(&passed(bt)), mean(&passed(rt)));
        if (mb - mr).abs() > 1e-9 {
            let always: Vec<String> = bt[0]
                .grade
                .tests
                .iter()
                .filter(|t| {
                    bt.iter().all(|x| x.grade.tests.iter().any(|u| u.name == t.name && u.outcome == Outcome::Passed))
                })
                .filter(|t| {
                    rt.iter().any(|y| !y.grade.tests.iter().any(|u| u.name == t.name && u.outcome == Outcome::Passed))
                })
                .map(|t| t.name.rsplit("::").next().unwrap_or(&t.name).to_string())
                .collect();
            moved.push(Moved { pair: key_name(k), baseline: mb, run: mr, broke: always });
        }
    }
    moved.sort_by(|x, y| (y.baseline - y.run).total_cmp(&(x.baseline - x.run)));
    let mcnemar_p = stats::mcnemar_one_sided(p2f, f2p);
    let min_repeats = keys.iter().map(|k| b[*k].len().min(r[*k].len())).min().unwrap_or(0);
    let judged_by = if min_repeats >= 2 { "bootstrap" } else { "mcnemar" };
    let significant = if min_repeats >= 2 { drop_ci.0 > max_drop } else { mcnemar_p < ALPHA };
    let regressed = drop > max_drop + 1e-9 && significant;
    if regressed {
        failures.push(format!(
            "the score dropped by {:.1} tests (95% CI {:.1} to {:.1}), more than --max-drop {}",
            drop, drop_ci.0, drop_ci.1, max_drop
        ));
    } else if drop > max_drop + 1e-9 {
        notes.push(format!(
            "the score dropped by {drop:.1} tests, but the repeats' spread allows it ({}); more repeats would tell",
            if judged_by == "bootstrap" {
                format!("95% CI {:.1} to {:.1} reaches {max_drop}", drop_ci.0, drop_ci.1)
            } else {
                format!("McNemar p = {mcnemar_p:.3} ≥ {ALPHA} with one repeat")
            }
        ));
    }
    let score = ScoreCheck {
        baseline: base_score,
        run: run_score,
        tests,
        drop,
        drop_ci,
        pass_to_fail: p2f,
        fail_to_pass: f2p,
        mcnemar_p,
        judged_by: judged_by.into(),
        max_drop,
        regressed,
    };

    let mut speed = Vec::new();
    for (metric, unit, lower_better, f) in SPEEDS {
        let c = speed_check(metric, unit, lower_better, f, &keys, &b, &r, max_slowdown, base, run);
        if c.regressed {
            failures.push(format!(
                "{metric} is {:.2}× slower (95% CI {:.2} to {:.2}), more than --max-slowdown {}",
                c.slowdown.unwrap_or(f64::NAN),
                c.slowdown_ci.map_or(f64::NAN, |x| x.0),
                c.slowdown_ci.map_or(f64::NAN, |x| x.1),
                max_slowdown.unwrap_or(f64::NAN)
            ));
        }
        speed.push(c);
    }

    Ok(Verdict {
        baseline: base.run_id.clone(),
        run: run.run_id.clone(),
        passed: failures.is_empty(),
        failures,
        pairs: keys.len(),
        repeats: (
            keys.iter().map(|k| b[*k].len()).min().unwrap_or(0),
            keys.iter().map(|k| r[*k].len()).min().unwrap_or(0),
        ),
        score,
        speed,
        moved,
        notes,
    })
}

type Figure = fn(&TrialRecord) -> Option<f64>;

/// (name, unit, lower is better, the trial's figure)
const SPEEDS: [(&str, &str, bool, Figure); 3] = [
    ("wall", "s", true, |t| Some(t.wall_s)),
    ("prefill", "tok/s", false, |t| t.telemetry.server.as_ref()?.prefill_tps),
    ("decode", "tok/s", false, |t| t.telemetry.server.as_ref()?.decode_tps),
];

#[allow(clippy::too_many_arguments)]
fn speed_check(
    metric: &str,
    unit: &str,
    lower_better: bool,
    f: Figure,
    keys: &[&Key],
    b: &BTreeMap<Key, Vec<&TrialRecord>>,
    r: &BTreeMap<Key, Vec<&TrialRecord>>,
    max_slowdown: Option<f64>,
    base: &RunRecord,
    run: &RunRecord,
) -> SpeedCheck {
    let vals = |ts: &[&TrialRecord]| ts.iter().filter_map(|t| f(t)).filter(|v| v.is_finite()).collect::<Vec<f64>>();
    let pairs: Vec<(Vec<f64>, Vec<f64>)> =
        keys.iter().map(|k| (vals(&b[*k]), vals(&r[*k]))).filter(|(x, y)| !x.is_empty() && !y.is_empty()).collect();
    let mut c = SpeedCheck {
        metric: metric.into(),
        unit: unit.into(),
        baseline: None,
        run: None,
        slowdown: None,
        slowdown_ci: None,
        max_slowdown,
        regressed: false,
        missing: None,
    };
    if pairs.is_empty() {
        let side = match (base.server.is_none(), run.server.is_none()) {
            (true, true) => "no server in either run",
            (true, false) => "no server in the baseline",
            (false, true) => "no server in the run",
            (false, false) => "no figures recorded",
        };
        c.missing = Some(side.into());
        return c;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Wall: total suite time; speeds: the mean over pairs of each pair's mean.
    let agg = |means: Vec<f64>| {
        if lower_better {
            means.iter().sum::<f64>()
        } else {
            mean(&means)
        }
    };
    let xb = agg(pairs.iter().map(|(x, _)| mean(x)).collect());
    let xr = agg(pairs.iter().map(|(_, y)| mean(y)).collect());
    let ratio = |b: f64, r: f64| if lower_better { r / b } else { b / r };
    c.baseline = Some(xb);
    c.run = Some(xr);
    c.slowdown = Some(ratio(xb, xr));
    let ci = stats::bootstrap(|rng| {
        let sb = agg(pairs.iter().map(|(x, _)| resample_mean(x, rng)).collect());
        let sr = agg(pairs.iter().map(|(_, y)| resample_mean(y, rng)).collect());
        ratio(sb, sr)
    });
    c.slowdown_ci = Some(ci);
    c.regressed = max_slowdown.is_some_and(|x| c.slowdown.unwrap_or(0.0) > x && ci.0 > x);
    c
}

/// `1 pair`, `2 pairs`.
pub(super) fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;

    fn run_of(id: &str, passed: &[(u32, u32)]) -> RunRecord {
        // passed[i] = (expr_calc passed, mini_sheet passed) of repeat i
        let mut r = synth::run_record(id, Utc::now(), &["a".to_string()]);
        for (i, &(e, m)) in passed.iter().enumerate() {
            r.trials.push(synth::trial("expr_calc", "a", i as u32, e, 15, 11));
            r.trials.push(synth::trial("mini_sheet", "a", i as u32, m, 24, 12));
        }
        r
    }

    #[test]
    fn same_configuration_passes() {
        let a = run_of("a", &[(15, 20), (13, 24), (15, 22)]);
        let b = run_of("b", &[(14, 24), (15, 20), (15, 22)]);
        let v = evaluate(&a, &b, 0.0, Some(1.5)).unwrap();
        assert!(v.passed, "{v:#?}");
    }

    #[test]
    fn a_planted_regression_fails_and_noise_does_not() {
        let a = run_of("a", &[(15, 24), (15, 24), (15, 24)]);
        let b = run_of("b", &[(11, 24), (11, 24), (11, 24)]);
        let v = evaluate(&a, &b, 0.0, None).unwrap();
        assert!(!v.passed);
        assert_eq!(v.score.drop, 4.0);
        assert_eq!(v.score.drop_ci, (4.0, 4.0));
        assert_eq!((v.score.pass_to_fail, v.score.fail_to_pass), (12, 0));
        assert_eq!(v.moved[0].broke.len(), 4);
        // Allowing the drop passes.
        assert!(evaluate(&a, &b, 4.0, None).unwrap().passed);
        // A drop that the spread allows: 1 of 3 repeats lost.
        let c = run_of("c", &[(11, 24), (15, 24), (15, 24)]);
        let d = run_of("d", &[(15, 24), (11, 24), (11, 24)]);
        let v = evaluate(&c, &d, 0.0, None).unwrap();
        assert!(v.passed, "{v:#?}");
        assert!(v.notes.iter().any(|n| n.contains("spread allows")));
    }

    #[test]
    fn single_repeats_are_judged_by_mcnemar() {
        let a = run_of("a", &[(15, 24)]);
        let small = run_of("b", &[(11, 24)]); // 4 tests: p = 1/16
        let v = evaluate(&a, &small, 0.0, None).unwrap();
        assert_eq!(v.score.judged_by, "mcnemar");
        assert!(v.passed);
        let big = run_of("c", &[(11, 12)]); // 16 tests: p = 2^-16
        assert!(!evaluate(&a, &big, 0.0, None).unwrap().passed);
    }

    #[test]
    fn missing_pairs_fail_and_speed_without_server_is_na() {
        let a = run_of("a", &[(15, 24)]);
        let mut b = run_of("b", &[(15, 24)]);
        b.trials.retain(|t| t.problem == "expr_calc");
        let v = evaluate(&a, &b, 0.0, Some(1.2)).unwrap();
        assert!(!v.passed);
        assert!(v.failures[0].contains("mini_sheet/a"), "{:?}", v.failures);
        assert_eq!(v.speed[1].missing.as_deref(), Some("no server in either run"));
    }

    #[test]
    fn wall_slowdown_beyond_the_ratio_fails() {
        let a = run_of("a", &[(15, 24), (15, 24)]);
        let mut b = run_of("b", &[(15, 24), (15, 24)]);
        for t in &mut b.trials {
            t.wall_s *= 2.0;
        }
        let v = evaluate(&a, &b, 0.0, Some(1.5)).unwrap();
        assert!(!v.passed);
        assert_eq!(v.speed[0].slowdown, Some(2.0));
        assert!(evaluate(&a, &b, 0.0, Some(2.5)).unwrap().passed);
    }
}
