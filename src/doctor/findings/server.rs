//! Checks on the server's own endpoints and flags: `/metrics`, `/slots`, slot actions, the
//! number of slots, the context size, the prompt cache.

use serde_json::Value;

use super::{prop_u64, Finding, Kind};
use crate::doctor::evidence::{Endpoint, Evidence};
use crate::doctor::facts::RunFacts;

pub(super) fn endpoints(ev: &Evidence, f: &mut Vec<Finding>) {
    let metrics_off = matches!(ev.metrics, Endpoint::Off)
        || ev.props.as_ref().and_then(|p| p.get("endpoint_metrics")).and_then(Value::as_bool) == Some(false);
    if metrics_off {
        f.push(Finding::new(
            Kind::BlindSpot,
            "metrics_endpoint",
            "/metrics is off, so fixbench cannot measure a trial's prompt, cache and decode counters".into(),
            Some("--metrics"),
        ));
    } else if let Endpoint::Failed(why) = &ev.metrics {
        f.push(Finding::new(Kind::BlindSpot, "metrics_endpoint", format!("/metrics could not be read: {why}"), None));
    } else {
        f.push(Finding::new(Kind::Ok, "metrics_endpoint", "/metrics is on".into(), None));
    }
    match &ev.slots {
        Endpoint::Off => f.push(Finding::new(
            Kind::BlindSpot,
            "slots_endpoint",
            "/slots is off, so what each slot holds cannot be seen".into(),
            Some("drop --no-slots"),
        )),
        Endpoint::Failed(why) => {
            f.push(Finding::new(Kind::BlindSpot, "slots_endpoint", format!("/slots could not be read: {why}"), None))
        }
        Endpoint::Ok(_) => f.push(Finding::new(Kind::Ok, "slots_endpoint", "/slots is on".into(), None)),
    }
    if ev.slot_actions == Some(false) {
        f.push(Finding::new(
            Kind::Note,
            "slot_save_path",
            "slot actions are off, so `fixbench run --cache-state cold` cannot erase the slots before each trial"
                .into(),
            Some("--slot-save-path DIR"),
        ));
    }
    if let Endpoint::Ok(m) = &ev.metrics {
        if let Some(d) = m.get("requests_deferred").filter(|&&d| d > 0.0) {
            f.push(Finding::new(
                Kind::Cost,
                "queue",
                format!("{d:.0} request(s) are waiting for a free slot right now"),
                Some("-np N (one slot per concurrent session)"),
            ));
        }
    }
}

pub(super) fn slots(ev: &Evidence, facts: &Option<RunFacts>, f: &mut Vec<Finding>) {
    let Some(n) = prop_u64(ev, "/total_slots") else {
        return;
    };
    // Conversations going at once within one trial, times the trials at once.
    match facts.as_ref().map(|r| r.max_conversations * r.jobs) {
        Some(m) if m > 0 && n > m => f.push(Finding::new(
            Kind::Cost,
            "slots",
            format!(
                "the server has {n} slots but the run never had more than {m} conversation(s) going at once: \
                 a follow-up turn can land on a slot that does not hold its conversation's prefix, and then the \
                 whole conversation is prefilled again (the \"two-minute wait\")"
            ),
            Some(&format!("-np {m}")),
        )),
        Some(m) if n < m => f.push(Finding::new(
            Kind::Cost,
            "slots",
            format!(
                "{m} conversations were going at once on {n} slot(s): their requests wait for a free slot, and each can evict the others' prompts"
            ),
            Some(&format!("-np {m}")),
        )),
        Some(m) if m > 0 => f.push(Finding::new(Kind::Ok, "slots", format!("{n} slot(s) for {m} concurrent conversation(s)"), None)),
        _ if n > 1 => f.push(Finding::new(
            Kind::Note,
            "slots",
            format!(
                "the server has {n} slots: right for {n} agents at once, but with one agent at a time a follow-up \
                 turn can land on a slot that does not hold its prefix and be prefilled again"
            ),
            Some("-np 1 (when one agent runs at a time)"),
        )),
        _ => f.push(Finding::new(Kind::Ok, "slots", format!("{n} slot"), None)),
    }
}

pub(super) fn context(ev: &Evidence, facts: &Option<RunFacts>, f: &mut Vec<Finding>) {
    let Some(n_ctx) = prop_u64(ev, "/default_generation_settings/n_ctx") else {
        return;
    };
    let from_metrics = match &ev.metrics {
        Endpoint::Ok(m) => m.get("n_tokens_max").map(|&x| x as u64).filter(|&x| x > 0),
        _ => None,
    };
    let (used, source) = match (facts.as_ref().and_then(|r| r.max_tokens), from_metrics) {
        (Some(u), _) => (u, "the run's longest request"),
        (None, Some(u)) => (u, "the server's largest request so far"),
        (None, None) => return,
    };
    if used as f64 > n_ctx as f64 * 0.9 {
        f.push(Finding::new(
            Kind::Cost,
            "context",
            format!(
                "{source} used {used} of the {n_ctx} tokens a slot holds: longer conversations get shifted or cut, \
                 and a shifted prompt cannot reuse its cache"
            ),
            Some(&format!("-c {} (per slot)", suggest_ctx(used * 2))),
        ));
    } else if n_ctx > 8192 && used * 4 < n_ctx {
        f.push(Finding::new(
            Kind::Cost,
            "context",
            format!(
                "each slot holds {n_ctx} tokens of KV cache but {source} used {used}: that memory could keep more \
                 of the model on the GPU (fewer -ncmoe / CPU layers) or hold more slots"
            ),
            Some(&format!(
                "-c {} (per slot; without --kv-unified, -c is split between the slots)",
                suggest_ctx(used * 2)
            )),
        ));
    } else {
        f.push(Finding::new(Kind::Ok, "context", format!("{source} used {used} of {n_ctx} tokens per slot"), None));
    }
}

/// A round context size at or above `tokens`.
fn suggest_ctx(tokens: u64) -> u64 {
    tokens.max(4096).next_power_of_two()
}

pub(super) fn prompt_cache_flag(ev: &Evidence, f: &mut Vec<Finding>) {
    let cache_prompt = ev
        .props
        .as_ref()
        .and_then(|p| p.pointer("/default_generation_settings/params/cache_prompt"))
        .and_then(Value::as_bool);
    if cache_prompt == Some(false) {
        f.push(Finding::new(
            Kind::Cost,
            "prompt_cache",
            "the prompt cache is off: every request prefills its whole prompt".into(),
            Some("drop --no-cache-prompt"),
        ));
    }
}
