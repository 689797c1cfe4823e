//! The trials sorted between the first run and a later one: fixed, regressed, still failing.
//! Matched by trial (problem/agent/repeat) when both runs ran the same repeats; otherwise by
//! problem and agent, which counts as resolved when more than half its trials resolved.

use std::collections::{BTreeMap, BTreeSet};

use super::escape::fragment_part;
use super::view::{ChangeList, ChangeSet, Link};
use crate::report::group::GroupBy;
use crate::store::{RunRecord, TrialRecord};

/// Links listed per kind; the rest are counted.
pub const LIST_CAP: usize = 100;

type Pair<'a> = (&'a str, &'a str);

pub fn between(first: &RunRecord, later: &RunRecord, by: &GroupBy) -> ChangeSet {
    let keys = |r: &RunRecord| {
        r.trials.iter().map(|t| (t.problem.clone(), t.agent.clone(), t.repeat)).collect::<BTreeSet<_>>()
    };
    let by_trial = keys(first) == keys(later);
    // (key, resolved before, resolved after, link)
    let mut sorted: Vec<(bool, bool, Link)> = Vec::new();
    if by_trial {
        let before: BTreeMap<(&str, &str, u32), bool> =
            first.trials.iter().map(|t| ((t.problem.as_str(), t.agent.as_str(), t.repeat), t.grade.resolved)).collect();
        let mut after: Vec<&TrialRecord> = later.trials.iter().collect();
        let order = crate::store::plan_order(&later.config);
        after.sort_by(|a, b| order(a, b));
        for t in after {
            let was = before[&(t.problem.as_str(), t.agent.as_str(), t.repeat)];
            let id = format!("{}/{}", later.run_id, t.id);
            let link = Link { label: t.id.clone(), href: format!("#trial={}", fragment_part(&id)), trial: id };
            sorted.push((was, t.grade.resolved, link));
        }
    } else {
        let before = majorities(first);
        for ((problem, agent), (now, t)) in majorities(later) {
            let Some((was, _)) = before.get(&(problem, agent)) else { continue };
            let cell = format!("{}/{problem}/{}", later.run_id, by.key(later, t));
            let link = Link {
                label: format!("{problem}/{agent}"),
                href: format!("#cell={}", fragment_part(&cell)),
                trial: String::new(),
            };
            sorted.push((*was, now, link));
        }
    }
    let list = |kind: &'static str, keep: &dyn Fn(bool, bool) -> bool| {
        let all: Vec<&Link> = sorted.iter().filter(|(a, b, _)| keep(*a, *b)).map(|(_, _, l)| l).collect();
        ChangeList {
            kind,
            count: all.len(),
            links: all
                .into_iter()
                .take(LIST_CAP)
                .map(|l| Link { label: l.label.clone(), href: l.href.clone(), trial: l.trial.clone() })
                .collect(),
        }
    };
    let lists = vec![
        list("fixed", &|a, b| !a && b),
        list("regressed", &|a, b| a && !b),
        list("still failing", &|a, b| !a && !b),
    ];
    ChangeSet {
        from: first.run_id.clone(),
        to: later.run_id.clone(),
        keyed_by: if by_trial {
            "by trial (problem/agent/repeat)".into()
        } else {
            "by problem/agent, the repeats differ: resolved when more than half its trials resolved".into()
        },
        lists,
    }
}

/// Per (problem, agent): whether more than half its trials resolved, and one of them.
fn majorities(run: &RunRecord) -> BTreeMap<Pair<'_>, (bool, &TrialRecord)> {
    let mut counts: BTreeMap<Pair, (u32, u32, &TrialRecord)> = BTreeMap::new();
    for t in &run.trials {
        let e = counts.entry((t.problem.as_str(), t.agent.as_str())).or_insert((0, 0, t));
        e.0 += u32::from(t.grade.resolved);
        e.1 += 1;
    }
    counts.into_iter().map(|(k, (ok, n, t))| (k, (ok * 2 > n, t))).collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;

    fn run(id: &str, passed: &[u32]) -> RunRecord {
        let mut r = synth::run_record(id, Utc::now(), &["a".to_string()]);
        for (rep, p) in passed.iter().enumerate() {
            r.trials.push(synth::trial("expr_calc", "a", rep as u32, *p, 15, 11));
        }
        r
    }

    #[test]
    fn same_repeats_match_by_trial_and_other_repeats_by_problem_and_agent() {
        let c = between(&run("R1", &[15, 11, 11]), &run("R2", &[11, 15, 11]), &GroupBy::Agent);
        assert!(c.keyed_by.starts_with("by trial"));
        let counts: Vec<usize> = c.lists.iter().map(|l| l.count).collect();
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(c.lists[0].links[0].trial, "R2/expr_calc/a/1");
        let c = between(&run("R1", &[11, 11]), &run("R2", &[15, 15, 11]), &GroupBy::Agent);
        assert!(c.keyed_by.starts_with("by problem/agent"));
        assert_eq!(c.lists[0].count, 1);
        assert_eq!(c.lists[0].links[0].href, "#cell=R2/expr_calc/a");
    }
}
