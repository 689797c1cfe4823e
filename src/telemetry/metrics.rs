//! `/metrics`: Prometheus text, the counters fixbench reads, and per-trial deltas with rates
//! derived from the counters (the server's own rate gauges reset at every scrape).

use std::collections::BTreeMap;

use crate::store::ServerDelta;

use super::client::{Reply, Server};

/// Every sample of a scrape, by metric name without the `llamacpp:` prefix (labels dropped;
/// llama-server exports no labelled series).
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name_part, rest) = match line.find([' ', '{']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let rest = match rest.strip_prefix('{') {
            Some(r) => match r.find('}') {
                Some(end) => &r[end + 1..],
                None => continue,
            },
            None => rest,
        };
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let name = name_part.strip_prefix("llamacpp:").unwrap_or(name_part);
        out.insert(name.to_string(), value);
    }
    out
}

/// The counters a trial's delta is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub prompt_tokens: f64,
    pub cached_tokens: f64,
    pub prompt_seconds: f64,
    pub predicted_tokens: f64,
    pub predicted_seconds: f64,
    pub n_decode: f64,
    /// `Process-Start-Time-Unix`: not a time, but it changes when the server restarts.
    pub process_start: Option<String>,
}

impl Counters {
    pub fn from_text(text: &str, process_start: Option<String>) -> Result<Counters, String> {
        let m = parse(text);
        let get = |name: &str| m.get(name).copied().ok_or_else(|| format!("/metrics has no `llamacpp:{name}` counter"));
        Ok(Counters {
            prompt_tokens: get("prompt_tokens_total")?,
            // Older servers lack the cached-token counter; say so rather than report zero.
            cached_tokens: get("prompt_tokens_cached_total")?,
            prompt_seconds: get("prompt_seconds_total")?,
            predicted_tokens: get("tokens_predicted_total")?,
            predicted_seconds: get("tokens_predicted_seconds_total")?,
            n_decode: get("n_decode_total")?,
            process_start,
        })
    }
}

/// Scrapes `/metrics`; the error is a sentence naming the fix.
pub fn scrape(server: &Server) -> Result<Counters, String> {
    let reply = server.get("/metrics");
    match &reply {
        Reply::Ok { status: 501, .. } => {
            return Err("/metrics is off on this server: start llama-server with --metrics".into())
        }
        Reply::Ok { status: 401, .. } => return Err("/metrics wants the server's API key: set LLAMA_API_KEY".into()),
        _ => {}
    }
    let body = reply.ok_body("/metrics")?;
    Counters::from_text(body, reply.header("Process-Start-Time-Unix").map(str::to_string))
}

/// `after - before`, with rates derived from the counters; an error when the server restarted
/// in between (its counters start again from zero).
pub fn delta(before: &Counters, after: &Counters) -> Result<ServerDelta, String> {
    let restarted = match (&before.process_start, &after.process_start) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    };
    let went_back = [
        (before.prompt_tokens, after.prompt_tokens),
        (before.cached_tokens, after.cached_tokens),
        (before.predicted_tokens, after.predicted_tokens),
        (before.n_decode, after.n_decode),
    ]
    .iter()
    .any(|(b, a)| a < b);
    if restarted || went_back {
        return Err(
            "the server restarted during the trial (its counters started again): counter deltas are unknown".into()
        );
    }
    let mut d = ServerDelta {
        prompt_tokens: after.prompt_tokens - before.prompt_tokens,
        cached_tokens: after.cached_tokens - before.cached_tokens,
        prompt_seconds: after.prompt_seconds - before.prompt_seconds,
        predicted_tokens: after.predicted_tokens - before.predicted_tokens,
        predicted_seconds: after.predicted_seconds - before.predicted_seconds,
        n_decode: after.n_decode - before.n_decode,
        ..Default::default()
    };
    with_rates(&mut d);
    Ok(d)
}

/// Fills the rates a delta's counts and times give: prefill and decode tokens per second and
/// the share of prompt tokens that came from the cache.
pub fn with_rates(d: &mut ServerDelta) {
    d.prefill_tps = rate(d.prompt_tokens, d.prompt_seconds);
    d.decode_tps = rate(d.predicted_tokens, d.predicted_seconds);
    let seen = d.prompt_tokens + d.cached_tokens;
    d.cache_hit_ratio = (seen > 0.0).then(|| d.cached_tokens / seen);
}

fn rate(tokens: f64, seconds: f64) -> Option<f64> {
    (tokens > 0.0 && seconds > 0.0).then(|| tokens / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from a live SmolLM2 server.
    const SAMPLE: &str = "\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 296
llamacpp:prompt_tokens_cached_total 295
llamacpp:prompt_seconds_total 0.5
llamacpp:tokens_predicted_total 64
llamacpp:tokens_predicted_seconds_total 0.25
llamacpp:n_decode_total 70
# TYPE llamacpp:prompt_tokens_seconds gauge
llamacpp:prompt_tokens_seconds 592
llamacpp:requests_processing 0
";

    #[test]
    fn parses_counters_and_gauges() {
        let m = parse(SAMPLE);
        assert_eq!(m["prompt_tokens_total"], 296.0);
        assert_eq!(m["requests_processing"], 0.0);
        assert_eq!(parse("x{a=\"b\"} 3.5 1700000000\n")["x"], 3.5);
        assert!(parse("garbage\n# comment 1\n").is_empty());
    }

    #[test]
    fn delta_derives_rates_from_counters() {
        let before = Counters::from_text(SAMPLE, None).unwrap();
        let after = Counters {
            prompt_tokens: 396.0,
            cached_tokens: 395.0,
            prompt_seconds: 1.0,
            predicted_tokens: 164.0,
            predicted_seconds: 1.25,
            n_decode: 171.0,
            process_start: None,
        };
        let d = delta(&before, &after).unwrap();
        assert_eq!(d.prompt_tokens, 100.0);
        assert_eq!(d.prefill_tps, Some(200.0));
        assert_eq!(d.decode_tps, Some(100.0));
        assert_eq!(d.cache_hit_ratio, Some(0.5));
    }

    #[test]
    fn nothing_happened_gives_zero_counts_and_no_rates() {
        let c = Counters::from_text(SAMPLE, None).unwrap();
        let d = delta(&c, &c).unwrap();
        assert_eq!(d.prompt_tokens, 0.0);
        assert_eq!((d.prefill_tps, d.decode_tps, d.cache_hit_ratio), (None, None, None));
    }

    #[test]
    fn a_restart_is_reported_not_subtracted() {
        let before = Counters::from_text(SAMPLE, Some("100".into())).unwrap();
        let mut after = before.clone();
        after.process_start = Some("200".into());
        assert!(delta(&before, &after).unwrap_err().contains("restarted"));
        let mut lower = before.clone();
        lower.process_start = Some("100".into());
        lower.prompt_tokens = 3.0;
        assert!(delta(&before, &lower).is_err());
    }

    #[test]
    fn a_missing_counter_is_named() {
        let err = Counters::from_text("llamacpp:prompt_tokens_total 1\n", None).unwrap_err();
        assert!(err.contains("prompt_tokens_cached_total"), "{err}");
    }
}
