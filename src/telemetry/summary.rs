//! A trial's requests summed up: where the agent's time went, the re-prefilled tokens, and
//! sentences on what the requests could not tell.

use std::collections::BTreeSet;

use crate::store::{RequestRecord, ServerDelta, TimeSplit};

/// Time waiting on the server (overlapping requests counted once) vs the rest of `agent_s`.
pub fn time_split(records: &[RequestRecord], agent_s: f64) -> TimeSplit {
    // The agent waited on a request until its answer ended, or until it hung up on it.
    let mut spans: Vec<(f64, f64)> = records
        .iter()
        .map(|r| (r.offset_ms, r.offset_ms + r.abandoned_ms.map_or(r.total_ms, |a| a.min(r.total_ms))))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut wait_ms = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (s, e) in spans {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                wait_ms += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        wait_ms += ce - cs;
    }
    let server_wait_s = wait_ms / 1000.0;
    let sum = |f: fn(&RequestRecord) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = records.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / 1000.0)
    };
    let conversations: BTreeSet<u32> = records.iter().filter_map(|r| r.conversation).collect();
    TimeSplit {
        requests: records.len() as u32,
        server_wait_s,
        agent_own_s: (agent_s - server_wait_s).max(0.0),
        reprefilled_tokens: records.iter().filter_map(|r| r.reprefilled_tokens).sum(),
        reprefill_unknown: records.iter().filter(|r| reprefill_unknown(r)).count() as u32,
        conversations: Some(conversations.len() as u32),
        prompt_s: sum(|r| r.prompt_ms),
        decode_s: sum(|r| r.predicted_ms),
    }
}

/// A follow-up turn, answered, whose answer did not say what was cached (or prompted): how
/// much of it was prefilled again is unknown.
pub fn reprefill_unknown(r: &RequestRecord) -> bool {
    r.turn.is_some_and(|t| t > 0) && (200..300).contains(&r.status) && (r.cache_n.is_none() || r.prompt_n.is_none())
}

/// A trial's server figures summed from its own requests (trials overlapped, or the server
/// has no counters): prefill and decode rates from the requests' own times. A request the
/// server did not time (no `timings`) is timed by its stream: its decode is the span from its
/// first to its last token event, and its tokens are the answer's count, else the events.
pub fn from_requests(records: &[RequestRecord]) -> ServerDelta {
    let sum_n = |f: fn(&RequestRecord) -> Option<u64>| records.iter().filter_map(f).sum::<u64>() as f64;
    let sum_ms = |f: fn(&RequestRecord) -> Option<f64>| records.iter().filter_map(f).sum::<f64>() / 1000.0;
    let (mut tokens, mut seconds) = (0.0, 0.0);
    for r in records {
        match (r.predicted_ms, stream_decode(r)) {
            (Some(ms), _) => {
                tokens += r.predicted_n.unwrap_or(0) as f64;
                seconds += ms / 1000.0;
            }
            (None, Some((n, s))) => {
                tokens += n;
                seconds += s;
            }
            (None, None) => {}
        }
    }
    let ttfts: Vec<f64> = records.iter().filter(|r| r.stream).filter_map(|r| r.ttft_ms).collect();
    // A figure is unknown when some answered generation request did not say it.
    let answered: Vec<&RequestRecord> = records.iter().filter(|r| super::gaps::answered_generation(r)).collect();
    let lacks = |f: fn(&RequestRecord) -> bool| answered.iter().any(|r| f(r));
    let unknown = [
        ("prompt_tokens", lacks(|r| r.prompt_n.is_none())),
        ("cached_tokens", lacks(|r| r.cache_n.is_none())),
        ("prompt_seconds", lacks(|r| r.prompt_ms.is_none())),
        ("predicted_tokens", lacks(|r| r.predicted_n.is_none())),
        ("predicted_seconds", lacks(|r| r.predicted_ms.is_none() && stream_decode(r).is_none())),
        ("n_decode", true),
    ]
    .iter()
    .filter(|(_, u)| *u)
    .map(|(f, _)| f.to_string())
    .collect();
    let mut d = ServerDelta {
        prompt_tokens: sum_n(|r| r.prompt_n),
        cached_tokens: sum_n(|r| r.cache_n),
        prompt_seconds: sum_ms(|r| r.prompt_ms),
        predicted_tokens: sum_n(|r| r.predicted_n),
        predicted_seconds: seconds,
        n_decode: 0.0,
        from_requests: true,
        mean_ttft_ms: (!ttfts.is_empty()).then(|| ttfts.iter().sum::<f64>() / ttfts.len() as f64),
        unknown,
        ..Default::default()
    };
    super::metrics::with_rates(&mut d);
    // A rate over part of the requests is still a rate; the counts are marked unknown above.
    if !d.knows("prompt_tokens") {
        d.cache_hit_ratio = None;
    }
    d.decode_tps = (tokens > 0.0 && seconds > 0.0).then(|| tokens / seconds);
    d
}

/// A stream's decode as its client saw it: (tokens after the first, seconds from the first
/// token to the last). The tokens are the answer's count, else the events that carried text.
pub fn stream_decode(r: &RequestRecord) -> Option<(f64, f64)> {
    let (first, last) = (r.ttft_ms?, r.last_token_ms?);
    let n = r.predicted_n.map(|n| n as f64).or(r.token_events.map(f64::from))?;
    let span = (last - first) / 1000.0;
    (n > 1.0 && span > 0.0).then_some((n - 1.0, span))
}

/// Sentences on what the requests leave unknown, and on counters that the requests do not
/// account for.
pub fn request_notes(records: &[RequestRecord], unfinished: usize, server: Option<&ServerDelta>) -> Vec<String> {
    let mut notes = Vec::new();
    if unfinished > 0 {
        notes
            .push(format!("{unfinished} request(s) were still running when the agent ended: they are not in the list"));
    }
    // The agent hung up and fixbench stopped waiting before the server answered.
    let cut = records.iter().filter(|r| r.abandoned_ms.is_some() && r.status == 0).count();
    if cut > 0 {
        notes.push(format!(
            "{cut} request(s) were left by the agent and cut short before the server answered: their tokens are unknown"
        ));
    }
    let failed: Vec<&RequestRecord> =
        records.iter().filter(|r| (r.status == 0 && r.abandoned_ms.is_none()) || r.status >= 500).collect();
    if let Some(first) = failed.first() {
        notes.push(format!(
            "{} request(s) got no answer from the server ({}): their tokens are unknown",
            failed.len(),
            first.error.as_deref().unwrap_or("no reason given")
        ));
    }
    let generation = |r: &&RequestRecord| r.conversation.is_some() && r.status > 0 && r.status < 400;
    // Requests counted without timings are said by `gaps::of_requests`, per kind.
    if let Some(d) = server {
        let all_counted = records.iter().filter(generation).all(|r| r.prompt_n.is_some() && r.cache_n.is_some());
        if all_counted && failed.is_empty() && unfinished == 0 {
            let prompt: u64 = records.iter().filter_map(|r| r.prompt_n).sum();
            let cached: u64 = records.iter().filter_map(|r| r.cache_n).sum();
            if (d.prompt_tokens - prompt as f64).abs() > 0.5 || (d.cached_tokens - cached as f64).abs() > 0.5 {
                notes.push(format!(
                    "the server counted {} prompt and {} cached tokens but the proxy's requests only {prompt} and {cached}: \
                     another client is using this server, or the agent bypassed the proxy ($FIXBENCH_BASE_URL)",
                    d.prompt_tokens, d.cached_tokens
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(offset: f64, total: f64) -> RequestRecord {
        RequestRecord { offset_ms: offset, total_ms: total, status: 200, ..Default::default() }
    }

    #[test]
    fn overlapping_requests_count_once() {
        let rs = vec![req(0.0, 1000.0), req(500.0, 1000.0), req(3000.0, 500.0)];
        let t = time_split(&rs, 10.0);
        assert_eq!(t.requests, 3);
        assert!((t.server_wait_s - 2.0).abs() < 1e-9, "{}", t.server_wait_s);
        assert!((t.agent_own_s - 8.0).abs() < 1e-9);
        assert_eq!(t.prompt_s, None, "no timings: unknown, not zero");
    }

    #[test]
    fn a_request_the_agent_left_counts_as_waited_on_until_it_left() {
        let mut left = req(1000.0, 4000.0);
        left.abandoned_ms = Some(500.0);
        let t = time_split(&[req(0.0, 1000.0), left], 3.0);
        assert!((t.server_wait_s - 1.5).abs() < 1e-9, "{}", t.server_wait_s);
        assert!((t.agent_own_s - 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_request_cut_short_has_its_own_note() {
        let mut cut = req(0.0, 100.0);
        cut.status = 0;
        cut.abandoned_ms = Some(50.0);
        let notes = request_notes(&[cut.clone()], 0, None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("left by the agent and cut short"), "{notes:?}");
        cut.abandoned_ms = None;
        assert!(request_notes(&[cut], 0, None)[0].contains("got no answer from the server"));
    }

    #[test]
    fn counters_beyond_the_requests_are_noted() {
        let mut r = req(0.0, 10.0);
        r.conversation = Some(0);
        r.prompt_n = Some(10);
        r.cache_n = Some(0);
        r.prompt_ms = Some(1.0);
        let d = ServerDelta { prompt_tokens: 10.0, ..Default::default() };
        assert!(request_notes(&[r.clone()], 0, Some(&d)).is_empty());
        let d = ServerDelta { prompt_tokens: 50.0, ..Default::default() };
        assert!(request_notes(&[r], 0, Some(&d))[0].contains("another client"));
    }

    #[test]
    fn a_generation_outside_any_conversation_still_makes_its_counts_unknown() {
        // Ollama's native /api/chat read as `other`: answered, no counts, no conversation.
        let r = RequestRecord {
            method: "POST".into(),
            path: "/api/chat".into(),
            status: 200,
            stream: true,
            ttft_ms: Some(50.0),
            last_token_ms: Some(150.0),
            token_events: Some(11),
            ..Default::default()
        };
        let d = from_requests(&[r]);
        for f in ["prompt_tokens", "cached_tokens", "predicted_tokens", "prompt_seconds"] {
            assert!(!d.knows(f), "{f}: {d:?}");
        }
        assert!(d.knows("predicted_seconds") && d.decode_tps.unwrap() > 0.0, "its stream times the decode: {d:?}");
        let turn = |t: u32, cache_n: Option<u64>| RequestRecord {
            status: 200,
            turn: Some(t),
            prompt_n: Some(10),
            cache_n,
            ..Default::default()
        };
        let split = time_split(&[turn(0, None), turn(1, None), turn(2, Some(30))], 10.0);
        assert_eq!(split.reprefill_unknown, 1, "turn 1 did not say what was cached; turn 0 is no follow-up");
    }
}
