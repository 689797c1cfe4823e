//! Checks on a stored run's requests: re-prefill between turns, follow-ups that found nothing
//! cached, queueing for a slot, where the agents' time went.

use super::{prop_u64, Finding, Kind};
use crate::doctor::evidence::Evidence;
use crate::doctor::facts::RunFacts;
use crate::model::ServerKind;

pub(super) fn reprefill(facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.reprefill_unknown > 0 && facts.follow_ups == 0 {
        f.push(Finding::new(
            Kind::BlindSpot,
            "reprefill",
            format!(
                "whether the server's cache kept each conversation between turns is unknown: none of the {} \
                 follow-up turn(s) said how many of its prompt tokens were cached (telemetry_gaps names why)",
                facts.reprefill_unknown
            ),
            None,
        ));
        return;
    }
    if facts.prefilled == 0 {
        return;
    }
    let unsaid = if facts.reprefill_unknown > 0 {
        format!(" (over the {} follow-up turns that said; {} did not)", facts.follow_ups, facts.reprefill_unknown)
    } else {
        String::new()
    };
    // Turns that found nothing cached at all are the prompt-cache check's business; what is
    // left was evicted between turns.
    let evicted = facts.reprefilled - facts.reprefilled_uncached;
    let evicted_share = evicted as f64 / facts.prefilled as f64;
    if evicted_share > 0.10 {
        let secs = facts.prefill_tps.map(|tps| evicted as f64 / tps);
        let cost = secs.map(|s| format!(", about {s:.0} s of prefill")).unwrap_or_default();
        f.push(Finding::new(
            Kind::Cost,
            "reprefill",
            format!(
                "{evicted} of the {} prompt tokens the server prefilled ({:.0}%{cost}) had already been processed by the \
                 previous turn of the same conversation: the cache lost them between turns{unsaid}",
                facts.prefilled,
                evicted_share * 100.0
            ),
            Some(&if facts.jobs > 1 {
                format!(
                    "-np ≥ --jobs ({}) so that each trial's conversation keeps a slot; else a larger --cache-ram MiB keeps evicted prompts in memory",
                    facts.jobs
                )
            } else {
                "-np 1 when one agent runs at a time; else a larger --cache-ram MiB keeps evicted prompts in memory".into()
            }),
        ));
    } else {
        let rest = if facts.reprefilled_uncached > 0 {
            format!(
                "; the other {} re-prefilled tokens are the turns that found nothing cached",
                facts.reprefilled_uncached
            )
        } else {
            String::new()
        };
        f.push(Finding::new(
            Kind::Ok,
            "reprefill",
            format!(
                "{:.1}% of prefilled tokens were lost from the cache between turns ({evicted} of {}){rest}{unsaid}",
                evicted_share * 100.0,
                facts.prefilled
            ),
            None,
        ));
    }
}

pub(super) fn follow_ups_uncached(facts: &RunFacts, kind: ServerKind, f: &mut Vec<Finding>) {
    if facts.uncached_follow_ups > 0 {
        let (why, fix) = match kind {
            ServerKind::Vllm => (
                "vLLM runs without prefix caching (--no-enable-prefix-caching)",
                "start vLLM with --enable-prefix-caching",
            ),
            ServerKind::Sglang => ("SGLang runs with --disable-radix-cache", "drop --disable-radix-cache"),
            _ => (
                "the client sends `cache_prompt: false`, or the server runs with --no-cache-prompt",
                "cache_prompt: true (client) / drop --no-cache-prompt (server)",
            ),
        };
        f.push(Finding::new(
            Kind::Cost,
            "prompt_cache",
            format!(
                "{} of the {} follow-up turns found nothing at all in the prompt cache, not even their system prompt \
                 ({} tokens prefilled again): {why}",
                facts.uncached_follow_ups, facts.follow_ups, facts.reprefilled_uncached
            ),
            Some(fix),
        ));
    }
}

pub(super) fn queue(ev: &Evidence, facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.queued_s > 1.0 && facts.queued_s > 0.1 * facts.server_wait_s {
        let n = prop_u64(ev, "/total_slots").map(|n| format!(" (the server has {n})")).unwrap_or_default();
        f.push(Finding::new(
            Kind::Cost,
            "queue",
            format!(
                "requests waited {:.1} s in all before their prefill started: more requests at once than slots{n}",
                facts.queued_s
            ),
            Some(&format!("-np {}", facts.max_requests.max(1))),
        ));
    }
}

pub(super) fn time(facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.agent_s <= 0.0 {
        return;
    }
    let pct = |x: f64| x / facts.agent_s * 100.0;
    let mut parts = Vec::new();
    if let Some(p) = facts.prompt_s {
        parts.push(format!("prefill {p:.1} s"));
    }
    if let Some(d) = facts.decode_s {
        parts.push(format!("decode {d:.1} s"));
    }
    let inner = if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) };
    f.push(Finding::new(
        Kind::Note,
        "time",
        format!(
            "over {} trial(s) the agents ran {:.1} s: {:.1} s ({:.0}%) waiting on the server{inner}, {:.1} s ({:.0}%) in \
             their own work and tools",
            facts.trials,
            facts.agent_s,
            facts.server_wait_s,
            pct(facts.server_wait_s),
            facts.agent_s - facts.server_wait_s,
            pct(facts.agent_s - facts.server_wait_s)
        ),
        None,
    ));
    if let (Some(p), Some(d)) = (facts.prompt_s, facts.decode_s) {
        if p > 2.0 * d && p > 0.3 * facts.server_wait_s {
            f.push(Finding::new(
                Kind::Cost,
                "prefill",
                format!(
                    "prefill took {p:.1} s against {d:.1} s of decoding: prompt processing is what the agents wait for"
                ),
                Some("keep the cache hitting (see above); on a GPU -fa on and a larger -ub (e.g. -ub 2048 -b 2048)"),
            ));
        }
    }
}
