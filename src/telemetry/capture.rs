//! Reading a response as it passes through the proxy, without holding it back: the moments of
//! the first and last tokens of a stream and how many events carried them, the server's
//! `timings` / `usage` (or Ollama's native `prompt_eval_count`… in nanoseconds) from the final
//! event or the JSON body, and the slot that served it (`__verbose.id_slot`, when the request
//! asked for `verbose`). Streams are SSE (`text/event-stream`) or, from Ollama's native API,
//! one JSON object per line (`application/x-ndjson`).

use std::time::Instant;

use serde_json::Value;

use super::answer::AnswerReader;
use crate::store::Answer;

/// Non-streamed bodies are kept (as a copy) up to this size to read their `timings`.
const BODY_CAP: usize = 32 << 20;

/// What a response said about its own cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub first_token: Option<Instant>,
    pub last_token: Option<Instant>,
    /// Stream events that carried generated text (about one token each).
    pub token_events: u32,
    /// Ollama's `load_duration`, in milliseconds.
    pub load_ms: Option<f64>,
    pub prompt_n: Option<u64>,
    pub cache_n: Option<u64>,
    pub prompt_ms: Option<f64>,
    pub predicted_n: Option<u64>,
    pub predicted_ms: Option<f64>,
    /// The `error.message` of an error body or error event.
    pub error: Option<String>,
    /// The slot that served the request: `__verbose.id_slot`, on a plain answer's top level or
    /// on a stream's `finish_reason` event (llama-server's partial events say -1: not told).
    pub slot: Option<u32>,
    /// What was answered, when the capture was asked to read it ([`Capture::reading_answer`]).
    pub answer: Option<Answer>,
}

/// Watches one response body, chunk by chunk.
#[derive(Debug)]
pub struct Capture {
    sse: bool,
    /// Ollama's native stream: each line a JSON object, no `data:` prefix.
    ndjson: bool,
    /// SSE: the unfinished line; JSON: the body so far.
    buf: Vec<u8>,
    truncated: bool,
    observed: Observed,
    timings: Option<Value>,
    /// Ollama's native final object (`"done": true`), with its counts and durations.
    native: Option<Value>,
    /// Usage objects in arrival order (Anthropic splits them over two events).
    usage: Vec<Value>,
    /// The stream's closing event went by (`[DONE]`, `message_stop`, `response.completed`).
    ended: bool,
    /// Reads the answer's text and tool calls too (for the transcript).
    answer: Option<AnswerReader>,
    /// Reads only the OpenAI API's own `usage`, not `timings` or Ollama's durations.
    openai_only: bool,
}

impl Capture {
    pub fn new(content_type: Option<&str>) -> Capture {
        let ndjson = content_type.is_some_and(|c| c.contains("application/x-ndjson"));
        let sse = ndjson || content_type.is_some_and(|c| c.contains("text/event-stream"));
        Capture {
            sse,
            ndjson,
            buf: Vec::new(),
            truncated: false,
            observed: Observed::default(),
            timings: None,
            native: None,
            usage: vec![],
            ended: false,
            answer: None,
            openai_only: false,
        }
    }

    /// Reads only what the OpenAI API defines (`usage`), never a server's own fields.
    pub fn openai_only(mut self) -> Capture {
        self.openai_only = true;
        self
    }

    /// Also reads what was answered (text, reasoning, tool calls) into [`Observed::answer`].
    pub fn reading_answer(mut self) -> Capture {
        self.answer = Some(AnswerReader::default());
        self
    }

    pub fn is_stream(&self) -> bool {
        self.sse
    }

    /// Whether a stream's closing event has passed: a client that hangs up after it got
    /// the whole answer.
    pub fn saw_end(&self) -> bool {
        self.ended
    }

    pub fn feed(&mut self, chunk: &[u8], now: Instant) {
        if !self.sse {
            if self.buf.len() + chunk.len() <= BODY_CAP {
                self.buf.extend_from_slice(chunk);
            } else {
                self.truncated = true;
            }
            return;
        }
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.buf.is_empty() {
                self.line(&rest[..nl], now);
            } else {
                self.buf.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line, now);
            }
            rest = &rest[nl + 1..];
        }
        self.buf.extend_from_slice(rest);
    }

    fn line(&mut self, line: &[u8], now: Instant) {
        let data = if self.ndjson {
            line
        } else {
            match line.strip_prefix(b"data:") {
                Some(d) => d,
                None => return,
            }
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.ended = true;
            return;
        }
        if data.is_empty() {
            return;
        }
        if contains(data, b"\"message_stop\"") || contains(data, b"\"response.completed\"") {
            self.ended = true;
        }
        // Every event is parsed: each one that carries text counts towards the decode rate.
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if is_token(&event) {
            self.observed.first_token.get_or_insert(now);
            self.observed.last_token = Some(now);
            self.observed.token_events += 1;
        }
        if self.ndjson && event.get("done").and_then(Value::as_bool) == Some(true) {
            self.ended = true;
        }
        if let Some(a) = &mut self.answer {
            a.event(&event);
        }
        self.absorb(&event);
    }

    fn absorb(&mut self, v: &Value) {
        let response = v.get("response");
        let own = !self.openai_only;
        if let Some(t) = v.get("timings").or_else(|| response.and_then(|r| r.get("timings"))).filter(|_| own) {
            if t.is_object() {
                self.timings = Some(t.clone());
            }
        }
        let usage =
            v.get("usage").or_else(|| response.and_then(|r| r.get("usage"))).or_else(|| v.pointer("/message/usage"));
        if let Some(u) = usage.filter(|u| u.is_object()) {
            self.usage.push(u.clone());
        }
        if own
            && v.get("done").and_then(Value::as_bool) == Some(true)
            && v.get("eval_count").is_some_and(Value::is_number)
        {
            self.native = Some(v.clone());
        }
        if let Some(slot) = v.pointer("/__verbose/id_slot").and_then(Value::as_u64).filter(|_| own) {
            self.observed.slot = u32::try_from(slot).ok();
        }
        if let Some(e) = v.get("error") {
            let msg = e.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| e.to_string());
            self.observed.error = Some(msg.chars().take(200).collect());
        }
    }

    pub fn finish(mut self) -> Observed {
        if !self.sse {
            if !self.truncated {
                if let Ok(v) = serde_json::from_slice::<Value>(&self.buf) {
                    if let Some(a) = &mut self.answer {
                        a.body(&v);
                    }
                    self.absorb(&v);
                }
            }
        } else if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, Instant::now());
        }
        let mut o = self.observed;
        o.answer = self.answer.take().map(AnswerReader::finish_answer);
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        if let Some(t) = &self.timings {
            o.prompt_n = num(t, "prompt_n").map(|x| x as u64);
            o.cache_n = num(t, "cache_n").map(|x| x as u64);
            o.prompt_ms = num(t, "prompt_ms");
            o.predicted_n = num(t, "predicted_n").map(|x| x as u64);
            o.predicted_ms = num(t, "predicted_ms");
        }
        // Ollama's native answer: durations in nanoseconds, a zero one left out (`omitempty`).
        // Its prompt count includes the cached tokens, which it never counts apart.
        if let Some(n) = &self.native {
            let ms = |k: &str| num(n, k).filter(|&x| x > 0.0).map(|x| x / 1e6);
            o.prompt_n = o.prompt_n.or(num(n, "prompt_eval_count").map(|x| x as u64));
            o.prompt_ms = o.prompt_ms.or(ms("prompt_eval_duration"));
            o.predicted_n = o.predicted_n.or(num(n, "eval_count").map(|x| x as u64));
            o.predicted_ms = o.predicted_ms.or(ms("eval_duration"));
            o.load_ms = ms("load_duration");
        }
        // `usage` fills what `timings` lacks (Anthropic `/v1/messages` never has timings).
        let mut input: Option<f64> = None; // Anthropic / Responses: prompt tokens
        let mut cached: Option<f64> = None;
        let mut total_prompt: Option<f64> = None; // OpenAI chat: prompt tokens, cached included
        let mut output: Option<f64> = None;
        for u in &self.usage {
            if let Some(x) = num(u, "prompt_tokens") {
                total_prompt = Some(x);
            }
            if let Some(x) = num(u, "input_tokens") {
                input = Some(x);
            }
            if let Some(x) = u
                .pointer("/prompt_tokens_details/cached_tokens")
                .or_else(|| u.pointer("/input_tokens_details/cached_tokens"))
                .or_else(|| u.get("cache_read_input_tokens"))
                .and_then(Value::as_f64)
            {
                cached = Some(x);
            }
            if let Some(x) = num(u, "completion_tokens").or_else(|| num(u, "output_tokens")) {
                output = Some(x);
            }
        }
        if o.cache_n.is_none() {
            o.cache_n = cached.map(|x| x as u64);
        }
        if o.prompt_n.is_none() {
            // Anthropic's `input_tokens` already leaves the cached ones out; OpenAI's
            // `prompt_tokens` and the Responses API's `input_tokens` count them.
            let anthropic = self.usage.iter().any(|u| u.get("cache_read_input_tokens").is_some());
            let c = cached.unwrap_or(0.0);
            o.prompt_n = match (total_prompt, input) {
                (Some(t), _) => Some((t - c).max(0.0) as u64),
                (None, Some(i)) if anthropic => Some(i as u64),
                (None, Some(i)) => Some((i - c).max(0.0) as u64),
                (None, None) => None,
            };
        }
        if o.predicted_n.is_none() {
            o.predicted_n = output.map(|x| x as u64);
        }
        o
    }
}

/// Whether a stream event carries generated text (or a tool call), as opposed to the role
/// header, usage or bookkeeping events.
fn is_token(v: &Value) -> bool {
    let non_empty = |x: Option<&Value>| match x {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        return choices.iter().any(|c| {
            let d = c.get("delta");
            non_empty(d.and_then(|d| d.get("content")))
                || non_empty(d.and_then(|d| d.get("reasoning_content")))
                || non_empty(d.and_then(|d| d.get("tool_calls")))
                || non_empty(c.get("text"))
        });
    }
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        return t == "content_block_delta" || (t.starts_with("response.") && t.ends_with(".delta"));
    }
    // Ollama's native `/api/chat` and `/api/generate` streams.
    if let Some(m) = v.get("message") {
        return non_empty(m.get("content")) || non_empty(m.get("thinking")) || non_empty(m.get("tool_calls"));
    }
    // llama-server's own `/completion` stream, Ollama's `/api/generate`.
    non_empty(v.get("content")) || non_empty(v.get("response"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn feed_all(c: &mut Capture, parts: &[&str], t0: Instant) {
        for (i, p) in parts.iter().enumerate() {
            c.feed(p.as_bytes(), t0 + Duration::from_millis(i as u64 * 10));
        }
    }

    #[test]
    fn openai_stream_first_token_and_final_timings() {
        let t0 = Instant::now();
        let mut c = Capture::new(Some("text/event-stream"));
        feed_all(
            &mut c,
            &[
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"Hel",
                "lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n",
                "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{}}],\"timings\":{\"cache_n\":5,\"prompt_n\":7,\"prompt_ms\":12.5,\"predicted_n\":2,\"predicted_ms\":3.0}}\n\n",
                "data: [DONE]\n\n",
            ],
            t0,
        );
        assert!(c.saw_end());
        let o = c.finish();
        // The token split over two chunks counts when its line completes (the third chunk).
        assert_eq!(o.first_token, Some(t0 + Duration::from_millis(20)));
        assert_eq!((o.prompt_n, o.cache_n, o.predicted_n), (Some(7), Some(5), Some(2)));
        assert_eq!((o.prompt_ms, o.predicted_ms), (Some(12.5), Some(3.0)));
    }

    #[test]
    fn non_streamed_body_and_usage_fallback() {
        let mut c = Capture::new(Some("application/json"));
        c.feed(br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"#, Instant::now());
        c.feed(br#""prompt_tokens_details":{"cached_tokens":4}}}"#, Instant::now());
        let o = c.finish();
        assert_eq!((o.prompt_n, o.cache_n, o.predicted_n, o.prompt_ms), (Some(6), Some(4), Some(3), None));
        assert_eq!(o.first_token, None);
    }

    #[test]
    fn anthropic_stream_usage_split_over_events() {
        let t0 = Instant::now();
        let mut c = Capture::new(Some("text/event-stream"));
        feed_all(
            &mut c,
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":20,\"output_tokens\":0}}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\"}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n",
            ],
            t0,
        );
        let o = c.finish();
        assert_eq!(o.first_token, Some(t0 + Duration::from_millis(20)));
        assert_eq!((o.prompt_n, o.cache_n, o.predicted_n), (Some(3), Some(20), Some(9)));
    }

    #[test]
    fn the_slot_is_read_from_the_finish_event_of_a_stream() {
        let t0 = Instant::now();
        let mut c = Capture::new(Some("text/event-stream"));
        // `/v1/completions` partials carry `__verbose` too, with the slot unset (-1); the
        // `finish_reason` event's `__verbose` need not hold "timings" to be read.
        feed_all(
            &mut c,
            &[
                "data: {\"choices\":[{\"text\":\"a\"}],\"__verbose\":{\"id_slot\":-1}}\n\n",
                "data: {\"choices\":[{\"text\":\"b\"}],\"__verbose\":{\"id_slot\":-1}}\n\n",
                "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{}}],\"__verbose\":{\"id_slot\":3,\"prompt\":\"hi\"}}\n\n",
                "data: {\"choices\":[{\"text\":\"\"}],\"__verbose\":{\"id_slot\":-1}}\n\n",
                "data: [DONE]\n\n",
            ],
            t0,
        );
        assert_eq!(c.finish().slot, Some(3));
        let mut c = Capture::new(Some("text/event-stream"));
        c.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", t0);
        assert_eq!(c.finish().slot, None, "not said, not guessed");
    }

    #[test]
    fn the_slot_of_a_plain_answer_is_its_top_level_verbose_object() {
        let mut c = Capture::new(Some("application/json"));
        c.feed(
            br#"{"choices":[],"__verbose":{"id_slot":1,"timings":{"prompt_n":99}},"timings":{"prompt_n":2}}"#,
            Instant::now(),
        );
        let o = c.finish();
        assert_eq!((o.slot, o.prompt_n), (Some(1), Some(2)), "the top-level timings, not the verbose copy");
        let mut c = Capture::new(Some("application/json"));
        c.feed(br#"{"choices":[],"id_slot":1}"#, Instant::now());
        assert_eq!(c.finish().slot, None);
    }

    #[test]
    fn the_last_token_and_the_events_that_carried_text_are_counted() {
        let t0 = Instant::now();
        let mut c = Capture::new(Some("text/event-stream"));
        feed_all(
            &mut c,
            &[
                ": ping - 2026-12-02 10:00:00\n\n",
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            ],
            t0,
        );
        let o = c.finish();
        assert_eq!(o.first_token, Some(t0 + Duration::from_millis(20)));
        assert_eq!(o.last_token, Some(t0 + Duration::from_millis(40)));
        assert_eq!((o.token_events, o.prompt_n, o.predicted_n), (3, None, None), "no usage: counts unknown");
    }

    #[test]
    fn ollama_native_stream_durations_in_nanoseconds() {
        let t0 = Instant::now();
        let mut c = Capture::new(Some("application/x-ndjson"));
        feed_all(
            &mut c,
            &[
                "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
                "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
                "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\
                 \"total_duration\":90000000,\"prompt_eval_count\":26,\"prompt_eval_duration\":13000000,\
                 \"eval_count\":2,\"eval_duration\":20000000}\n",
            ],
            t0,
        );
        assert!(c.saw_end());
        let o = c.finish();
        assert_eq!((o.first_token, o.token_events), (Some(t0), 2));
        assert_eq!((o.prompt_n, o.cache_n, o.predicted_n), (Some(26), None, Some(2)), "Ollama counts no cache");
        assert_eq!((o.prompt_ms, o.predicted_ms, o.load_ms), (Some(13.0), Some(20.0), None), "zero/absent: None");
        let mut body = Capture::new(Some("application/json; charset=utf-8"));
        let recorded = std::fs::read(format!(
            "{}/tests/integration/fixtures/servers/ollama/api_chat_nonstream.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        body.feed(&recorded, t0);
        let o = body.finish();
        assert!(o.prompt_n.is_some() && o.predicted_ms.is_some(), "{o:?}");
    }

    #[test]
    fn openai_only_reads_usage_and_never_timings() {
        let mut c = Capture::new(Some("application/json")).openai_only();
        c.feed(
            br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3},"timings":{"prompt_n":2,"prompt_ms":5.0,"predicted_ms":7.0},"__verbose":{"id_slot":1}}"#,
            Instant::now(),
        );
        let o = c.finish();
        assert_eq!((o.prompt_n, o.predicted_n), (Some(10), Some(3)));
        assert_eq!((o.prompt_ms, o.predicted_ms, o.slot), (None, None, None));
    }

    #[test]
    fn error_body_message() {
        let mut c = Capture::new(Some("application/json"));
        c.feed(br#"{"error":{"code":400,"message":"context too long"}}"#, Instant::now());
        assert_eq!(c.finish().error.as_deref(), Some("context too long"));
    }
}
