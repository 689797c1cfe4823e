//! `fixbench history`: one line per stored run, newest first.

use comfy_table::{Cell, CellAlignment};
use serde::Serialize;

use super::group::{self, NO_SERVER};
use super::table::new_table;
use crate::store::{RunRecord, RunStatus};

/// One run's line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub run_id: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status: String,
    /// `shard 2/3`, or `merged from 3 runs`; absent for a whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made: Option<String>,
    pub labels: Vec<String>,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub agents: Vec<String>,
    pub trials: usize,
    pub passed: u64,
    pub tests: u64,
    pub resolved: usize,
    /// Mean over the trials that have it; `None` when the run had no server.
    pub decode_tps: Option<f64>,
    pub has_server: bool,
    /// Why the run could not be read; the other fields are empty then.
    pub unreadable: Option<String>,
}

impl Line {
    pub fn of(run: &RunRecord) -> Line {
        let decode: Vec<f64> = run.trials.iter().filter_map(|t| t.telemetry.server.as_ref()?.decode_tps).collect();
        let status = match run.status {
            RunStatus::Finished => "finished",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
        };
        // Which slice of its plan it is, or what it was merged from.
        let made = match (&run.merged, run.plan.as_ref().and_then(|p| p.shard)) {
            (Some(m), _) if !m.missing.is_empty() => {
                Some(format!("merged from {} run(s), INCOMPLETE: {} trial(s) missing", m.runs.len(), m.missing.len()))
            }
            (Some(m), _) => Some(format!("merged from {} run(s)", m.runs.len())),
            (None, Some(shard)) => Some(format!("shard {shard}")),
            (None, None) => None,
        };
        Line {
            run_id: run.run_id.clone(),
            started_at: Some(run.started_at),
            status: status.into(),
            made,
            labels: run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            model: group::model(run),
            quant: group::quant(run),
            agents: run.config.agents.iter().map(|a| a.name.clone()).collect(),
            trials: run.trials.len(),
            passed: run.trials.iter().map(|t| t.grade.passed as u64).sum(),
            tests: run.trials.iter().map(|t| t.grade.total as u64).sum(),
            resolved: run.trials.iter().filter(|t| t.grade.resolved).count(),
            decode_tps: (!decode.is_empty()).then(|| decode.iter().sum::<f64>() / decode.len() as f64),
            has_server: run.server.is_some() || run.trials.iter().any(|t| t.telemetry.server.is_some()),
            unreadable: None,
        }
    }

    pub fn unreadable(run_id: &str, reason: &str) -> Line {
        Line {
            run_id: run_id.into(),
            started_at: None,
            status: "unreadable".into(),
            made: None,
            labels: vec![],
            model: None,
            quant: None,
            agents: vec![],
            trials: 0,
            passed: 0,
            tests: 0,
            resolved: 0,
            decode_tps: None,
            has_server: false,
            unreadable: Some(reason.into()),
        }
    }
}

pub fn render(lines: &[Line]) -> String {
    let mut t = new_table();
    t.set_header(vec![
        "run",
        "date (UTC)",
        "status",
        "labels",
        "model / quant",
        "agents",
        "trials",
        "score",
        "resolved",
        "decode tok/s",
    ]);
    for l in lines {
        if l.unreadable.is_some() {
            // The reason is long (path, parser message): it goes to stderr, named by run id.
            t.add_row(vec![
                Cell::new(&l.run_id),
                Cell::new(""),
                Cell::new("unreadable"),
                Cell::new("(see the warning)"),
            ]);
            continue;
        }
        let model = match (&l.model, &l.quant) {
            (None, None) if !l.has_server => NO_SERVER.to_string(),
            (m, q) => format!("{} / {}", m.as_deref().unwrap_or("?"), q.as_deref().unwrap_or("?")),
        };
        let score = if l.tests == 0 {
            "n/a".to_string()
        } else {
            format!("{:.1}% ({}/{})", l.passed as f64 / l.tests as f64 * 100.0, l.passed, l.tests)
        };
        let resolved = if l.trials == 0 {
            "n/a".to_string()
        } else {
            format!("{:.0}% ({}/{})", l.resolved as f64 / l.trials as f64 * 100.0, l.resolved, l.trials)
        };
        let decode = match l.decode_tps {
            Some(v) => format!("{v:.1}"),
            None if l.has_server => "n/a".into(),
            None => NO_SERVER.into(),
        };
        t.add_row(vec![
            Cell::new(&l.run_id),
            Cell::new(l.started_at.map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()),
            Cell::new(match &l.made {
                Some(m) => format!("{}, {m}", l.status),
                None => l.status.clone(),
            }),
            Cell::new(if l.labels.is_empty() { "-".into() } else { l.labels.join(" ") }),
            Cell::new(model),
            Cell::new(l.agents.join(", ")),
            Cell::new(l.trials).set_alignment(CellAlignment::Right),
            Cell::new(score).set_alignment(CellAlignment::Right),
            Cell::new(resolved).set_alignment(CellAlignment::Right),
            Cell::new(decode).set_alignment(CellAlignment::Right),
        ]);
    }
    format!("{t}\n")
}
