//! A stored run's requests summed up for the checks: time split, prefill and re-prefill,
//! follow-up turns, the most conversations and requests going at once, queueing.

use std::collections::BTreeMap;

use crate::store::{RequestRecord, RunRecord};

/// A run's requests summed up for the checks.
#[derive(Debug, Clone, Default)]
pub(super) struct RunFacts {
    pub(super) trials: usize,
    pub(super) agent_s: f64,
    pub(super) server_wait_s: f64,
    pub(super) prompt_s: Option<f64>,
    pub(super) decode_s: Option<f64>,
    pub(super) prefilled: u64,
    pub(super) reprefilled: u64,
    pub(super) prefill_tps: Option<f64>,
    pub(super) follow_ups: usize,
    /// Follow-up turns that found nothing cached, and the tokens they re-prefilled.
    pub(super) uncached_follow_ups: usize,
    pub(super) reprefilled_uncached: u64,
    /// Follow-up turns whose answers did not say what was cached: their re-prefill is unknown.
    pub(super) reprefill_unknown: u64,
    pub(super) max_tokens: Option<u64>,
    /// Most conversations whose first-to-last request spans overlapped within one trial.
    pub(super) max_conversations: u64,
    /// Most requests running at once within one trial.
    pub(super) max_requests: u64,
    pub(super) queued_s: f64,
    /// Trials that ran at once (`--jobs`; 1 in runs made before it existed).
    pub(super) jobs: u64,
}

impl RunFacts {
    pub(super) fn of(run: Option<&RunRecord>) -> Option<RunFacts> {
        let run = run?;
        let mut r = RunFacts { jobs: run.config.jobs.unwrap_or(1).max(1) as u64, ..Default::default() };
        let (mut p_tokens, mut p_ms) = (0u64, 0.0f64);
        for t in run.trials.iter().filter(|t| !t.telemetry.requests.is_empty() || t.telemetry.timing.is_some()) {
            r.trials += 1;
            if let Some(ts) = &t.telemetry.timing {
                r.agent_s += ts.server_wait_s + ts.agent_own_s;
                r.server_wait_s += ts.server_wait_s;
                add(&mut r.prompt_s, ts.prompt_s);
                add(&mut r.decode_s, ts.decode_s);
            }
            for q in &t.telemetry.requests {
                r.prefilled += q.prompt_n.unwrap_or(0);
                r.reprefilled += q.reprefilled_tokens.unwrap_or(0);
                if let (Some(n), Some(ms)) = (q.prompt_n, q.prompt_ms) {
                    p_tokens += n;
                    p_ms += ms;
                }
                if crate::telemetry::summary::reprefill_unknown(q) {
                    r.reprefill_unknown += 1;
                }
                if q.turn.is_some_and(|t| t > 0) && q.cache_n.is_some() {
                    r.follow_ups += 1;
                    if q.cache_n == Some(0) {
                        r.uncached_follow_ups += 1;
                        r.reprefilled_uncached += q.reprefilled_tokens.unwrap_or(0);
                    }
                }
                let used = q.prompt_n.unwrap_or(0) + q.cache_n.unwrap_or(0) + q.predicted_n.unwrap_or(0);
                if used > 0 {
                    r.max_tokens = Some(r.max_tokens.unwrap_or(0).max(used));
                }
                if let (Some(ttft), Some(pms)) = (q.ttft_ms, q.prompt_ms) {
                    r.queued_s += ((ttft - pms) / 1000.0).max(0.0);
                }
            }
            r.max_conversations = r.max_conversations.max(max_overlap(&conversation_spans(&t.telemetry.requests)));
            let spans: Vec<(f64, f64)> =
                t.telemetry.requests.iter().map(|q| (q.offset_ms, q.offset_ms + q.total_ms)).collect();
            r.max_requests = r.max_requests.max(max_overlap(&spans));
        }
        if r.trials == 0 {
            return None;
        }
        r.prefill_tps = (p_tokens > 0 && p_ms > 0.0).then(|| p_tokens as f64 / (p_ms / 1000.0));
        Some(r)
    }
}

fn add(acc: &mut Option<f64>, x: Option<f64>) {
    if let Some(x) = x {
        *acc = Some(acc.unwrap_or(0.0) + x);
    }
}

fn conversation_spans(reqs: &[RequestRecord]) -> Vec<(f64, f64)> {
    let mut spans: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for q in reqs {
        let Some(c) = q.conversation else { continue };
        let (s, e) = (q.offset_ms, q.offset_ms + q.total_ms);
        let span = spans.entry(c).or_insert((s, e));
        span.0 = span.0.min(s);
        span.1 = span.1.max(e);
    }
    spans.into_values().collect()
}

/// The most spans covering one instant.
pub(super) fn max_overlap(spans: &[(f64, f64)]) -> u64 {
    let mut edges: Vec<(f64, i64)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // Ends sort before starts at the same instant: back-to-back requests do not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut best) = (0i64, 0i64);
    for (_, d) in edges {
        cur += d;
        best = best.max(cur);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts() {
        assert_eq!(max_overlap(&[(0.0, 1.0), (1.0, 2.0)]), 1);
        assert_eq!(max_overlap(&[(0.0, 3.0), (1.0, 2.0), (1.5, 4.0)]), 3);
    }
}
