//! `fixbench route`: which configuration each problem (and each problem tag) can be sent to.
//!
//! The rules, as the README ("Routing: which problems can stay local") gives them:
//! - A configuration (a group of `--by`) **meets the bar** on a problem when the lower bound
//!   of the 95% Wilson interval of its resolve rate there is at least the bar.
//! - The **choice** for a problem or tag is the cheapest configuration that meets the bar
//!   (mean cost per trial; ties: the shorter mean wall time, then the one seen first). When
//!   only one meets it, that one, whatever its cost; when several do and one of them has no
//!   cost, none is chosen (which is cheapest is unknown). When none meets it, the report says
//!   so and names the best by lower bound.
//! - The **escalation target** ("the next configuration up") is the configuration that meets
//!   the bar on the most problems; ties: the higher lower bound over all its trials, then the
//!   one seen first.
//! - The **routing summary** sends each problem to its choice, and every other problem (none
//!   chosen) to the escalation target, and compares that with sending every problem to the
//!   escalation target. A problem weighs as many trials as the runs hold of it; cost per 100
//!   trials is that weighted mean of each problem's mean cost per trial under its
//!   configuration, times 100. Any cost it needs that is missing makes it say which instead.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use super::cost::{self, Missing};
use super::group::GroupBy;
use super::stats;
use crate::config::Price;
use crate::error::Error;
use crate::store::{RunRecord, TrialRecord};

/// What the report reads besides the runs.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub by: &'a GroupBy,
    /// The resolve rate the interval's lower bound must reach (0–1).
    pub bar: f64,
    pub prices: &'a BTreeMap<String, Price>,
    /// Each problem's tags (from its `problem.toml`); a problem not listed has none.
    pub tags: &'a BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Routing {
    pub by: String,
    pub bar: f64,
    pub runs: Vec<String>,
    /// The configurations, in the order they first appear.
    pub configurations: Vec<String>,
    pub problems: Vec<Subject>,
    pub tags: Vec<Subject>,
    pub summary: Summary,
}

/// A problem, or a tag with its problems' trials pooled.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    pub name: String,
    /// A tag's problems; empty for a problem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// One per configuration that ran it, in the configurations' order.
    pub options: Vec<Option_>,
    pub choice: Choice,
}

/// One configuration's trials of a problem or tag.
#[derive(Debug, Clone, Serialize)]
pub struct Option_ {
    pub configuration: String,
    pub trials: u32,
    pub resolved: u32,
    pub resolve_rate: f64,
    /// The 95% Wilson interval of the resolve rate.
    pub lower: f64,
    pub upper: f64,
    pub meets_bar: bool,
    /// Mean dollars per trial; `None` when any trial's cost is missing (see `cost_missing`).
    pub cost_per_trial: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cost_missing: Vec<String>,
    pub wall_s_per_trial: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Choice {
    /// The cheapest configuration that meets the bar (or the only one).
    Chosen { configuration: String },
    /// Several meet the bar, and at least one of them has no cost.
    Unpriced { meeting: Vec<String> },
    /// None meets the bar; the best by lower bound.
    NoneMeets { best: String, lower: f64 },
}

impl Choice {
    pub fn chosen(&self) -> Option<&str> {
        match self {
            Choice::Chosen { configuration } => Some(configuration),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The escalation target: the configuration that meets the bar on the most problems.
    pub escalation: String,
    /// On how many problems it meets the bar.
    pub escalation_meets: usize,
    pub problems: usize,
    /// Where the routing sends the problems, one entry per configuration that gets any.
    pub routes: Vec<Route>,
    /// Dollars per 100 trials routed so, and with everything sent to the escalation target;
    /// `None` when a cost it needs is missing (`cost_missing` says which).
    pub routed_per_100: Option<f64>,
    pub escalation_per_100: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cost_missing: Vec<String>,
    /// Problems that no configuration meets the bar on (they go to the escalation target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<String>,
    /// The summary in one sentence.
    pub line: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub configuration: String,
    pub problems: Vec<String>,
    /// The share of all trials that these problems are (0–1).
    pub trial_share: f64,
}

/// One trial as the report sees it.
struct Seen<'a> {
    config: usize,
    trial: &'a TrialRecord,
    cost: std::result::Result<f64, Missing>,
}

impl Routing {
    pub fn build(runs: &[RunRecord], inputs: Inputs) -> Result<Routing> {
        if let GroupBy::Label(key) = inputs.by {
            if !runs.iter().any(|r| r.labels.contains_key(key)) {
                let known: BTreeSet<&str> = runs.iter().flat_map(|r| r.labels.keys().map(String::as_str)).collect();
                let known = if known.is_empty() {
                    "they have none".to_string()
                } else {
                    format!("theirs are {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
                };
                return Err(Error::BadInput(format!(
                    "--by label:{key}: no run has the label `{key}` ({known}): group by a label they have, or label \
                     the runs with `fixbench run --label {key}=VALUE`"
                ))
                .into());
            }
        }
        let mut configurations: Vec<String> = Vec::new();
        let mut seen: Vec<Seen> = Vec::new();
        for run in runs {
            for trial in &run.trials {
                let key = inputs.by.key(run, trial);
                let config = configurations.iter().position(|c| *c == key).unwrap_or_else(|| {
                    configurations.push(key);
                    configurations.len() - 1
                });
                seen.push(Seen { config, trial, cost: cost::trial_cost(run, trial, inputs.prices) });
            }
        }
        if seen.is_empty() {
            return Err(Error::BadInput("the runs have no finished trials: nothing to route".into()).into());
        }
        let names: BTreeSet<&str> = seen.iter().map(|s| s.trial.problem.as_str()).collect();
        let subject = |name: &str, problems: Vec<String>, of: &dyn Fn(&str) -> bool| {
            let options: Vec<Option_> = (0..configurations.len())
                .filter_map(|c| {
                    let trials: Vec<&Seen> = seen.iter().filter(|s| s.config == c && of(&s.trial.problem)).collect();
                    (!trials.is_empty()).then(|| option(&configurations[c], &trials, inputs.bar))
                })
                .collect();
            Subject { name: name.to_string(), problems, choice: choose(&options), options }
        };
        let problems: Vec<Subject> = names.iter().map(|p| subject(p, Vec::new(), &|q| q == *p)).collect();
        let mut by_tag: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for p in &names {
            for tag in inputs.tags.get(*p).into_iter().flatten() {
                by_tag.entry(tag).or_default().push(p.to_string());
            }
        }
        let tags: Vec<Subject> = by_tag
            .into_iter()
            .map(|(tag, members)| {
                let of = |q: &str| members.iter().any(|m| m == q);
                subject(tag, members.clone(), &of)
            })
            .collect();
        let pooled: Vec<f64> = (0..configurations.len())
            .map(|c| {
                let all: Vec<&Seen> = seen.iter().filter(|s| s.config == c).collect();
                let resolved = all.iter().filter(|s| s.trial.grade.resolved).count() as u32;
                stats::wilson(resolved, all.len() as u32).0
            })
            .collect();
        let weights: Vec<usize> = problems.iter().map(|p| p.options.iter().map(|o| o.trials as usize).sum()).collect();
        let summary = summarize(&configurations, &pooled, &problems, &weights);
        Ok(Routing {
            by: inputs.by.name(),
            bar: inputs.bar,
            runs: runs.iter().map(|r| r.run_id.clone()).collect(),
            configurations,
            problems,
            tags,
            summary,
        })
    }
}

fn option(configuration: &str, trials: &[&Seen], bar: f64) -> Option_ {
    let n = trials.len() as u32;
    let resolved = trials.iter().filter(|s| s.trial.grade.resolved).count() as u32;
    let (lower, upper) = stats::wilson(resolved, n);
    let costs: Vec<f64> = trials.iter().filter_map(|s| s.cost.as_ref().ok().copied()).collect();
    let missing: BTreeSet<&Missing> = trials.iter().filter_map(|s| s.cost.as_ref().err()).collect();
    Option_ {
        configuration: configuration.to_string(),
        trials: n,
        resolved,
        resolve_rate: resolved as f64 / n as f64,
        lower,
        upper,
        meets_bar: lower >= bar,
        cost_per_trial: missing.is_empty().then(|| costs.iter().sum::<f64>() / n as f64),
        cost_missing: missing.iter().map(|m| m.describe()).collect(),
        wall_s_per_trial: trials.iter().map(|s| s.trial.wall_s).sum::<f64>() / n as f64,
    }
}

/// The choice rule of the module's doc. `options` is not empty.
pub fn choose(options: &[Option_]) -> Choice {
    let meeting: Vec<&Option_> = options.iter().filter(|o| o.meets_bar).collect();
    match meeting.as_slice() {
        [] => {
            // Max by lower bound; the first seen wins ties.
            let best = options.iter().fold(&options[0], |b, o| if o.lower > b.lower { o } else { b });
            Choice::NoneMeets { best: best.configuration.clone(), lower: best.lower }
        }
        [only] => Choice::Chosen { configuration: only.configuration.clone() },
        _ if meeting.iter().any(|o| o.cost_per_trial.is_none()) => {
            Choice::Unpriced { meeting: meeting.iter().map(|o| o.configuration.clone()).collect() }
        }
        _ => {
            let key = |o: &Option_| (o.cost_per_trial.unwrap_or(f64::INFINITY), o.wall_s_per_trial);
            let best = meeting.iter().copied().fold(meeting[0], |b, o| {
                let (bc, bw) = key(b);
                let (oc, ow) = key(o);
                if oc < bc || (oc == bc && ow < bw) {
                    o
                } else {
                    b
                }
            });
            Choice::Chosen { configuration: best.configuration.clone() }
        }
    }
}

/// The escalation target: the most problems met; ties by `pooled` lower bound, then order.
pub fn escalation_target(configurations: &[String], pooled: &[f64], problems: &[Subject]) -> usize {
    let meets = |c: usize| {
        problems
            .iter()
            .filter(|p| p.options.iter().any(|o| o.configuration == configurations[c] && o.meets_bar))
            .count()
    };
    (0..configurations.len()).fold(0, |best, c| {
        let better = meets(c) > meets(best) || (meets(c) == meets(best) && pooled[c] > pooled[best]);
        if better {
            c
        } else {
            best
        }
    })
}

/// The routing summary of the module's doc; `weights[i]` is how many trials problem `i` has.
pub fn summarize(configurations: &[String], pooled: &[f64], problems: &[Subject], weights: &[usize]) -> Summary {
    let top = escalation_target(configurations, pooled, problems);
    let escalation = configurations[top].clone();
    let total: usize = weights.iter().sum();
    let routed: Vec<&str> = problems.iter().map(|p| p.choice.chosen().unwrap_or(&escalation)).collect();
    let routes: Vec<Route> = configurations
        .iter()
        .filter_map(|c| {
            let mine: Vec<usize> = (0..problems.len()).filter(|&i| routed[i] == c).collect();
            (!mine.is_empty()).then(|| Route {
                configuration: c.clone(),
                problems: mine.iter().map(|&i| problems[i].name.clone()).collect(),
                trial_share: mine.iter().map(|&i| weights[i]).sum::<usize>() as f64 / total.max(1) as f64,
            })
        })
        .collect();

    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut per_100 = |to: &[&str]| -> Option<f64> {
        let mut sum = Some(0.0);
        for (i, p) in problems.iter().enumerate() {
            let config = to[i];
            let cost = match p.options.iter().find(|o| o.configuration == config) {
                None => {
                    missing.insert(format!("`{config}` has no trials of `{}`", p.name));
                    None
                }
                Some(o) => {
                    missing.extend(o.cost_missing.iter().map(|m| format!("`{config}`: {m}")));
                    o.cost_per_trial
                }
            };
            sum = sum.zip(cost).map(|(s, c)| s + c * weights[i] as f64);
        }
        sum.map(|s| s / total.max(1) as f64 * 100.0)
    };
    let routed_per_100 = per_100(&routed);
    let escalation_per_100 = per_100(&vec![escalation.as_str(); problems.len()]);
    let cost_missing: Vec<String> = missing.into_iter().collect();
    let unmet: Vec<String> =
        problems.iter().filter(|p| matches!(p.choice, Choice::NoneMeets { .. })).map(|p| p.name.clone()).collect();
    let escalation_meets =
        problems.iter().filter(|p| p.options.iter().any(|o| o.configuration == escalation && o.meets_bar)).count();

    let n = problems.len();
    let away: Vec<String> = routes
        .iter()
        .filter(|r| r.configuration != escalation)
        .map(|r| {
            format!(
                "{} on {} of {n} problems ({:.0}% of trials)",
                r.configuration,
                r.problems.len(),
                r.trial_share * 100.0
            )
        })
        .collect();
    let mut line = if away.is_empty() {
        format!("{escalation} on all {n} problems: no other configuration was chosen for any")
    } else {
        format!("{}, the rest to {escalation}", away.join(", "))
    };
    match (routed_per_100, escalation_per_100) {
        (Some(r), Some(e)) if !away.is_empty() => {
            line += &format!(", {} per 100 trials instead of {} all on {escalation}", money(r), money(e))
        }
        (Some(r), Some(_)) => line += &format!(", {} per 100 trials", money(r)),
        _ => line += &format!("; cost unknown: {}", cost_missing.join("; ")),
    }
    Summary {
        escalation,
        escalation_meets,
        problems: n,
        routes,
        routed_per_100,
        escalation_per_100,
        cost_missing,
        unmet,
        line,
    }
}

/// Dollars as a report shows them: cents, or four places below a cent.
pub fn money(d: f64) -> String {
    if d > 0.0 && d < 0.01 {
        format!("${d:.4}")
    } else {
        format!("${d:.2}")
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;
    use crate::store::RequestRecord;

    fn opt(config: &str, lower: f64, cost: Option<f64>, wall: f64, bar: f64) -> Option_ {
        Option_ {
            configuration: config.into(),
            trials: 10,
            resolved: 10,
            resolve_rate: 1.0,
            lower,
            upper: 1.0,
            meets_bar: lower >= bar,
            cost_per_trial: cost,
            cost_missing: if cost.is_none() { vec!["no price for model `x`".into()] } else { vec![] },
            wall_s_per_trial: wall,
        }
    }

    fn chosen(c: &str) -> Choice {
        Choice::Chosen { configuration: c.into() }
    }

    #[test]
    fn choice_is_the_cheapest_that_meets_the_bar_at_its_lower_bound() {
        let bar = 0.8;
        // `cheap` has a high rate but its lower bound is under the bar: it does not count.
        let o = [
            opt("cheap", 0.79, Some(0.01), 5.0, bar),
            opt("mid", 0.8, Some(0.1), 9.0, bar),
            opt("top", 0.9, Some(1.0), 3.0, bar),
        ];
        assert_eq!(choose(&o), chosen("mid"));
        // Equal cost: the faster.
        let o = [opt("slow", 0.85, Some(0.1), 9.0, bar), opt("fast", 0.85, Some(0.1), 3.0, bar)];
        assert_eq!(choose(&o), chosen("fast"));
        // The only one that meets it is chosen even without a cost.
        let o = [opt("local", 0.1, Some(0.0), 1.0, bar), opt("frontier", 0.9, None, 1.0, bar)];
        assert_eq!(choose(&o), chosen("frontier"));
        // Several meet it and one has no cost: the cheapest is unknown.
        let o = [opt("a", 0.9, None, 1.0, bar), opt("b", 0.9, Some(1.0), 1.0, bar)];
        assert_eq!(choose(&o), Choice::Unpriced { meeting: vec!["a".into(), "b".into()] });
        // None meets it: the best by lower bound, named.
        let o = [opt("a", 0.3, Some(0.0), 1.0, bar), opt("b", 0.6, Some(1.0), 1.0, bar), opt("c", 0.6, None, 1.0, bar)];
        assert_eq!(choose(&o), Choice::NoneMeets { best: "b".into(), lower: 0.6 });
    }

    fn problem(name: &str, options: Vec<Option_>) -> Subject {
        Subject { name: name.into(), problems: vec![], choice: choose(&options), options }
    }

    #[test]
    fn summary_routes_the_rest_to_the_configuration_that_meets_the_most() {
        let bar = 0.8;
        let configs = vec!["local".to_string(), "frontier".to_string()];
        let problems = vec![
            problem("p1", vec![opt("local", 0.85, Some(0.001), 4.0, bar), opt("frontier", 0.9, Some(0.02), 2.0, bar)]),
            problem("p2", vec![opt("local", 0.82, Some(0.003), 4.0, bar), opt("frontier", 0.9, Some(0.02), 2.0, bar)]),
            problem("p3", vec![opt("local", 0.2, Some(0.002), 4.0, bar), opt("frontier", 0.85, Some(0.05), 2.0, bar)]),
        ];
        // p1 holds twice the trials of each other problem.
        let s = summarize(&configs, &[0.5, 0.9], &problems, &[40, 20, 20]);
        assert_eq!((s.escalation.as_str(), s.escalation_meets), ("frontier", 3));
        assert_eq!(s.routes.len(), 2);
        assert_eq!((s.routes[0].configuration.as_str(), s.routes[0].problems.len()), ("local", 2));
        assert!((s.routes[0].trial_share - 0.75).abs() < 1e-12);
        assert_eq!(s.routes[1].problems, ["p3"]);
        // Routed: (40·0.001 + 20·0.003 + 20·0.05) / 80 · 100; all on frontier: (60·0.02 + 20·0.05) / 80 · 100.
        let routed = (40.0 * 0.001 + 20.0 * 0.003 + 20.0 * 0.05) / 80.0 * 100.0;
        let all_top = (60.0 * 0.02 + 20.0 * 0.05) / 80.0 * 100.0;
        assert!((s.routed_per_100.unwrap() - routed).abs() < 1e-12);
        assert!((s.escalation_per_100.unwrap() - all_top).abs() < 1e-12);
        assert_eq!(
            s.line,
            format!("local on 2 of 3 problems (75% of trials), the rest to frontier, {} per 100 trials instead of {} all on frontier", money(routed), money(all_top))
        );
    }

    #[test]
    fn summary_names_missing_prices_instead_of_a_number() {
        let bar = 0.8;
        let configs = vec!["local".to_string(), "frontier".to_string()];
        let problems = vec![
            problem("p1", vec![opt("local", 0.85, Some(0.0), 4.0, bar), opt("frontier", 0.7, None, 2.0, bar)]),
            problem("p2", vec![opt("local", 0.1, Some(0.0), 4.0, bar), opt("frontier", 0.9, None, 2.0, bar)]),
            problem("p3", vec![opt("local", 0.1, Some(0.0), 4.0, bar)]),
        ];
        let s = summarize(&configs, &[0.3, 0.9], &problems, &[10, 10, 10]);
        assert_eq!(s.escalation, "frontier");
        assert_eq!((s.routed_per_100, s.escalation_per_100), (None, None));
        assert_eq!(s.unmet, ["p3"]);
        assert!(s.cost_missing.iter().any(|m| m == "`frontier`: no price for model `x`"), "{:?}", s.cost_missing);
        assert!(s.cost_missing.iter().any(|m| m == "`frontier` has no trials of `p3`"), "{:?}", s.cost_missing);
        assert!(
            s.line.starts_with("local on 1 of 3 problems (33% of trials), the rest to frontier; cost unknown: "),
            "{}",
            s.line
        );
    }

    #[test]
    fn build_pools_tags_prices_trials_and_rejects_an_unknown_label() {
        let mut local = synth::run_record("20260201-120000-0001", Utc::now(), &["a".into()]);
        local.labels.insert("model".into(), "local".into());
        let mut frontier = synth::run_record("20260201-130000-0001", Utc::now(), &["a".into()]);
        frontier.labels.insert("model".into(), "frontier".into());
        let request = RequestRecord {
            status: 200,
            conversation: Some(0),
            prompt_n: Some(1000),
            cache_n: Some(0),
            predicted_n: Some(100),
            ..Default::default()
        };
        for rep in 0..10 {
            for (run, p, passed) in [(0, "easy", 15), (0, "hard", 11), (1, "easy", 15), (1, "hard", 15)] {
                let mut t = synth::trial(p, "a", rep, passed, 15, 11);
                t.telemetry.requests = vec![request.clone()];
                [&mut local, &mut frontier][run].trials.push(t);
            }
        }
        let prices = BTreeMap::from([
            ("local".to_string(), Price { input: 0.0, cached_input: None, output: 0.0 }),
            ("frontier".to_string(), Price { input: 4.0, cached_input: Some(0.4), output: 60.0 }),
        ]);
        let tags = BTreeMap::from([
            ("easy".to_string(), vec!["refactor".to_string()]),
            ("hard".to_string(), vec!["refactor".to_string()]),
        ]);
        let by = GroupBy::Label("model".into());
        let runs = [local, frontier];
        let r = Routing::build(&runs, Inputs { by: &by, bar: 0.6, prices: &prices, tags: &tags }).unwrap();
        assert_eq!(r.configurations, ["local", "frontier"]);
        assert_eq!(r.problems[0].choice, chosen("local"), "easy: 10/10 on both, local is free");
        assert_eq!(r.problems[1].choice, chosen("frontier"));
        // The tag pools both problems: local 10/20 has a lower bound under 0.6.
        assert_eq!((r.tags[0].name.as_str(), r.tags[0].choice.clone()), ("refactor", chosen("frontier")));
        assert_eq!(r.tags[0].options[0].trials, 20);
        // frontier: 1000 × $4 + 100 × $60 per million = $0.01 a trial.
        let f = r.problems[0].options[1].cost_per_trial.unwrap();
        assert!((f - 0.01).abs() < 1e-12, "{f}");
        assert_eq!(
            r.summary.line,
            "local on 1 of 2 problems (50% of trials), the rest to frontier, $0.50 per 100 trials instead of $1.00 all on frontier"
        );

        let by = GroupBy::Label("flags".into());
        let err = Routing::build(&runs, Inputs { by: &by, bar: 0.6, prices: &prices, tags: &tags }).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&err), crate::exit_codes::BAD_INPUT);
        assert!(err.to_string().contains("no run has the label `flags` (theirs are `model`)"), "{err}");
    }
}
