//! What the server's kind lets fixbench see: the kind of a live server that is not
//! llama-server, the kind a run was measured on, and the gaps its trials' `telemetry_missing`
//! name, counted over the run with the flags that close them.

use std::collections::BTreeMap;

use super::{Finding, Kind};
use crate::model::ServerKind;
use crate::store::RunRecord;
use crate::telemetry::kind::Detected;

/// What fixbench reads from each kind, and what it cannot.
fn reads(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::LlamaServer => "its llamacpp: counters, /props, /slots and each answer's `timings`",
        ServerKind::Vllm => {
            "its vllm: counters and histograms (tokens, prefix-cache hits, prefill and decode time, time to first \
             token, queue time) and each answer's `usage`; no slots, no per-request prefill time"
        }
        ServerKind::Sglang => {
            "its sglang: counters with --enable-metrics (tokens, cached tokens, time to first token, queue time) \
             and each answer's `usage`; no prefill or decode time of its own, no slots"
        }
        ServerKind::Ollama => {
            "no counters (Ollama has no /metrics); its native /api/chat answers' durations (prompt_eval_duration, \
             eval_duration, load_duration) and its OpenAI answers' `usage`, never cached tokens"
        }
        ServerKind::LlamaCppPython => {
            "no counters and no timings; `usage` in plain answers only (its streams carry none): a stream's tokens \
             are counted as its events"
        }
        ServerKind::Other => {
            "only what the OpenAI API defines: each answer's `usage` and the stream's arrival times (time to first \
             token, decode rate)"
        }
    }
}

pub(super) fn live_kind(d: &Detected, f: &mut Vec<Finding>) {
    let version = d.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    f.push(Finding::new(
        Kind::Note,
        "server_kind",
        format!(
            "the server is {}{version} ({}): llama-server's checks (slots, context, cache flags) do not apply; \
             fixbench reads {}",
            d.kind,
            d.evidence,
            reads(d.kind)
        ),
        None,
    ));
}

pub(super) fn run_kind(run: &RunRecord, f: &mut Vec<Finding>) {
    let Some(info) = &run.server else { return };
    let Some(kind) = info.kind.filter(|k| *k != ServerKind::LlamaServer) else { return };
    let version = info.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    let why = info.kind_evidence.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    f.push(Finding::new(
        Kind::Note,
        "server_kind",
        format!("the run was measured on {kind}{version}{why}: fixbench read {}", reads(kind)),
        None,
    ));
}

/// Each pool server's queue over the run, from its sampled gauges: requests that waited
/// mean the agents' sessions overlapped more than the server runs at once.
pub(super) fn server_load(run: &RunRecord, f: &mut Vec<Finding>) {
    let kind = run.server_kind();
    for u in &run.servers {
        let Some(l) = &u.load else { continue };
        let readings = format!("{} reading(s), every {} ms", l.samples, l.interval_ms);
        if l.peak_waiting > 0.0 {
            let want = (l.peak_running + l.peak_waiting).ceil() as u64;
            let fix = match kind {
                ServerKind::Vllm => format!("--max-num-seqs {want}"),
                ServerKind::Sglang => format!("--max-running-requests {want}"),
                _ => format!("-np {want}"),
            };
            f.push(Finding::new(
                Kind::Cost,
                "server_queue",
                format!(
                    "requests waited in the queue of {}: up to {} at once beside {} running, in {:.0}% of {readings}: \
                     the agents' sessions overlapped more than it runs at once (or run fewer trials at once, -j)",
                    u.url,
                    l.peak_waiting,
                    l.peak_running,
                    l.waiting_share * 100.0
                ),
                Some(&fix),
            ));
        } else {
            f.push(Finding::new(
                Kind::Ok,
                "server_queue",
                format!(
                    "no request waited in the queue of {}: up to {} running at once ({readings})",
                    u.url, l.peak_running
                ),
                None,
            ));
        }
    }
}

/// The run's `telemetry_missing` sentences, counted by trial (the per-trial counts inside
/// a sentence, `for 2 of 3 request(s)`, are left out so that like gaps group together).
pub(super) fn gaps(run: &RunRecord, f: &mut Vec<Finding>) {
    let counts = regex::Regex::new(r" for \d+ of \d+ request\(s\)").expect("a valid pattern");
    let flag = regex::Regex::new(r"\bwith (--[a-z0-9-]+)").expect("a valid pattern");
    let mut by_gap: BTreeMap<String, usize> = BTreeMap::new();
    for t in &run.trials {
        let mut seen = std::collections::BTreeSet::new();
        for m in &t.telemetry.missing {
            let general = counts.replace_all(m, "").into_owned();
            if seen.insert(general.clone()) {
                *by_gap.entry(general).or_default() += 1;
            }
        }
    }
    if by_gap.is_empty() {
        if !run.trials.is_empty() && run.server.is_some() {
            f.push(Finding::new(Kind::Ok, "telemetry_gaps", "every trial's telemetry is complete".into(), None));
        }
        return;
    }
    let n = run.trials.len();
    let mut gaps: Vec<(String, usize)> = by_gap.into_iter().collect();
    gaps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let fixes: Vec<String> = gaps
        .iter()
        .flat_map(|(g, _)| flag.captures_iter(g).map(|c| c[1].to_string()).collect::<Vec<_>>())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let list: Vec<String> = gaps.iter().map(|(g, k)| format!("{g} ({k} of {n} trials)")).collect();
    let fix = (!fixes.is_empty()).then(|| fixes.join(" "));
    f.push(Finding::new(
        Kind::BlindSpot,
        "telemetry_gaps",
        format!("what the trials' telemetry lacks, never shown as zero: {}", list.join("; ")),
        fix.as_deref(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ServerInfo, TrialRecord};

    fn run_with(missing: &[&[&str]], kind: ServerKind) -> RunRecord {
        let mut run = crate::report::synth::run_record("r1", chrono::Utc::now(), &["a".to_string()]);
        run.trials.clear();
        run.server = Some(ServerInfo {
            kind: Some(kind),
            version: Some("0.32.0".into()),
            kind_evidence: Some("owned_by \"vllm\" in /v1/models, confirmed by /version".into()),
            ..Default::default()
        });
        for m in missing {
            let mut t: TrialRecord = crate::report::synth::trial("p", "a", run.trials.len() as u32, 1, 1, 0);
            t.telemetry.missing = m.iter().map(|s| s.to_string()).collect();
            run.trials.push(t);
        }
        run
    }

    #[test]
    fn gaps_are_grouped_over_trials_with_the_flags_that_close_them() {
        let a = "tokens unknown for 2 of 3 request(s): the stream carried no `usage`: the agent did not ask for it \
                 (`stream_options.include_usage`); start vLLM with --enable-force-include-usage";
        let b = "tokens unknown for 1 of 4 request(s): the stream carried no `usage`: the agent did not ask for it \
                 (`stream_options.include_usage`); start vLLM with --enable-force-include-usage";
        let c = "cached prompt tokens unknown for 1 of 4 request(s): vLLM leaves `prompt_tokens_details` out unless \
                 started with --enable-prompt-tokens-details (its counters still count them)";
        let run = run_with(&[&[a], &[b, c], &[]], ServerKind::Vllm);
        let mut f = Vec::new();
        gaps(&run, &mut f);
        run_kind(&run, &mut f);
        let g = f.iter().find(|x| x.check == "telemetry_gaps").unwrap();
        assert_eq!(g.kind, Kind::BlindSpot);
        assert!(g.message.contains("(2 of 3 trials)") && g.message.contains("(1 of 3 trials)"), "{}", g.message);
        assert!(!g.message.contains("2 of 3 request(s)"), "{}", g.message);
        assert_eq!(g.fix.as_deref(), Some("--enable-force-include-usage --enable-prompt-tokens-details"));
        let k = f.iter().find(|x| x.check == "server_kind").unwrap();
        assert!(k.message.contains("vllm 0.32.0") && k.message.contains("vllm: counters"), "{}", k.message);
    }

    #[test]
    fn complete_telemetry_is_ok_and_llama_server_needs_no_kind_note() {
        let run = run_with(&[&[], &[]], ServerKind::LlamaServer);
        let mut f = Vec::new();
        gaps(&run, &mut f);
        run_kind(&run, &mut f);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].check, f[0].kind), ("telemetry_gaps", Kind::Ok));
    }

    #[test]
    fn requests_waiting_in_a_servers_queue_name_the_kinds_flag() {
        let mut run = run_with(&[], ServerKind::Vllm);
        let load = |waiting: f64| crate::store::ServerLoad {
            samples: 20,
            interval_ms: 500,
            peak_running: 2.0,
            peak_waiting: waiting,
            waiting_share: if waiting > 0.0 { 0.3 } else { 0.0 },
            ..Default::default()
        };
        run.servers =
            vec![crate::store::ServerUse { url: "http://v:8000".into(), load: Some(load(3.0)), ..Default::default() }];
        let mut f = Vec::new();
        server_load(&run, &mut f);
        assert_eq!((f[0].kind, f[0].fix.as_deref()), (Kind::Cost, Some("--max-num-seqs 5")), "{f:?}");
        assert!(f[0].message.contains("up to 3 at once beside 2 running, in 30% of 20 reading(s)"), "{}", f[0].message);
        run.servers[0].load = Some(load(0.0));
        let mut f = Vec::new();
        server_load(&run, &mut f);
        assert_eq!(f[0].kind, Kind::Ok, "{f:?}");
        // No gauges read (a kind without them): nothing said.
        run.servers[0].load = None;
        let mut f = Vec::new();
        server_load(&run, &mut f);
        assert!(f.is_empty());
    }
}
