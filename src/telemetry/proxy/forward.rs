//! One request through the proxy: sent on to the server as it came (less hop-by-hop headers;
//! a generation request with the proxy's [`Inject`] fields added), the answer handed back as it
//! arrives, or a 502 that says why there was none.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use serde::de::IgnoredAny;

use super::abandoned::{self, Rest};
use super::pending::Pending;
use super::recording::Recording;
use super::reply::{content_type, error_chain, no_answer, Answer, Answered};
use super::{Inject, Shared};
use crate::telemetry::capture::Capture;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let start_utc = Utc::now();
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let path = match &shared.token {
        None => path,
        Some(token) => match within(&path, token) {
            // llama-server's slot actions (erase, save, restore) would reach the neighbours'
            // slots, and write files on the server: not for an agent.
            Some(rest) if rest.starts_with("/slots") => {
                shared.forbidden.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Ok(error_response(
                    StatusCode::FORBIDDEN,
                    "fixbench proxy: a trial's agent may not use the server's slot actions (/slots)",
                ));
            }
            Some(rest) => rest,
            None => {
                shared.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Ok(error_response(
                    StatusCode::NOT_FOUND,
                    "fixbench proxy: this address serves one trial's agent, under the base URL it was given",
                ));
            }
        },
    };
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                &format!("fixbench proxy: the request body broke off: {e}"),
            ))
        }
    };

    let upstream = Upstream {
        method: parts.method.clone(),
        uri: format!("{}{path}", shared.upstream),
        headers: with_key(std::mem::take(&mut parts.headers), shared.inject.api_key.as_deref()),
        authority: shared.authority.clone(),
        body: injected(&shared.inject, &parts.method, &body),
    };
    let mut waiting = Waiting { answer: Some(Answer::spawn(upstream.send(shared.client.clone()))), pending: None };
    // Let the request go out first; it is read while the server works on it. The record and
    // the conversation tracker see the agent's own body.
    tokio::task::yield_now().await;
    waiting.pending = Some(Pending::open(&shared, start, start_utc, &parts.method, path, &body));
    let answer = waiting.answer.as_mut().expect("sent above").await;
    let answered = Instant::now();
    let mut pending = waiting.answered();

    match answer {
        Ok(resp) => {
            let (mut head, incoming) = resp.into_parts();
            pending.status = head.status.as_u16();
            pending.answered = Some(answered);
            let mut capture = Capture::new(content_type(&head.headers));
            if shared.inject.openai_only {
                capture = capture.openai_only();
            }
            if pending.transcript {
                capture = capture.reading_answer();
            }
            let mut headers = HeaderMap::new();
            copy_headers(&head.headers, &mut headers, &[]);
            head.headers = headers;
            let body = Recording::new(incoming, capture, pending);
            Ok(Response::from_parts(head, body.map_err(|e| Box::new(e) as BoxError).boxed()))
        }
        Err(why) => {
            let msg = no_answer(&shared, &why);
            pending.status = StatusCode::BAD_GATEWAY.as_u16();
            pending.finish(Capture::new(None), Some(msg.clone()));
            Ok(error_response(StatusCode::BAD_GATEWAY, &msg))
        }
    }
}

/// The agent's headers on their way to the server. With a key kept by fixbench, every request carries it: `Authorization: Bearer KEY`, in
/// place of whatever the agent sent (agents' provider settings often hold a placeholder such
/// as `none`, which a server with a key refuses), and an `x-api-key` the agent sent (Anthropic
/// style) carries it too. Without one, the agent's own headers pass unchanged.
fn with_key(mut headers: HeaderMap, key: Option<&str>) -> HeaderMap {
    let Some(key) = key else { return headers };
    let sensitive = |text: &str| {
        HeaderValue::from_str(text).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        })
    };
    if let Some(v) = sensitive(&format!("Bearer {key}")) {
        headers.insert(hyper::header::AUTHORIZATION, v);
    }
    if headers.contains_key("x-api-key") {
        if let Some(v) = sensitive(key) {
            headers.insert("x-api-key", v);
        }
    }
    headers
}

/// A request waiting for the server's answer. hyper drops it when the client hangs up: the
/// request, once counted, is then handed to `abandoned` rather than forgotten.
struct Waiting {
    answer: Option<Answer>,
    pending: Option<Pending>,
}

impl Waiting {
    /// The answer came while the client still waited.
    fn answered(mut self) -> Pending {
        self.answer = None;
        self.pending.take().expect("opened before the answer was awaited")
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let (Some(answer), Some(pending)) = (self.answer.take(), self.pending.take()) {
            abandoned::follow(pending, Rest::Answer(answer));
        }
    }
}

/// The body sent to the server. A generation request (a POST whose body is a JSON object with
/// `messages` or `prompt`) gets `inject`'s fields that the agent did not set itself, written in
/// just after its opening brace; every other byte is the agent's. A pinned slot is the one
/// exception: the trial owns that slot, so an `id_slot` of the agent's own is replaced (the
/// body is then written anew). Anything else goes as it came.
fn injected(inject: &Inject, method: &hyper::Method, body: &Bytes) -> Bytes {
    if method != hyper::Method::POST || (!inject.verbose && inject.id_slot.is_none()) {
        return body.clone();
    }
    // Only the top-level keys are read; the values are skipped, not built.
    let Ok(top) = serde_json::from_slice::<HashMap<String, IgnoredAny>>(body) else {
        return body.clone();
    };
    if !top.contains_key("messages") && !top.contains_key("prompt") {
        return body.clone();
    }
    if let (Some(n), true) = (inject.id_slot, top.contains_key("id_slot")) {
        let Ok(serde_json::Value::Object(mut o)) = serde_json::from_slice::<serde_json::Value>(body) else {
            return body.clone();
        };
        o.insert("id_slot".into(), n.into());
        if inject.verbose && !o.contains_key("verbose") {
            o.insert("verbose".into(), true.into());
        }
        return Bytes::from(serde_json::to_vec(&o).unwrap_or_else(|_| body.to_vec()));
    }
    let mut add = String::new();
    if inject.verbose && !top.contains_key("verbose") {
        add.push_str(r#""verbose":true,"#);
    }
    if let Some(n) = inject.id_slot.filter(|_| !top.contains_key("id_slot")) {
        add.push_str(&format!(r#""id_slot":{n},"#));
    }
    // Only whitespace comes before the brace of a JSON object, and the object has a key after
    // it (`messages` or `prompt`), so the added fields end with a comma.
    let Some(brace) = body.iter().position(|&b| b == b'{').filter(|_| !add.is_empty()) else {
        return body.clone();
    };
    let mut out = Vec::with_capacity(body.len() + add.len());
    out.extend_from_slice(&body[..=brace]);
    out.extend_from_slice(add.as_bytes());
    out.extend_from_slice(&body[brace + 1..]);
    Bytes::from(out)
}

/// `path` less its leading `/<token>`, or `None` when it is not under it.
fn within(path: &str, token: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?.strip_prefix(token)?;
    match rest.chars().next() {
        None => Some("/".into()),
        Some('/') => Some(rest.to_string()),
        Some('?') => Some(format!("/{rest}")),
        Some(_) => None,
    }
}

/// The request as it goes to the server.
struct Upstream {
    method: hyper::Method,
    uri: String,
    headers: HeaderMap,
    authority: HeaderValue,
    body: Bytes,
}

impl Upstream {
    fn build(&self) -> Result<Request<Full<Bytes>>, String> {
        let mut up = Request::builder().method(self.method.clone()).uri(&self.uri);
        if let Some(h) = up.headers_mut() {
            // The proxy reads the answer, so it asks for it uncompressed.
            copy_headers(&self.headers, h, &["host", "content-length", "accept-encoding"]);
            h.insert(hyper::header::HOST, self.authority.clone());
        }
        up.body(Full::new(self.body.clone())).map_err(|e| format!("bad request: {e}"))
    }

    /// Sends once, and once more when a kept-alive connection turned out closed before the
    /// server answered anything (it closes idle connections after a few seconds).
    async fn send(self, client: Client<super::Connector, Full<Bytes>>) -> Answered {
        match client.request(self.build()?).await {
            Ok(r) => Ok(r),
            Err(e) if closed_before_answer(&e) => client.request(self.build()?).await.map_err(|e| error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        }
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, also_skip: &[&str]) {
    for (k, v) in from {
        let name = k.as_str();
        if !HOP_BY_HOP.contains(&name) && !also_skip.contains(&name) {
            to.append(k.clone(), v.clone());
        }
    }
}

fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<hyper::Error>())
        .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
}

fn error_response(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": msg, "type": "unavailable_error"}});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::super::stub::{self, Shape};
    use super::super::Inject;

    const PINNED: Inject =
        Inject { verbose: true, id_slot: Some(2), llama_server: true, api_key: None, openai_only: false };

    fn echoed(inject: Inject, method: &str, path: &str, body: &str) -> String {
        let proxy = stub::proxy_with(&stub::echo_upstream(), inject);
        String::from_utf8(stub::send(&proxy, method, path, body.as_bytes())).unwrap()
    }

    #[test]
    fn a_stream_passes_through_and_is_recorded() {
        let proxy = stub::proxy_to(&stub::sse_upstream(5));
        proxy.begin(true);
        let text = stub::chat(&proxy);
        assert!(text.contains("t4") && text.ends_with("data: [DONE]\n\n"), "{text}");
        let got = proxy.end(Duration::from_secs(2));
        assert_eq!(got.records.len(), 1);
        let r = &got.records[0];
        assert_eq!((r.status, r.stream, r.error.as_deref(), r.abandoned_ms), (200, true, None, None));
        let ttft = r.ttft_ms.unwrap();
        assert!(ttft >= 15.0 && ttft + 60.0 < r.total_ms, "the first token is not held back: {r:?}");
        assert_eq!((r.prompt_n, r.cache_n, r.predicted_n), (Some(3), Some(7), Some(4)));
        assert_eq!((r.conversation, r.turn), (Some(0), Some(0)));
        assert_eq!(got.first_request.unwrap().path, "/v1/chat/completions");
    }

    #[test]
    fn a_dead_upstream_gives_502_and_a_record_saying_so() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let proxy = stub::proxy_to(&format!("http://127.0.0.1:{port}"));
        proxy.begin(true);
        let err = ureq::post(&format!("{}/chat/completions", proxy.base_url()))
            .send_json(serde_json::json!({"messages": []}))
            .unwrap_err();
        let ureq::Error::Status(502, resp) = err else { panic!("expected 502, got {err:?}") };
        assert!(resp.into_string().unwrap().contains("did not answer"));
        let got = proxy.end(Duration::from_secs(1));
        assert_eq!(got.records[0].status, 502);
        assert!(got.records[0].error.as_deref().unwrap().contains("did not answer"));
        assert_eq!(got.records[0].prompt_n, None);
        assert_eq!((got.records[0].queue_ms, got.records[0].slot), (None, None));
    }

    #[test]
    fn a_generation_request_goes_out_asking_for_verbose_and_the_pinned_slot() {
        // Written in after the opening brace; the agent's bytes (spacing, key order, a
        // "verbose" inside a message) are left as they were.
        let chat = r#"  { "messages": [{"role": "user", "content": "be \"verbose\""}], "stream":false}"#;
        let want = r#"  {"verbose":true,"id_slot":2, "messages": [{"role": "user", "content": "be \"verbose\""}], "stream":false}"#;
        assert_eq!(echoed(PINNED, "POST", "/v1/chat/completions", chat), want);
        let want = r#"  {"verbose":true, "messages": [{"role": "user", "content": "be \"verbose\""}], "stream":false}"#;
        assert_eq!(
            echoed(Inject::default(), "POST", "/v1/chat/completions", chat),
            want,
            "the default adds verbose only"
        );
        assert_eq!(
            echoed(
                Inject { verbose: false, id_slot: Some(0), ..Default::default() },
                "POST",
                "/completion",
                r#"{"prompt":"hi"}"#
            ),
            r#"{"id_slot":0,"prompt":"hi"}"#
        );
    }

    #[test]
    fn an_agents_own_verbose_is_never_overridden_and_a_pin_beats_its_id_slot() {
        let own = r#"{"messages":[],"verbose":false,"id_slot":0}"#;
        let got: serde_json::Value =
            serde_json::from_str(&echoed(PINNED, "POST", "/v1/chat/completions", own)).unwrap();
        assert_eq!(got, serde_json::json!({"messages": [], "verbose": false, "id_slot": 2}), "the trial owns slot 2");
        let unpinned = Inject { id_slot: None, ..PINNED };
        assert_eq!(echoed(unpinned, "POST", "/v1/chat/completions", own), own, "not pinned: the agent's own choice");
        let got = echoed(PINNED, "POST", "/v1/chat/completions", r#"{"messages":[],"verbose":false}"#);
        assert_eq!(got, r#"{"id_slot":2,"messages":[],"verbose":false}"#);
        let got = echoed(PINNED, "POST", "/v1/chat/completions", r#"{"verbose":null,"prompt":"x"}"#);
        assert_eq!(got, r#"{"id_slot":2,"verbose":null,"prompt":"x"}"#, "present, even as null");
    }

    #[test]
    fn other_requests_go_out_byte_for_byte() {
        for (method, path, body) in [
            ("POST", "/tokenize", r#"{ "content": "hi" }"#),
            ("POST", "/v1/chat/completions", r#"[{"messages": []}]"#),
            ("POST", "/v1/chat/completions", r#"{"input": {"messages": [], "prompt": "x"}}"#),
            ("POST", "/v1/chat/completions", "messages=1&prompt=2"),
            ("POST", "/v1/chat/completions", r#"{"messages": [] "#),
            ("PUT", "/v1/chat/completions", r#"{"messages": []}"#),
            ("GET", "/v1/models", ""),
        ] {
            assert_eq!(echoed(PINNED, method, path, body), body, "{method} {path}");
        }
        let off = Inject { verbose: false, id_slot: None, ..Default::default() };
        assert_eq!(echoed(off, "POST", "/v1/chat/completions", r#"{"messages": []}"#), r#"{"messages": []}"#);
    }

    #[test]
    fn the_tracker_and_the_first_request_keep_the_agents_own_body() {
        let proxy = stub::proxy_with(&stub::echo_upstream(), PINNED);
        proxy.begin(true);
        let first = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let second = r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"go"}]}"#;
        for body in [first, second] {
            stub::send(&proxy, "POST", "/v1/chat/completions", body.as_bytes());
        }
        let got = proxy.end(Duration::from_secs(2));
        assert_eq!(got.first_request.unwrap().body.as_ref(), first.as_bytes(), "a warm-up copies the agent's request");
        let turns: Vec<_> = got.records.iter().map(|r| (r.conversation, r.turn)).collect();
        assert_eq!(turns, [(Some(0), Some(0)), (Some(0), Some(1))]);
    }

    #[test]
    fn the_slot_the_server_names_is_recorded_from_a_stream_and_a_plain_answer() {
        let proxy = stub::proxy_to(&stub::sse_upstream_as(3, Shape { slot: Some(1), ..Default::default() }));
        proxy.begin(true);
        let text = stub::chat(&proxy);
        assert!(text.contains("__verbose"), "passed on to the agent: {text}");
        let r = &proxy.end(Duration::from_secs(2)).records[0];
        assert_eq!((r.slot, r.prompt_n), (Some(1), Some(3)), "{r:?}");

        let proxy =
            stub::proxy_to(&stub::json_upstream_as(Duration::ZERO, Shape { slot: Some(3), ..Default::default() }));
        proxy.begin(true);
        stub::chat_plain(&proxy);
        assert_eq!(proxy.end(Duration::from_secs(2)).records[0].slot, Some(3));

        // Pinned, but the server did not say: not guessed.
        for upstream in [stub::sse_upstream(2), stub::json_upstream(Duration::ZERO)] {
            let proxy = stub::proxy_with(&upstream, PINNED);
            proxy.begin(true);
            stub::chat(&proxy);
            let r = &proxy.end(Duration::from_secs(2)).records[0];
            assert_eq!(r.slot, None, "{r:?}");
        }
    }

    #[test]
    fn a_stream_waits_for_a_slot_until_its_headers_come() {
        let slow = Shape { headers_after: Duration::from_millis(300), ..Default::default() };
        let proxy = stub::proxy_to(&stub::sse_upstream_as(3, slow));
        proxy.begin(true);
        stub::chat(&proxy);
        let r = proxy.end(Duration::from_secs(2)).records.remove(0);
        let q = r.queue_ms.unwrap();
        assert!((295.0..450.0).contains(&q), "{r:?}");
        assert!(r.ttft_ms.unwrap() >= q + 15.0, "the first token came after the wait: {r:?}");

        let proxy = stub::proxy_to(&stub::sse_upstream(3));
        proxy.begin(true);
        stub::chat(&proxy);
        let r = proxy.end(Duration::from_secs(2)).records.remove(0);
        assert!(r.queue_ms.unwrap() < 100.0, "headers at once, no wait: {r:?}");
    }

    #[test]
    fn a_plain_answer_waits_for_what_prefill_and_decode_leave_over() {
        let proxy = stub::proxy_to(&stub::json_upstream(Duration::from_millis(300)));
        proxy.begin(true);
        stub::chat_plain(&proxy);
        let r = proxy.end(Duration::from_secs(2)).records.remove(0);
        // The stub's timings: prompt_ms 1.5, predicted_ms 2.5.
        let (q, ttft) = (r.queue_ms.unwrap(), r.ttft_ms.unwrap());
        assert!(r.total_ms >= 300.0 && (q - (r.total_ms - 4.0)).abs() < 1e-9, "{r:?}");
        assert!((ttft - (r.total_ms - 2.5)).abs() < 1e-9, "server-side time to the first token: {r:?}");

        // Without timings nothing is known.
        let proxy = stub::proxy_to(&stub::echo_upstream());
        proxy.begin(true);
        stub::send(&proxy, "POST", "/v1/chat/completions", br#"{"messages":[]}"#);
        let r = proxy.end(Duration::from_secs(2)).records.remove(0);
        assert_eq!((r.queue_ms, r.ttft_ms, r.slot), (None, None, None), "{r:?}");
    }

    #[test]
    fn an_error_answer_has_no_wait_and_no_slot() {
        let proxy = stub::proxy_to(&stub::error_upstream(500));
        proxy.begin(true);
        let body = serde_json::json!({"stream": true, "messages": []});
        let err = ureq::post(&format!("{}/chat/completions", proxy.base_url())).send_json(body).unwrap_err();
        assert!(matches!(err, ureq::Error::Status(500, _)), "{err:?}");
        let r = proxy.end(Duration::from_secs(2)).records.remove(0);
        assert_eq!((r.status, r.queue_ms, r.ttft_ms, r.slot), (500, None, None, None), "{r:?}");
        assert_eq!(r.error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_transcript_keeps_each_turns_new_messages_and_the_streamed_answer() {
        let proxy = stub::proxy_to(&stub::sse_upstream_as(3, stub::Shape { slot: Some(1), ..Default::default() }));
        proxy.begin(true);
        proxy.record_transcript(1 << 20);
        let url = format!("{}/chat/completions", proxy.base_url());
        let sys = serde_json::json!({"role": "system", "content": "S".repeat(100)});
        let user = serde_json::json!({"role": "user", "content": "fix it"});
        let tools = serde_json::json!([{"type": "function", "function": {"name": "bash"}}]);
        let first = serde_json::json!({"stream": true, "tools": tools, "messages": [sys, user]});
        let reply = serde_json::json!({"role": "assistant", "content": "t0t1t2"});
        let next = serde_json::json!({"role": "user", "content": "go on"});
        let second = serde_json::json!({"stream": true, "tools": tools, "messages": [sys, user, reply, next]});
        for body in [first, second] {
            ureq::post(&url).send_json(body).unwrap().into_string().unwrap();
        }
        let got = proxy.end(Duration::from_secs(2));
        let book = got.transcript.expect("recorded");
        assert_eq!((book.stats().turns, book.stats().dropped_turns), (2, 0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        book.write(&path).unwrap();
        let entries = crate::telemetry::transcript::read(&path).unwrap();
        assert_eq!(entries[0].kept, 0);
        assert_eq!(entries[0].new, [serde_json::json!({"tools": tools}), sys.clone(), user.clone()]);
        assert_eq!((entries[1].kept, entries[1].new.clone()), (3, vec![reply, next]), "only what is new is stored");
        assert_eq!((entries[1].request.conversation, entries[1].request.turn), (Some(0), Some(1)));
        for e in &entries {
            assert_eq!(e.answer.text, "t0t1t2");
            assert_eq!(e.answer.finish_reason.as_deref(), Some("stop"));
            assert_eq!(
                (e.request.prompt_n, e.request.slot),
                (Some(3), Some(1)),
                "the request's figures are in the entry: {e:?}"
            );
        }
        // Off unless asked for.
        proxy.begin(true);
        stub::chat(&proxy);
        assert!(proxy.end(Duration::from_secs(2)).transcript.is_none());
    }

    #[test]
    fn a_kept_key_replaces_the_agents_placeholder_and_nothing_is_added_without_one() {
        use super::{with_key, HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        h.insert(hyper::header::AUTHORIZATION, HeaderValue::from_static("Bearer none"));
        h.insert("x-api-key", HeaderValue::from_static("none"));
        let out = with_key(h.clone(), Some("K1"));
        assert_eq!(out[hyper::header::AUTHORIZATION], "Bearer K1");
        assert!(out[hyper::header::AUTHORIZATION].is_sensitive());
        assert_eq!(out["x-api-key"], "K1");
        let bare = with_key(HeaderMap::new(), Some("K1"));
        assert_eq!((bare[hyper::header::AUTHORIZATION].to_str().unwrap(), bare.get("x-api-key")), ("Bearer K1", None));
        assert_eq!(with_key(h.clone(), None), h, "no key kept: the agent's own headers pass");
    }
}
