//! A run's plan record (what decides its results, hashed, and the slice it ran) and what
//! `fixbench merge` made a run of.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Host, RunStatus};
use crate::model::Shard;

/// A run's plan: every trial of it, what decides their results, and the slice this run ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanRecord {
    /// The sha256 of `decides` as compact JSON: runs with equal hashes ran the same trials
    /// the same way, so their trials may be merged into one run.
    pub config_sha256: String,
    /// What decides a trial's result: the problems (each by the hash of its files), the
    /// agents (program, environment, time limit, version), repeats, time limits, isolation,
    /// cache state, model name and the server's fingerprint. Nothing that only says where
    /// it ran (paths, URLs, hosts, `--jobs`).
    pub decides: serde_json::Value,
    /// Every trial of the whole plan, by id, whatever slice this run ran.
    pub trials: Vec<String>,
    /// The slice this run ran (`--shard K/N`); absent: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl PlanRecord {
    /// The trials of the plan this run was to run: its slice's, or all.
    pub fn own_trials(&self) -> impl Iterator<Item = &String> + '_ {
        self.trials.iter().filter(|id| self.shard.map_or(true, |s| s.holds(id)))
    }
}

/// What `fixbench merge` made a run of.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergeRecord {
    /// When the merge was made.
    pub merged_at: Option<DateTime<Utc>>,
    /// Each run merged, in the order given.
    pub runs: Vec<MergedRun>,
    /// Trials of the plan that no merged run had finished (`--partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Trials found in more than one run with the same record, taken once.
    #[serde(default)]
    pub duplicates: u32,
}

/// One run that went into a merge.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergedRun {
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub host: Host,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: Option<RunStatus>,
    pub fixbench_version: String,
    pub git_commit: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Its trials at once (`--jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    /// Trials taken from it (its duplicates of another run's not counted).
    pub trials: u32,
}

/// Where two plans' `decides` first differ, in key order, `a` and `b` named by `names`:
/// `` `problems.expr_calc` is "3f2a…" in run A and "9c1b…" in run B ``; `None` when equal.
pub fn first_difference(a: &Value, b: &Value, names: (&str, &str)) -> Option<String> {
    fn walk(path: &str, a: &Value, b: &Value, names: (&str, &str)) -> Option<String> {
        let (one, other) = names;
        if a == b {
            return None;
        }
        let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => walk(&at(k), u, v, names),
                    (u, v) => Some(format!("`{}` is {} in {one} and {} in {other}", at(k), shown(u), shown(v))),
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().find_map(|(i, (u, v))| walk(&format!("{path}[{i}]"), u, v, names))
            }
            _ => Some(format!("`{path}` is {} in {one} and {} in {other}", shown(Some(a)), shown(Some(b)))),
        }
    }
    fn shown(v: Option<&Value>) -> String {
        match v {
            None => "absent".into(),
            Some(v) => {
                let text = v.to_string();
                if text.chars().count() > 60 {
                    format!("{}…", text.chars().take(60).collect::<String>())
                } else {
                    text
                }
            }
        }
    }
    walk("", a, b, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AB: (&str, &str) = ("A", "B");

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = json!({"problems": {"a": "11", "b": "22"}, "repeat": 2, "flags": ["-np", "2"]});
        assert_eq!(first_difference(&a, &a.clone(), AB), None);
        let mut b = a.clone();
        b["problems"]["b"] = json!("33");
        b["repeat"] = json!(3);
        assert_eq!(first_difference(&a, &b, AB).unwrap(), "`problems.b` is \"22\" in A and \"33\" in B");
        let mut c = a.clone();
        c["flags"][1] = json!("4");
        assert_eq!(first_difference(&a, &c, AB).unwrap(), "`flags[1]` is \"2\" in A and \"4\" in B");
        let mut d = a.clone();
        d["problems"].as_object_mut().unwrap().remove("a");
        assert_eq!(first_difference(&a, &d, AB).unwrap(), "`problems.a` is \"11\" in A and absent in B");
    }
}
