//! Judging the evidence: one function per check, each adding its findings (plain data in,
//! findings out, so each check is tested without a server). `server` reads the server's own
//! endpoints, `run` a stored run's requests, `slots` the slots they went to and waited for,
//! `sandbox` this machine.

mod run;
mod sandbox;
mod server;
mod slots;
mod telemetry;

use serde::Serialize;

use crate::model::ServerKind;

use super::evidence::Evidence;
use super::facts::RunFacts;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `fixbench run` cannot work here as set up: it refuses until this is fixed.
    Blocker,
    /// It costs time now.
    Cost,
    /// fixbench cannot see something it needs.
    BlindSpot,
    /// Worth knowing; costs nothing by itself.
    Note,
    /// Checked and fine.
    Ok,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// Which check: `slots`, `context`, `reprefill`, `prompt_cache`, `queue`, `slot_thrash`,
    /// `slot_wait`, `sandbox`, …
    pub check: &'static str,
    pub message: String,
    /// The server flag, client setting or machine setup that fixes it.
    pub fix: Option<String>,
}

impl Finding {
    pub(super) fn new(kind: Kind, check: &'static str, message: String, fix: Option<&str>) -> Finding {
        Finding { kind, check, message, fix: fix.map(str::to_string) }
    }
}

/// Every check, most costly findings first.
pub fn diagnose(ev: &Evidence) -> Vec<Finding> {
    let mut f = Vec::new();
    let facts = RunFacts::of(ev.run.as_ref());
    if let Some(why) = &ev.unreachable {
        f.push(Finding::new(
            Kind::BlindSpot,
            "server",
            format!("the server could not be read ({why}): only the run's requests were examined"),
            None,
        ));
    } else if let Some(d) = &ev.other_kind {
        telemetry::live_kind(d, &mut f);
    } else if ev.props.is_some() {
        server::endpoints(ev, &mut f);
        server::slots(ev, &facts, &mut f);
        server::context(ev, &facts, &mut f);
        server::prompt_cache_flag(ev, &mut f);
    }
    if let Some(run) = &ev.run {
        telemetry::run_kind(run, &mut f);
        telemetry::gaps(run, &mut f);
        telemetry::server_load(run, &mut f);
    }
    if let Some(facts) = &facts {
        run::reprefill(facts, &mut f);
        let kind = ev.run.as_ref().map_or(ServerKind::LlamaServer, crate::store::RunRecord::server_kind);
        run::follow_ups_uncached(facts, kind, &mut f);
        if let Some(run) = &ev.run {
            slots::thrash(run, facts, &mut f);
            slots::wait(run, facts, &mut f);
        }
        // The wait estimated from time to first token, for runs whose requests did not record
        // their wait for a slot (`slots::wait` reads that where they did).
        if !ev.run.as_ref().is_some_and(|r| crate::report::slots::run_wait(r).is_some()) {
            run::queue(ev, facts, &mut f);
        }
        run::time(facts, &mut f);
    }
    sandbox::sandbox(ev, &mut f);
    f.sort_by_key(|x| x.kind);
    f
}

pub(in crate::doctor) fn prop_u64(ev: &Evidence, pointer: &str) -> Option<u64> {
    ev.props.as_ref()?.pointer(pointer)?.as_u64()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::doctor::evidence::Endpoint;
    use crate::store::{RequestRecord, RunRecord, TrialRecord};

    fn props(slots: u64, n_ctx: u64) -> Value {
        serde_json::json!({
            "total_slots": slots,
            "default_generation_settings": {"n_ctx": n_ctx, "params": {"cache_prompt": true}},
            "model_path": "/m/Qwen3-8B-Q4_K_M.gguf",
            "build_info": "b1",
        })
    }

    fn ev(props: Value, run: Option<RunRecord>) -> Evidence {
        Evidence {
            url: Some("http://127.0.0.1:8080".into()),
            unreachable: None,
            props: Some(props),
            slots: Endpoint::Ok(serde_json::json!([])),
            metrics: Endpoint::Ok(BTreeMap::new()),
            other_kind: None,
            slot_actions: Some(true),
            run,
            sandbox: None,
        }
    }

    fn req(conv: u32, turn: u32, offset: f64, prompt_n: u64, cache_n: u64, re: u64) -> RequestRecord {
        RequestRecord {
            offset_ms: offset,
            total_ms: 1000.0,
            status: 200,
            prompt_n: Some(prompt_n),
            cache_n: Some(cache_n),
            prompt_ms: Some(prompt_n as f64),
            predicted_n: Some(10),
            predicted_ms: Some(100.0),
            ttft_ms: Some(prompt_n as f64 + 5.0),
            reprefilled_tokens: (turn > 0).then_some(re),
            conversation: Some(conv),
            turn: Some(turn),
            ..Default::default()
        }
    }

    fn run_with(requests: Vec<RequestRecord>) -> RunRecord {
        use crate::report::synth;
        let mut run = synth::run_record("r1", chrono::Utc::now(), &["a".to_string()]);
        let mut t: TrialRecord = synth::trial("p", "a", 0, 0, 1, 0);
        t.telemetry.timing = Some(crate::telemetry::summary::time_split(&requests, 60.0));
        t.telemetry.requests = requests;
        run.trials.push(t);
        run
    }

    fn find<'a>(f: &'a [Finding], check: &str, kind: Kind) -> Option<&'a Finding> {
        f.iter().find(|x| x.check == check && x.kind == kind)
    }

    #[test]
    fn more_slots_than_conversations_names_np() {
        let run = run_with(vec![req(0, 0, 0.0, 100, 0, 0), req(0, 1, 2000.0, 20, 100, 0)]);
        let f = diagnose(&ev(props(4, 4096), Some(run)));
        let x = find(&f, "slots", Kind::Cost).expect("slots finding");
        assert_eq!(x.fix.as_deref(), Some("-np 1"));
        assert!(find(&f, "reprefill", Kind::Ok).is_some());
    }

    #[test]
    fn high_reprefill_share_is_a_cost() {
        // Evicted between turns: only the shared system prompt was still cached.
        let run = run_with(vec![req(0, 0, 0.0, 100, 0, 0), req(0, 1, 2000.0, 110, 10, 90)]);
        let f = diagnose(&ev(props(1, 4096), Some(run)));
        let x = find(&f, "reprefill", Kind::Cost).expect("reprefill finding");
        assert!(x.message.contains("90 of the 210"), "{}", x.message);
        assert!(find(&f, "prompt_cache", Kind::Cost).is_none());
        assert!(find(&f, "slots", Kind::Ok).is_some());
    }

    #[test]
    fn follow_ups_with_nothing_cached_point_at_the_prompt_cache() {
        let run = run_with(vec![req(0, 0, 0.0, 100, 0, 0), req(0, 1, 2000.0, 120, 0, 100)]);
        let f = diagnose(&ev(props(1, 4096), Some(run)));
        let x = find(&f, "prompt_cache", Kind::Cost).expect("prompt cache finding");
        assert!(x.message.contains("1 of the 1 follow-up") && x.message.contains("100 tokens"), "{}", x.message);
        assert!(find(&f, "reprefill", Kind::Ok).is_some(), "not blamed on eviction");
        assert_eq!(x.fix.as_deref(), Some("cache_prompt: true (client) / drop --no-cache-prompt (server)"));
        // On vLLM the cause and the fix are its own.
        let mut run = run_with(vec![req(0, 0, 0.0, 100, 0, 0), req(0, 1, 2000.0, 120, 0, 100)]);
        run.server = Some(crate::store::ServerInfo { kind: Some(ServerKind::Vllm), ..Default::default() });
        let f = diagnose(&ev(props(1, 4096), Some(run)));
        let x = find(&f, "prompt_cache", Kind::Cost).expect("prompt cache finding");
        assert_eq!(x.fix.as_deref(), Some("start vLLM with --enable-prefix-caching"), "{x:?}");
    }

    #[test]
    fn oversized_context_and_disabled_endpoints() {
        let mut e = ev(props(1, 131072), Some(run_with(vec![req(0, 0, 0.0, 1000, 0, 0)])));
        e.metrics = Endpoint::Off;
        e.slots = Endpoint::Off;
        e.slot_actions = Some(false);
        let f = diagnose(&e);
        assert_eq!(
            find(&f, "context", Kind::Cost).unwrap().fix.as_deref().map(|s| s.starts_with("-c 4096")),
            Some(true)
        );
        assert_eq!(find(&f, "metrics_endpoint", Kind::BlindSpot).unwrap().fix.as_deref(), Some("--metrics"));
        assert!(find(&f, "slots_endpoint", Kind::BlindSpot).is_some());
        assert!(find(&f, "slot_save_path", Kind::Note).is_some());
        assert_eq!(f[0].kind, Kind::Cost, "costs come first");
    }

    #[test]
    fn prompt_cache_off_in_props() {
        let mut p = props(1, 4096);
        p["default_generation_settings"]["params"]["cache_prompt"] = false.into();
        let f = diagnose(&ev(p, None));
        assert!(find(&f, "prompt_cache", Kind::Cost).is_some());
        assert!(find(&f, "slots", Kind::Ok).is_some());
    }

    #[test]
    fn queueing_from_ttft_beyond_prefill() {
        let mut a = req(0, 0, 0.0, 100, 0, 0);
        a.ttft_ms = Some(5100.0);
        a.total_ms = 6000.0;
        let f = diagnose(&ev(props(1, 4096), Some(run_with(vec![a]))));
        assert!(find(&f, "queue", Kind::Cost).unwrap().message.contains("5.0 s"));
    }

    #[test]
    fn a_recorded_wait_for_a_slot_replaces_the_estimate_from_ttft() {
        let mut a = req(0, 0, 0.0, 100, 0, 0);
        a.ttft_ms = Some(5100.0);
        a.total_ms = 6000.0;
        a.queue_ms = Some(5000.0);
        a.slot = Some(0);
        let f = diagnose(&ev(props(1, 4096), Some(run_with(vec![a]))));
        assert!(find(&f, "queue", Kind::Cost).is_none(), "{f:?}");
        // 5 s of the trial's 58 s of agent time.
        let x = find(&f, "slot_wait", Kind::Ok).expect("slot wait finding");
        assert!(x.message.starts_with("trials waited 8.6% of their agent time for a slot"), "{}", x.message);
        assert!(find(&f, "slot_thrash", Kind::Ok).is_some(), "{f:?}");
    }
}
