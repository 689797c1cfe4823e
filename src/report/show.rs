//! `fixbench show RUN_ID`: the run's header, its table, and each trial's details: tests
//! flipped, exit, timeout, isolation, cache state, server figures, and where its logs are.

use std::fmt::Write as _;
use std::path::Path;

use super::group::{self, NO_SERVER};
use crate::store::{Outcome, RunRecord, TrialRecord, RUN_FILE};

/// The whole `show` text; `run_dir` is where the trials' files are.
pub fn render(run: &RunRecord, run_dir: &Path) -> String {
    let mut out = header(run, run_dir);
    out.push('\n');
    out.push_str(&super::table::run_table(run));
    out.push('\n');
    for t in &run.trials {
        out.push_str(&trial_details(t, run_dir));
        out.push('\n');
    }
    out
}

fn header(run: &RunRecord, run_dir: &Path) -> String {
    let mut s = String::new();
    let took = run
        .ended_at
        .map(|e| format!(", {:.1} s", (e - run.started_at).num_milliseconds() as f64 / 1000.0))
        .unwrap_or_default();
    let status = serde_json::to_value(run.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let _ =
        writeln!(s, "run {}  {status}  started {}{took}", run.run_id, run.started_at.format("%Y-%m-%d %H:%M:%S UTC"));
    let h = &run.host;
    let _ = writeln!(
        s,
        "fixbench {}{} on {}: {}, {}, {} cores",
        run.fixbench_version,
        run.git_commit.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        h.hostname.as_deref().unwrap_or("?"),
        h.os,
        h.cpu.as_deref().unwrap_or("cpu ?"),
        h.cores
    );
    let labels: Vec<String> = run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "labels: {}", if labels.is_empty() { "none".into() } else { labels.join(", ") });
    match &run.server {
        None => {
            let _ = writeln!(s, "server: {NO_SERVER} (no server figures were recorded)");
        }
        Some(sv) => {
            let _ = writeln!(
                s,
                "server: {}{}  model {}  quant {}  slots {}  ctx/slot {}  build {}",
                sv.url,
                sv.label.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default(),
                group::model(run).unwrap_or_else(|| "?".into()),
                group::quant(run).unwrap_or_else(|| "?".into()),
                sv.total_slots.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                sv.n_ctx_per_slot.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                sv.build_info.as_deref().unwrap_or("?"),
            );
            if let Some(f) = &sv.flags {
                let _ = writeln!(s, "server flags: {}", f.join(" "));
            }
        }
    }
    let c = &run.config;
    let agents: Vec<String> = c.agents.iter().map(|a| a.name.clone()).collect();
    let _ = writeln!(
        s,
        "agents: {}; problems: {}; {} repeat(s); timeout {} s; isolation {}; cache {}",
        agents.join(", "),
        c.problems.join(", "),
        c.repeat,
        c.timeout_s,
        c.isolation,
        c.cache_state
    );
    let _ = writeln!(s, "record: {}", run_dir.join(RUN_FILE).display());
    s
}

/// How many failing tests' messages are listed per trial.
const FAILURES_SHOWN: usize = 5;

fn trial_details(t: &TrialRecord, run_dir: &Path) -> String {
    let mut s = String::new();
    let verdict = if t.grade.void.is_some() {
        "VOID (grade not believed)"
    } else if t.grade.resolved {
        "resolved"
    } else {
        "not resolved"
    };
    let _ = writeln!(
        s,
        "── {}  {}/{} passed (starter {}), {verdict}{}",
        t.id,
        t.grade.passed,
        t.grade.total,
        t.grade.baseline,
        if t.agent_run.timed_out { ", TIMED OUT" } else { "" }
    );
    let exit = match t.agent_run.exit_code {
        _ if !t.agent_run.agent_started => "the agent could not start".into(),
        Some(c) => format!("exit {c}"),
        None => "no exit code (killed)".into(),
    };
    let _ = writeln!(
        s,
        "   {exit}; wall {:.1} s (agent {:.1} s, grading {:.1} s); isolation {}; cache {}{}",
        t.wall_s,
        t.agent_run.agent_s,
        t.grade.grade_s,
        t.isolation,
        t.cache_state,
        t.agent_version.as_deref().map(|v| format!("; agent {v}")).unwrap_or_default()
    );
    if let Some(e) = &t.error {
        let _ = writeln!(s, "   error: {e}");
    }
    if let Some(v) = &t.grade.void {
        let _ = writeln!(s, "   void: {v}");
    }
    for flag in &t.grade.suspicious {
        let _ = writeln!(s, "   suspicious: {flag}");
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(s, "   fixed: {}", list(&t.grade.fixed));
    let _ = writeln!(s, "   broken: {}", list(&t.grade.broken));
    let failing: Vec<_> =
        t.grade.tests.iter().filter(|r| matches!(r.outcome, Outcome::Failed | Outcome::Error)).collect();
    for r in failing.iter().take(FAILURES_SHOWN) {
        let msg = r.message.as_deref().and_then(|m| m.lines().next()).unwrap_or("");
        let _ = writeln!(
            s,
            "   failing: {} {}",
            r.name,
            if msg.is_empty() { String::new() } else { format!("— {}", clip(msg, 100)) }
        );
    }
    if failing.len() > FAILURES_SHOWN {
        let _ = writeln!(s, "   … and {} more failing test(s)", failing.len() - FAILURES_SHOWN);
    }
    let _ = writeln!(s, "   server: {}", server_line(t));
    if !t.telemetry.missing.is_empty() {
        let _ = writeln!(s, "   telemetry missing: {}", t.telemetry.missing.join("; "));
    }
    let p = |rel: &str| run_dir.join(rel).display().to_string();
    let _ = writeln!(s, "   logs: {}  {}", p(&t.paths.stdout), p(&t.paths.stderr));
    let _ = writeln!(s, "   diff: {}  junit: {}", p(&t.paths.diff), p(&t.paths.junit));
    s
}

fn server_line(t: &TrialRecord) -> String {
    let Some(sv) = &t.telemetry.server else {
        return if t.telemetry.requests.is_empty() {
            NO_SERVER.into()
        } else {
            format!("{} request(s); no /metrics figures", t.telemetry.requests.len())
        };
    };
    let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "n/a".into());
    let mut s = format!(
        "{} request(s); prefill {} tok/s ({:.0} tokens), decode {} tok/s ({:.0} tokens); cache hit {}",
        t.telemetry.requests.len(),
        f(sv.prefill_tps),
        sv.prompt_tokens,
        f(sv.decode_tps),
        sv.predicted_tokens,
        sv.cache_hit_ratio.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    if let Some(tm) = &t.telemetry.timing {
        let _ = write!(
            s,
            "; waiting on the server {:.1} s, agent's own time {:.1} s; {} token(s) prefilled again",
            tm.server_wait_s, tm.agent_own_s, tm.reprefilled_tokens
        );
        if let Some(n) = tm.conversations.filter(|&n| n > 1) {
            let _ = write!(s, "; {n} conversations");
        }
    }
    s
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}
