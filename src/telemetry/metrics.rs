//! `/metrics`: Prometheus text, the counters fixbench reads from each kind of server, and
//! per-trial deltas with rates derived from the counters (the servers' own rate gauges reset
//! at every scrape or cover a window of their own). The names are cited in `docs/servers.md`.

use std::collections::BTreeMap;

use crate::model::ServerKind;
use crate::store::ServerDelta;

use super::client::{Reply, Server};

/// Every series of a scrape summed by metric name (labels dropped: vLLM labels each series by
/// engine, SGLang by `is_streaming` and cache source, and the figures wanted are the totals).
/// A histogram's `_sum` and `_count` are series of their own; its buckets are not read.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find([' ', '{']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let rest = match rest.strip_prefix('{') {
            Some(r) => match r.rfind('}') {
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
        *out.entry(name.to_string()).or_insert(0.0) += value;
    }
    out
}

/// The counters a trial's delta is made of; `None`: this kind of server does not count it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// The counters' family: `llamacpp`, `vllm`, `sglang`.
    pub family: &'static str,
    /// Prompt tokens processed, the cached ones left out.
    pub prompt_tokens: f64,
    pub cached_tokens: f64,
    pub prompt_seconds: Option<f64>,
    pub predicted_tokens: f64,
    pub predicted_seconds: Option<f64>,
    pub n_decode: Option<f64>,
    /// A histogram's (sum in seconds, count): time to first token, time in the queue.
    pub ttft: Option<(f64, f64)>,
    pub queue: Option<(f64, f64)>,
    pub finished: Option<f64>,
    /// `Process-Start-Time-Unix`: not a time, but it changes when the server restarts.
    pub process_start: Option<String>,
}

impl Counters {
    /// llama-server's `llamacpp:` counters (every one required: an older server without the
    /// cached-token counter is said to lack it rather than reported as zero).
    pub fn from_text(text: &str, process_start: Option<String>) -> Result<Counters, String> {
        Counters::of(ServerKind::LlamaServer, text, process_start)
    }

    pub fn of(kind: ServerKind, text: &str, process_start: Option<String>) -> Result<Counters, String> {
        let m = parse(text);
        let get = |name: &str| m.get(name).copied().ok_or_else(|| format!("/metrics has no `{name}` counter"));
        let opt = |names: &[&str]| names.iter().find_map(|n| m.get(*n).copied());
        let hist = |name: &str| Some((opt(&[&format!("{name}_sum")])?, opt(&[&format!("{name}_count")])?));
        match kind {
            ServerKind::LlamaServer => Ok(Counters {
                family: "llamacpp",
                prompt_tokens: get("llamacpp:prompt_tokens_total")?,
                cached_tokens: get("llamacpp:prompt_tokens_cached_total")?,
                prompt_seconds: Some(get("llamacpp:prompt_seconds_total")?),
                predicted_tokens: get("llamacpp:tokens_predicted_total")?,
                predicted_seconds: Some(get("llamacpp:tokens_predicted_seconds_total")?),
                n_decode: Some(get("llamacpp:n_decode_total")?),
                process_start,
                ..Default::default()
            }),
            ServerKind::Vllm => {
                // vLLM's prompt tokens count the cached ones; the cached-token counter is
                // newer than the prefix-cache hits (tokens too), which were `gpu_` before 0.10.
                let all = get("vllm:prompt_tokens_total")?;
                let cached = opt(&[
                    "vllm:prompt_tokens_cached_total",
                    "vllm:prefix_cache_hits_total",
                    "vllm:gpu_prefix_cache_hits_total",
                ])
                .ok_or("/metrics has no `vllm:prefix_cache_hits_total` counter")?;
                Ok(Counters {
                    family: "vllm",
                    prompt_tokens: (all - cached).max(0.0),
                    cached_tokens: cached,
                    prompt_seconds: opt(&["vllm:request_prefill_time_seconds_sum"]),
                    predicted_tokens: get("vllm:generation_tokens_total")?,
                    predicted_seconds: opt(&["vllm:request_decode_time_seconds_sum"]),
                    n_decode: None,
                    ttft: hist("vllm:time_to_first_token_seconds"),
                    queue: hist("vllm:request_queue_time_seconds"),
                    finished: opt(&["vllm:request_success_total"]),
                    process_start,
                })
            }
            ServerKind::Sglang => {
                // SGLang's counters carry labels and get a series only once a request adds to
                // them (prometheus_client creates a labelled child on first use; the cached-token
                // counter only when a request read the cache): with any `sglang:` series on the
                // page, an absent counter has counted nothing yet.
                if !m.keys().any(|k| k.starts_with("sglang:")) {
                    return Err(
                        "/metrics has no `sglang:` series: is this SGLang, started with --enable-metrics?".into()
                    );
                }
                let counted = |name: &str| m.get(name).copied().unwrap_or(0.0);
                let all = counted("sglang:prompt_tokens_total");
                let cached = counted("sglang:cached_tokens_total");
                Ok(Counters {
                    family: "sglang",
                    prompt_tokens: (all - cached).max(0.0),
                    cached_tokens: cached,
                    // SGLang times no prefill or decode phase of its own (its TPOT histogram is
                    // a mean per request): the rates come from the requests' arrival times.
                    prompt_seconds: None,
                    predicted_tokens: counted("sglang:generation_tokens_total"),
                    predicted_seconds: None,
                    n_decode: None,
                    ttft: hist("sglang:time_to_first_token_seconds").or(Some((0.0, 0.0))),
                    queue: hist("sglang:queue_time_seconds").or(Some((0.0, 0.0))),
                    finished: Some(counted("sglang:num_requests_total")),
                    process_start,
                })
            }
            ServerKind::Ollama | ServerKind::LlamaCppPython | ServerKind::Other => Err(no_metrics(kind).into()),
        }
    }
}

/// Why a kind of server gives no counters, with what to do about it.
pub fn no_metrics(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Ollama => {
            "Ollama has no /metrics: the trial's figures are its requests' own (native /api/chat \
                               answers carry timings; its OpenAI endpoint's carry tokens only)"
        }
        ServerKind::LlamaCppPython => {
            "llama-cpp-python's server has no /metrics: the trial's figures are its \
                                       requests' own"
        }
        _ => {
            "this server's /metrics is not one fixbench reads (only llama-server's, vLLM's and SGLang's): the \
              trial's figures are its requests' own"
        }
    }
}

/// Scrapes `/metrics` of a server of the given kind; the error is a sentence naming the fix.
pub fn scrape(server: &Server, kind: ServerKind) -> Result<Counters, String> {
    if !matches!(kind, ServerKind::LlamaServer | ServerKind::Vllm | ServerKind::Sglang) {
        return Err(no_metrics(kind).into());
    }
    let reply = server.get("/metrics");
    match (&reply, kind) {
        (Reply::Ok { status: 501, .. }, ServerKind::LlamaServer) => {
            return Err("/metrics is off on this server: start llama-server with --metrics".into())
        }
        (Reply::Ok { status: 404, .. }, ServerKind::Sglang) => {
            return Err("/metrics is off on this server: start SGLang with --enable-metrics".into())
        }
        (Reply::Ok { status: 401 | 403, .. }, _) => {
            return Err("/metrics wants the server's API key: set FIXBENCH_API_KEY".into())
        }
        _ => {}
    }
    let body = reply.ok_body("/metrics")?;
    Counters::of(kind, body, reply.header("Process-Start-Time-Unix").map(str::to_string))
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
        (before.n_decode.unwrap_or(0.0), after.n_decode.unwrap_or(0.0)),
    ]
    .iter()
    .any(|(b, a)| a < b);
    if restarted || went_back {
        return Err(
            "the server restarted during the trial (its counters started again): counter deltas are unknown".into()
        );
    }
    let sub = |b: Option<f64>, a: Option<f64>| Some(a? - b?);
    let mean_ms = |b: Option<(f64, f64)>, a: Option<(f64, f64)>| {
        let (b, a) = (b?, a?);
        let n = a.1 - b.1;
        (n > 0.0).then(|| (a.0 - b.0) / n * 1000.0)
    };
    let mut d = ServerDelta {
        prompt_tokens: after.prompt_tokens - before.prompt_tokens,
        cached_tokens: after.cached_tokens - before.cached_tokens,
        prompt_seconds: sub(before.prompt_seconds, after.prompt_seconds).unwrap_or(0.0),
        predicted_tokens: after.predicted_tokens - before.predicted_tokens,
        predicted_seconds: sub(before.predicted_seconds, after.predicted_seconds).unwrap_or(0.0),
        n_decode: sub(before.n_decode, after.n_decode).unwrap_or(0.0),
        source: (after.family != "llamacpp").then(|| after.family.to_string()),
        mean_ttft_ms: mean_ms(before.ttft, after.ttft),
        mean_queue_ms: mean_ms(before.queue, after.queue),
        requests_finished: sub(before.finished, after.finished),
        unknown: [
            ("prompt_seconds", after.prompt_seconds.is_none()),
            ("predicted_seconds", after.predicted_seconds.is_none()),
            ("n_decode", after.n_decode.is_none()),
        ]
        .iter()
        .filter(|(_, unknown)| *unknown)
        .map(|(f, _)| f.to_string())
        .collect(),
        ..Default::default()
    };
    with_rates(&mut d);
    Ok(d)
}

/// What a kind's counters leave out, for `telemetry_missing` (never shown as zero).
pub fn not_counted(c: &Counters) -> Vec<String> {
    let mut out = Vec::new();
    if c.prompt_seconds.is_none() {
        out.push(format!("prefill seconds: {}'s counters time no prefill, so the prefill rate is unknown", c.family));
    }
    if c.predicted_seconds.is_none() {
        out.push(format!(
            "decode seconds: {}'s counters time no decode phase; the decode rate is the requests' own, from \
             their streams' arrival times",
            c.family
        ));
    }
    out
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
        assert_eq!(m["llamacpp:prompt_tokens_total"], 296.0);
        assert_eq!(m["llamacpp:requests_processing"], 0.0);
        assert_eq!(parse("x{a=\"b\"} 3.5 1700000000\n")["x"], 3.5);
        assert!(parse("garbage\n# comment 1\n").is_empty());
    }

    #[test]
    fn delta_derives_rates_from_counters() {
        let before = Counters::from_text(SAMPLE, None).unwrap();
        let after = Counters {
            family: "llamacpp",
            prompt_tokens: 396.0,
            cached_tokens: 395.0,
            prompt_seconds: Some(1.0),
            predicted_tokens: 164.0,
            predicted_seconds: Some(1.25),
            n_decode: Some(171.0),
            ..Default::default()
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

    fn fixture(kind: &str, file: &str) -> String {
        let p = format!("{}/tests/integration/fixtures/servers/{kind}/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn labelled_series_are_summed_by_name() {
        let m = parse("a{x=\"1\",le=\"{}\"} 2\na{x=\"2\"} 3\nb_sum 1.5\n");
        assert_eq!((m["a"], m["b_sum"]), (5.0, 1.5));
    }

    #[test]
    fn vllm_counters_from_its_recorded_metrics() {
        let text = fixture("vllm", "metrics.synthetic.txt");
        let mut c = Counters::of(ServerKind::Vllm, &text, None).unwrap();
        let m = parse(&text);
        assert_eq!(c.prompt_seconds, m.get("vllm:request_prefill_time_seconds_sum").copied());
        // The recorded scrape has no prefill histogram; the replay server's does.
        c.prompt_seconds.get_or_insert(0.0);
        let cached = m.get("vllm:prompt_tokens_cached_total").or(m.get("vllm:prefix_cache_hits_total")).unwrap();
        assert_eq!(c.cached_tokens, *cached);
        assert_eq!(c.prompt_tokens + c.cached_tokens, m["vllm:prompt_tokens_total"], "vLLM counts cached in prompt");
        assert_eq!(c.predicted_tokens, m["vllm:generation_tokens_total"]);
        assert!(c.ttft.is_some() && c.queue.is_some(), "{c:?}");
        assert_eq!(c.n_decode, None);
        // The same counters a request later: TTFT and queue means over the request between.
        let mut after = c.clone();
        after.prompt_tokens += 90.0;
        after.cached_tokens += 10.0;
        after.predicted_tokens += 20.0;
        after.ttft = c.ttft.map(|(s, n)| (s + 0.25, n + 1.0));
        after.queue = c.queue.map(|(s, n)| (s + 0.02, n + 1.0));
        after.prompt_seconds = c.prompt_seconds.map(|s| s + 0.09);
        let d = delta(&c, &after).unwrap();
        assert_eq!((d.prompt_tokens, d.cached_tokens, d.predicted_tokens), (90.0, 10.0, 20.0));
        assert!((d.mean_ttft_ms.unwrap() - 250.0).abs() < 1e-6 && (d.mean_queue_ms.unwrap() - 20.0).abs() < 1e-6);
        assert!((d.prefill_tps.unwrap() - 1000.0).abs() < 1e-6);
        assert_eq!(d.source.as_deref(), Some("vllm"));
    }

    #[test]
    fn sglang_counters_from_its_recorded_metrics_and_what_they_leave_out() {
        let text = fixture("sglang", "metrics.synthetic.txt");
        let c = Counters::of(ServerKind::Sglang, &text, None).unwrap();
        let m = parse(&text);
        assert_eq!(c.cached_tokens, m["sglang:cached_tokens_total"]);
        assert_eq!(c.prompt_tokens + c.cached_tokens, m["sglang:prompt_tokens_total"]);
        assert!(c.ttft.is_some() && c.queue.is_some(), "{c:?}");
        let gaps = not_counted(&c);
        assert!(gaps.iter().any(|g| g.starts_with("prefill seconds")) && gaps.len() == 2, "{gaps:?}");
        let d = delta(&c, &c).unwrap();
        assert_eq!((d.prefill_tps, d.decode_tps, d.mean_ttft_ms), (None, None, None), "nothing happened: no rates");
    }

    #[test]
    fn a_fresh_sglang_counts_nothing_yet_and_a_page_without_sglang_is_refused() {
        // Before its first request SGLang shows only its unlabelled gauges: the counters have
        // no series yet, which is zero, not unknown.
        let fresh = "# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{tp_rank=\"0\"} 0\n";
        let c = Counters::of(ServerKind::Sglang, fresh, None).unwrap();
        assert_eq!((c.prompt_tokens, c.cached_tokens, c.predicted_tokens, c.finished), (0.0, 0.0, 0.0, Some(0.0)));
        assert_eq!((c.ttft, c.queue), (Some((0.0, 0.0)), Some((0.0, 0.0))));
        let err = Counters::of(ServerKind::Sglang, "llamacpp:prompt_tokens_total 3\n", None).unwrap_err();
        assert!(err.contains("sglang:") && err.contains("--enable-metrics"), "{err}");
    }

    #[test]
    fn kinds_without_metrics_say_so_and_a_missing_vllm_counter_is_named() {
        for kind in [ServerKind::Ollama, ServerKind::LlamaCppPython, ServerKind::Other] {
            assert!(Counters::of(kind, "", None).unwrap_err().contains("/metrics"), "{kind}");
        }
        let err = Counters::of(ServerKind::Vllm, "vllm:prompt_tokens_total 1\n", None).unwrap_err();
        assert!(err.contains("vllm:"), "{err}");
    }
}
