//! What a trial's requests could not tell, by the server's kind, for its `telemetry_missing`:
//! each sentence names the figure, how many requests lack it, why this kind of server does
//! not give it, and the fix where there is one. Unknown figures are never shown as zero.

use crate::model::ServerKind;
use crate::store::RequestRecord;

/// The sentences for a trial's generation requests (answered, with a body that asked for
/// something to be generated: those with a conversation or any token count or timing).
pub fn of_requests(kind: ServerKind, records: &[RequestRecord]) -> Vec<String> {
    let answered: Vec<&RequestRecord> = records.iter().filter(|r| answered_generation(r)).collect();
    let n = answered.len();
    if n == 0 {
        return vec![];
    }
    let mut out = Vec::new();
    let count = |f: &dyn Fn(&RequestRecord) -> bool| answered.iter().filter(|r| f(r)).count();
    // Ollama's native answers, when the kind was named `other`: their own fields go unread.
    let native = |r: &RequestRecord| {
        kind == ServerKind::Other && (r.path.ends_with("/api/chat") || r.path.ends_with("/api/generate"))
    };
    let no_tokens_native = count(&|r| native(r) && r.prompt_n.is_none());
    if no_tokens_native > 0 {
        out.push(format!(
            "tokens unknown for {no_tokens_native} of {n} request(s): Ollama's native /api/chat and /api/generate \
             answers are read only when the server's kind is ollama, not `other` (drop --server-kind other)"
        ));
    }
    let no_tokens_stream = count(&|r| !native(r) && r.stream && r.prompt_n.is_none());
    let no_tokens_plain = count(&|r| !native(r) && !r.stream && r.prompt_n.is_none());
    if no_tokens_stream > 0 {
        out.push(format!("tokens unknown for {no_tokens_stream} of {n} request(s): {}", stream_usage_fix(kind)));
    }
    if no_tokens_plain > 0 {
        out.push(format!("tokens unknown for {no_tokens_plain} of {n} request(s): the answer carried no `usage`"));
    }
    let no_cache = count(&|r| r.prompt_n.is_some() && r.cache_n.is_none());
    if no_cache > 0 {
        out.push(format!("cached prompt tokens unknown for {no_cache} of {n} request(s): {}", cache_fix(kind)));
    }
    let no_prefill = count(&|r| r.prompt_ms.is_none());
    if no_prefill > 0 {
        out.push(format!("prefill time unknown for {no_prefill} of {n} request(s): {}", prefill_why(kind)));
    }
    let no_decode = count(&|r| r.predicted_ms.is_none() && r.last_token_ms.is_none());
    if no_decode > 0 {
        out.push(format!(
            "decode time unknown for {no_decode} of {n} request(s): {} answered whole (not streamed), so no \
             arrival times time the decode",
            kind
        ));
    }
    out
}

/// vLLM and SGLang leave `prompt_tokens_details` out of an answer when no prompt token was
/// cached, even with the flag that turns it on (both test the count as well as the flag:
/// docs/servers/sources.md §5). So once one answer of the trial carried it, the flag is on,
/// and every answer without it read 0 tokens from the cache. Other kinds are left as they are.
pub fn fill_uncached(kind: ServerKind, records: &mut [RequestRecord]) {
    if !matches!(kind, ServerKind::Vllm | ServerKind::Sglang) {
        return;
    }
    if records.iter().any(|r| r.prompt_n.is_some() && r.cache_n.is_some()) {
        for r in records.iter_mut().filter(|r| r.prompt_n.is_some() && r.cache_n.is_none()) {
            r.cache_n = Some(0);
        }
    }
}

/// A generation request the server answered (2xx): the figures of these are the ones a
/// trial's telemetry should know.
pub(crate) fn answered_generation(r: &RequestRecord) -> bool {
    (200..300).contains(&r.status) && r.method == "POST" && generation(r)
}

/// A request that generated (or asked to): the proxy placed it in a conversation, or its
/// answer said something about tokens.
fn generation(r: &RequestRecord) -> bool {
    r.conversation.is_some()
        || r.prompt_n.is_some()
        || r.predicted_n.is_some()
        || r.token_events.is_some()
        || r.path.contains("/completions")
        || r.path.ends_with("/messages")
        || r.path.ends_with("/responses")
        || r.path.ends_with("/api/chat")
        || r.path.ends_with("/api/generate")
}

fn stream_usage_fix(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::LlamaCppPython => {
            "llama-cpp-python's streamed answers carry no `usage` (its server reads no `stream_options`); the \
             decode rate counts stream events instead"
        }
        ServerKind::Vllm => {
            "the stream carried no `usage`: the agent did not ask for it (`stream_options.include_usage`); start \
             vLLM with --enable-force-include-usage"
        }
        ServerKind::Sglang => {
            "the stream carried no `usage`: the agent did not ask for it (`stream_options.include_usage`); start \
             SGLang with --stream-response-default-include-usage"
        }
        ServerKind::Ollama => {
            "the stream carried no `usage`: the agent did not ask for it (`stream_options.include_usage`), and \
             Ollama has no flag that adds it"
        }
        ServerKind::LlamaServer | ServerKind::Other => {
            "the stream carried no `usage` and no `timings`: the agent did not ask for it \
             (`stream_options.include_usage`)"
        }
    }
}

fn cache_fix(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Vllm => {
            "vLLM leaves `prompt_tokens_details` out unless started with --enable-prompt-tokens-details, and \
             with it whenever none were cached (its counters still count them for a trial that runs alone)"
        }
        ServerKind::Sglang => {
            "SGLang leaves `prompt_tokens_details` out unless started with --enable-cache-report, and with it \
             whenever none were cached (its counters still count them for a trial that runs alone)"
        }
        ServerKind::Ollama => {
            "Ollama never counts cached tokens apart: its prompt count includes them, so its prefill rate counts \
             them as prefilled"
        }
        ServerKind::LlamaCppPython => "llama-cpp-python's `usage` has no `prompt_tokens_details`",
        ServerKind::LlamaServer | ServerKind::Other => {
            "the answer's `usage` has no `prompt_tokens_details.cached_tokens`"
        }
    }
}

fn prefill_why(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Ollama => {
            "only Ollama's native /api/chat and /api/generate answers time the prefill; its OpenAI endpoint's do \
             not"
        }
        ServerKind::LlamaServer => {
            "the answer carried no `timings` (llama-server's Anthropic /v1/messages answers never have them)"
        }
        ServerKind::Other => {
            "only a server's own fields (llama-server's `timings`) time the prefill, and this server's kind is \
             unknown (`other`): the time to first token is the nearest figure"
        }
        _ => {
            "only llama-server's `timings` and Ollama's native answers time each request's prefill: the time to \
             first token is the nearest figure"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(stream: bool, prompt_n: Option<u64>, cache_n: Option<u64>, prompt_ms: Option<f64>) -> RequestRecord {
        RequestRecord {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            stream,
            prompt_n,
            cache_n,
            prompt_ms,
            predicted_ms: prompt_ms,
            last_token_ms: stream.then_some(30.0),
            conversation: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn llama_server_with_timings_lacks_nothing() {
        let all = [req(true, Some(5), Some(3), Some(2.0)), req(false, Some(5), Some(0), Some(2.0))];
        assert!(of_requests(ServerKind::LlamaServer, &all).is_empty());
    }

    #[test]
    fn each_gap_is_counted_and_explained_by_kind() {
        let streams = [req(true, None, None, None), req(true, None, None, None)];
        let g = of_requests(ServerKind::LlamaCppPython, &streams);
        assert!(g[0].starts_with("tokens unknown for 2 of 2 request(s): llama-cpp-python's"), "{g:?}");
        assert!(g.iter().any(|s| s.starts_with("prefill time unknown for 2 of 2")), "{g:?}");
        assert!(!g.iter().any(|s| s.starts_with("decode time")), "streams time the decode: {g:?}");

        let vllm = [req(false, Some(10), None, None)];
        let g = of_requests(ServerKind::Vllm, &vllm);
        assert!(g.iter().any(|s| s.contains("--enable-prompt-tokens-details")), "{g:?}");
        assert!(g.iter().any(|s| s.starts_with("decode time unknown for 1 of 1")), "{g:?}");
        let g = of_requests(ServerKind::Sglang, &vllm);
        assert!(g.iter().any(|s| s.contains("--enable-cache-report")), "{g:?}");
        let g = of_requests(ServerKind::Ollama, &vllm);
        assert!(g.iter().any(|s| s.contains("never counts cached tokens")), "{g:?}");
    }

    #[test]
    fn an_answer_with_cached_tokens_shows_the_flag_on_for_the_trial() {
        // vLLM with --enable-prompt-tokens-details: turn 1 read nothing from the cache, so its
        // answer had no details; turn 2's had them.
        let mut trial = [req(true, Some(40), None, None), req(true, Some(5), Some(36), None)];
        fill_uncached(ServerKind::Vllm, &mut trial);
        assert_eq!(trial[0].cache_n, Some(0));
        assert!(!of_requests(ServerKind::Vllm, &trial).iter().any(|s| s.starts_with("cached")));
        // No answer with details: the flag may be off; unknown, said so.
        let mut off = [req(true, Some(40), None, None), req(true, Some(41), None, None)];
        fill_uncached(ServerKind::Sglang, &mut off);
        assert_eq!((off[0].cache_n, off[1].cache_n), (None, None));
        // Ollama never counts them, whatever another answer said.
        let mut ollama = [req(false, Some(40), None, None), req(false, Some(5), Some(36), None)];
        fill_uncached(ServerKind::Ollama, &mut ollama);
        assert_eq!(ollama[0].cache_n, None);
    }

    #[test]
    fn failed_and_non_generation_requests_are_not_counted() {
        let mut failed = req(true, None, None, None);
        failed.status = 500;
        let models =
            RequestRecord { method: "GET".into(), path: "/v1/models".into(), status: 200, ..Default::default() };
        assert!(of_requests(ServerKind::Other, &[failed, models]).is_empty());
    }
}
