//! `fixbench show RUN_ID`: the run's header (with its trials at once and each server of its
//! pool), its table, and each trial's details: tests flipped, exit, timeout, isolation, cache
//! state, server figures, the slots it used and its wait for one, the turns it prefilled again
//! after its conversation moved slot, and where its logs are.

use std::fmt::Write as _;
use std::path::Path;

use super::group::{self, NO_SERVER};
use super::slots::{self, Pool};
use crate::store::{Outcome, RunRecord, ServerUse, TrialRecord, RUN_FILE};

/// The whole `show` text; `run_dir` is where the trials' files are.
pub fn render(run: &RunRecord, run_dir: &Path) -> String {
    let mut out = header(run, run_dir);
    out.push('\n');
    out.push_str(&super::table::run_table(run));
    out.push('\n');
    let pool = Pool::of(run);
    for t in &run.trials {
        out.push_str(&trial_details(t, run, &pool, run_dir));
        out.push('\n');
    }
    out
}

/// One trial's details, as in the whole `show` text.
pub fn render_trial(run: &RunRecord, t: &TrialRecord, run_dir: &Path) -> String {
    trial_details(t, run, &Pool::of(run), run_dir)
}

fn header(run: &RunRecord, run_dir: &Path) -> String {
    let mut s = String::new();
    let took = run
        .ended_at
        .map(|e| format!(", {:.1} s", (e - run.started_at).num_milliseconds() as f64 / 1000.0))
        .unwrap_or_default();
    let status = serde_json::to_value(run.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let status = match super::runs::incomplete(run) {
        Some(why) if run.status == crate::store::RunStatus::Finished => format!("INCOMPLETE ({why})"),
        _ => status,
    };
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
                "server: {}{}{}  model {}  quant {}  slots {}  ctx/slot {}  build {}",
                sv.url,
                sv.label.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default(),
                sv.kind
                    .filter(|k| *k != crate::model::ServerKind::LlamaServer)
                    .map(|k| format!(" ({k}{})", sv.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default()))
                    .unwrap_or_default(),
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
    for u in &run.servers {
        let _ = writeln!(s, "{}", server_use(u));
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
    if let Some(j) = c.jobs {
        let _ = writeln!(s, "jobs: {j} trial(s) at once");
    }
    if let Some(p) = &run.plan {
        let own = p.own_trials().count();
        let slice = p.shard.map(|k| format!("shard {k}: {own} of ")).unwrap_or_default();
        let _ =
            writeln!(s, "plan: {slice}{} trial(s); configuration sha256 {}", p.trials.len(), short(&p.config_sha256));
    }
    if let Some(m) = &run.merged {
        s.push_str(&merged_lines(m));
    }
    let _ = writeln!(s, "record: {}", run_dir.join(RUN_FILE).display());
    s
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Where a merged run's trials came from: one line per run merged, then what is missing.
fn merged_lines(m: &crate::store::MergeRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "merged from {} run(s), {} duplicate trial(s) taken once:", m.runs.len(), m.duplicates);
    for r in &m.runs {
        let _ = writeln!(
            s,
            "  {} {} on {} ({}, {} cores): {} trial(s){}",
            r.shard.map(|k| format!("shard {k}")).unwrap_or_else(|| "whole plan".into()),
            r.run_id,
            r.host.hostname.as_deref().unwrap_or("?"),
            r.host.cpu.as_deref().unwrap_or("cpu ?"),
            r.host.cores,
            r.trials,
            match r.status {
                Some(crate::store::RunStatus::Finished) | None => String::new(),
                Some(other) => format!(
                    ", {}",
                    serde_json::to_value(other).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
                ),
            }
        );
    }
    if !m.missing.is_empty() {
        let shown: Vec<&str> = m.missing.iter().take(10).map(String::as_str).collect();
        let more = if m.missing.len() > 10 { format!(", … ({} in all)", m.missing.len()) } else { String::new() };
        let _ = writeln!(s, "  missing (no run finished them): {}{more}", shown.join(", "));
    }
    s
}

/// One server of the run's pool over the whole run: `pool server URL: 2 slot(s), 6 trial(s);
/// prompt 12,000 tokens, cached 8,000, predicted 3,000; dropped: why`.
fn server_use(u: &ServerUse) -> String {
    let tokens = |x: f64| slots::thousands(x.max(0.0).round() as u64);
    let mut s = format!(
        "pool server {}{}: {} slot(s), {} trial(s)",
        u.url,
        u.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default(),
        u.total_slots.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        u.trials
    );
    match &u.metrics {
        Some(m) => {
            let _ = write!(
                s,
                "; prompt {} tokens, cached {}, predicted {}",
                tokens(m.prompt_tokens),
                tokens(m.cached_tokens),
                tokens(m.predicted_tokens)
            );
        }
        None if u.missing.is_empty() => s.push_str("; no /metrics figures"),
        None => {
            let _ = write!(s, "; no /metrics figures: {}", u.missing.join("; "));
        }
    }
    if let Some(l) = &u.load {
        let _ = write!(
            s,
            "; load: up to {} running, {} waiting (waiting in {:.0}% of {} readings)",
            l.peak_running,
            l.peak_waiting,
            l.waiting_share * 100.0,
            l.samples
        );
    }
    if let Some(why) = &u.dropped {
        let _ = write!(s, "; dropped: {why}");
    }
    s
}

/// How many failing tests' messages are listed per trial.
const FAILURES_SHOWN: usize = 5;

fn trial_details(t: &TrialRecord, run: &RunRecord, pool: &Pool, run_dir: &Path) -> String {
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
    if let Some(h) = &t.host {
        let _ = writeln!(
            s,
            "   host: {h}{}",
            t.telemetry.server_url.as_deref().map(|u| format!("; server {u}")).unwrap_or_default()
        );
    }
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
    if let Some(line) = slot_line(t, run.servers.len() > 1) {
        let _ = writeln!(s, "   slots: {line}");
    }
    let thrash = slots::thrash(t);
    if !thrash.is_empty() {
        let _ = writeln!(
            s,
            "   slot thrash: {}; fix: {}",
            slots::sentence("its", &thrash),
            slots::thrash_fix(pool, &thrash)
        );
    }
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
    let n = |field: &str, v: f64| if sv.knows(field) { format!("{v:.0}") } else { "? (unknown)".into() };
    let mut s = format!(
        "{} request(s); prefill {} tok/s ({} tokens), decode {} tok/s ({} tokens); cache hit {}",
        t.telemetry.requests.len(),
        f(sv.prefill_tps),
        n("prompt_tokens", sv.prompt_tokens),
        f(sv.decode_tps),
        n("predicted_tokens", sv.predicted_tokens),
        sv.cache_hit_ratio.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    if let Some(tm) = &t.telemetry.timing {
        let again = match (tm.reprefilled_tokens, tm.reprefill_unknown) {
            (n, 0) => format!("{n} token(s) prefilled again"),
            (0, k) => format!("tokens prefilled again unknown ({k} follow-up turn(s) did not say what was cached)"),
            (n, k) => format!("{n} token(s) prefilled again, and unknown for {k} follow-up turn(s)"),
        };
        let _ = write!(
            s,
            "; waiting on the server {:.1} s, agent's own time {:.1} s; {again}",
            tm.server_wait_s, tm.agent_own_s
        );
        if let Some(n) = tm.conversations.filter(|&n| n > 1) {
            let _ = write!(s, "; {n} conversations");
        }
    }
    s
}

/// How many slots of a trial's sequence are shown before it is cut short.
const SLOTS_SHOWN: usize = 12;

/// The slots a trial's requests went to and how long they waited for one: `0→1; waited 3.2 s
/// for a slot`; `None` when its requests recorded neither (runs made before either was kept).
fn slot_line(t: &TrialRecord, pool_of_servers: bool) -> Option<String> {
    let used = slots::slots_used(t);
    let wait = slots::trial_wait(t);
    if used.is_empty() && wait.is_none() && t.telemetry.pinned_slot.is_none() {
        return None;
    }
    let mut s = match (t.telemetry.pinned_slot, used.as_slice()) {
        (Some(p), _) => format!("{p} (pinned)"),
        (None, []) => "unknown".into(),
        (None, u) => {
            let shown: Vec<String> = u.iter().take(SLOTS_SHOWN).map(|n| n.to_string()).collect();
            let more = if u.len() > SLOTS_SHOWN { "→…" } else { "" };
            format!("{}{more}", shown.join("→"))
        }
    };
    match wait {
        Some(w) => {
            let _ = write!(s, "; waited {:.1} s for a slot", w.ms / 1000.0);
            if w.recorded < w.requests {
                let _ = write!(s, " ({} of {} requests recorded it)", w.recorded, w.requests);
            }
        }
        None => s.push_str("; wait for a slot unknown"),
    }
    if let (true, Some(url)) = (pool_of_servers, &t.telemetry.server_url) {
        let _ = write!(s, "; on {url}");
    }
    Some(s)
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synth;
    use crate::store::{RequestRecord, ServerDelta, ServerInfo};

    fn req(turn: u32, slot: Option<u32>, re: u64, queue_ms: Option<f64>) -> RequestRecord {
        RequestRecord {
            offset_ms: turn as f64 * 5000.0,
            total_ms: 1000.0,
            status: 200,
            prompt_n: Some(re + 20),
            cache_n: Some(100),
            reprefilled_tokens: (turn > 0).then_some(re),
            conversation: Some(0),
            turn: Some(turn),
            slot,
            queue_ms,
            ..Default::default()
        }
    }

    fn run() -> RunRecord {
        let mut r = synth::run_record("r1", chrono::Utc::now(), &["pi".to_string()]);
        r.config.jobs = Some(4);
        r.server = Some(ServerInfo { url: "http://a:8080".into(), total_slots: Some(2), ..Default::default() });
        r.servers = vec![ServerUse {
            url: "http://a:8080".into(),
            total_slots: Some(2),
            trials: 2,
            metrics: Some(ServerDelta {
                prompt_tokens: 12_000.0,
                cached_tokens: 8_000.0,
                predicted_tokens: 3_000.0,
                ..Default::default()
            }),
            dropped: Some("stopped answering: connection refused".into()),
            load: Some(crate::store::ServerLoad {
                samples: 40,
                interval_ms: 500,
                peak_running: 2.0,
                peak_waiting: 1.0,
                waiting_share: 0.25,
                ..Default::default()
            }),
            ..Default::default()
        }];
        let mut moved = synth::trial("expr_calc", "pi", 0, 11, 15, 11);
        moved.telemetry.requests =
            vec![req(0, Some(0), 0, Some(200.0)), req(1, Some(1), 2104, Some(3000.0)), req(2, Some(1), 0, None)];
        let old = synth::trial("expr_calc", "pi", 1, 11, 15, 11);
        r.trials = vec![moved, old];
        r
    }

    #[test]
    fn jobs_the_pool_slots_waits_and_thrash_are_shown_when_recorded() {
        let text = render(&run(), Path::new("/r"));
        assert!(text.contains("\njobs: 4 trial(s) at once\n"), "{text}");
        assert!(
            text.contains(
                "\npool server http://a:8080: 2 slot(s), 2 trial(s); prompt 12,000 tokens, cached 8,000, predicted \
                 3,000; load: up to 2 running, 1 waiting (waiting in 25% of 40 readings); dropped: stopped \
                 answering: connection refused\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n   slots: 0→1; waited 3.2 s for a slot (2 of 3 requests recorded it)\n"), "{text}");
        assert!(
            text.contains(
                "\n   slot thrash: its conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens; fix: \
                 -np ≥ --jobs (--jobs 4 with -np 2"
            ),
            "{text}"
        );
        // The trial that recorded neither gets no slot lines; nothing is shown as zero.
        let old = text.split("── expr_calc/pi/1 ").nth(1).unwrap();
        assert!(!old.contains("slots:") && !old.contains("slot thrash"), "{old}");
    }

    #[test]
    fn an_unknown_wait_is_said_so() {
        let mut t = synth::trial("expr_calc", "pi", 0, 11, 15, 11);
        t.telemetry.requests = vec![req(0, Some(3), 0, None)];
        assert_eq!(slot_line(&t, false).as_deref(), Some("3; wait for a slot unknown"));
        t.telemetry.pinned_slot = Some(3);
        t.telemetry.server_url = Some("http://b:8080".into());
        assert_eq!(slot_line(&t, true).as_deref(), Some("3 (pinned); wait for a slot unknown; on http://b:8080"));
    }
}
