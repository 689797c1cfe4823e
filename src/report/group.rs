//! What the reports group trials by (`--by`) and the per-trial metrics they chart (`--metric`).

use std::fmt;
use std::str::FromStr;

use crate::store::{RunRecord, TrialRecord};

/// The group a trial belongs to, picked with `--by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Agent,
    /// `run.server.model`, overridden by the run's `model` label.
    Model,
    /// `run.server.quant`, overridden by the run's `quant` label.
    Quant,
    /// The trial's server label, else the run's.
    Server,
    /// The value of one run label.
    Label(String),
    /// Each run is its own group.
    Run,
}

/// Shown for a trial of a run that had no server, where a server property was asked for.
pub const NO_SERVER: &str = "no server";

impl GroupBy {
    pub fn key(&self, run: &RunRecord, trial: &TrialRecord) -> String {
        match self {
            GroupBy::Agent => trial.agent.clone(),
            GroupBy::Model => model(run).unwrap_or_else(|| missing_server(run, "model")),
            GroupBy::Quant => quant(run).unwrap_or_else(|| missing_server(run, "quant")),
            GroupBy::Server => trial
                .server_label
                .clone()
                .or_else(|| run.server.as_ref().and_then(|s| s.label.clone()))
                .or_else(|| run.server.as_ref().map(|s| s.url.clone()))
                .unwrap_or_else(|| NO_SERVER.into()),
            GroupBy::Label(k) => run.labels.get(k).cloned().unwrap_or_else(|| format!("(no {k})")),
            GroupBy::Run => run.run_id.clone(),
        }
    }

    /// The word used in headers: `agent`, `model`, `label:flags`.
    pub fn name(&self) -> String {
        match self {
            GroupBy::Agent => "agent".into(),
            GroupBy::Model => "model".into(),
            GroupBy::Quant => "quant".into(),
            GroupBy::Server => "server".into(),
            GroupBy::Label(k) => format!("label:{k}"),
            GroupBy::Run => "run".into(),
        }
    }
}

fn missing_server(run: &RunRecord, what: &str) -> String {
    if run.server.is_none() {
        NO_SERVER.into()
    } else {
        format!("unknown {what}")
    }
}

/// The run's model: its `model` label, else what the server reported.
pub fn model(run: &RunRecord) -> Option<String> {
    run.labels.get("model").cloned().or_else(|| {
        let s = run.server.as_ref()?;
        s.model.clone().or_else(|| s.model_alias.clone())
    })
}

/// The run's quantisation: its `quant` label, else what the server's model file said.
pub fn quant(run: &RunRecord) -> Option<String> {
    run.labels.get("quant").cloned().or_else(|| run.server.as_ref()?.quant.clone())
}

impl FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "agent" => GroupBy::Agent,
            "model" => GroupBy::Model,
            "quant" => GroupBy::Quant,
            "server" => GroupBy::Server,
            "run" => GroupBy::Run,
            _ => match s.strip_prefix("label:") {
                Some(k) if !k.is_empty() => GroupBy::Label(k.to_string()),
                _ => return Err(format!("`{s}` is not a grouping: use agent, model, quant, server, run or label:KEY")),
            },
        })
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A per-trial number a report can chart or compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Tests passed, as a share of the tests run
    Passed,
    /// Trials that passed every test
    Resolved,
    /// Wall time of a trial (agent + grading)
    Wall,
    /// Prompt processing speed on the server
    #[value(name = "prefill_tps", alias = "prefill-tps")]
    PrefillTps,
    /// Generation speed on the server
    #[value(name = "decode_tps", alias = "decode-tps")]
    DecodeTps,
    /// Share of prompt tokens served from the prompt cache
    #[value(name = "cache_hit_ratio", alias = "cache-hit-ratio")]
    CacheHitRatio,
}

impl Metric {
    /// The trial's value; `None` when the trial lacks it (no server).
    pub fn value(self, t: &TrialRecord) -> Option<f64> {
        match self {
            Metric::Passed => (t.grade.total > 0).then(|| t.grade.passed as f64 / t.grade.total as f64 * 100.0),
            Metric::Resolved => Some(if t.grade.resolved { 100.0 } else { 0.0 }),
            Metric::Wall => Some(t.wall_s),
            Metric::PrefillTps => t.telemetry.server.as_ref()?.prefill_tps,
            Metric::DecodeTps => t.telemetry.server.as_ref()?.decode_tps,
            Metric::CacheHitRatio => t.telemetry.server.as_ref()?.cache_hit_ratio.map(|r| r * 100.0),
        }
    }

    /// The axis title, with its unit.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Passed => "tests passed (%)",
            Metric::Resolved => "trials resolved (%)",
            Metric::Wall => "wall time per trial (s)",
            Metric::PrefillTps => "prefill speed (tokens/s)",
            Metric::DecodeTps => "decode speed (tokens/s)",
            Metric::CacheHitRatio => "prompt cache hits (%)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Passed => "passed",
            Metric::Resolved => "resolved",
            Metric::Wall => "wall",
            Metric::PrefillTps => "prefill_tps",
            Metric::DecodeTps => "decode_tps",
            Metric::CacheHitRatio => "cache_hit_ratio",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Wall)
    }

    /// Whether the metric needs a server (so "no server" explains a missing value).
    pub fn needs_server(self) -> bool {
        matches!(self, Metric::PrefillTps | Metric::DecodeTps | Metric::CacheHitRatio)
    }

    /// Whether the y axis is a percentage (0–100).
    pub fn is_percent(self) -> bool {
        matches!(self, Metric::Passed | Metric::Resolved | Metric::CacheHitRatio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_parses_and_names_the_fix() {
        assert_eq!("label:flags".parse::<GroupBy>().unwrap(), GroupBy::Label("flags".into()));
        assert_eq!("quant".parse::<GroupBy>().unwrap().name(), "quant");
        let err = "label:".parse::<GroupBy>().unwrap_err();
        assert!(err.contains("label:KEY"), "{err}");
    }
}
