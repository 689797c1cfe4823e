//! One request through the proxy: sent on to the server as it came (less hop-by-hop headers),
//! the answer handed back as it arrives, or a 502 that says why there was none.

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
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use super::abandoned::{self, Rest};
use super::pending::Pending;
use super::recording::Recording;
use super::reply::{content_type, error_chain, no_answer, Answer, Answered};
use super::Shared;
use crate::telemetry::capture::Capture;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let start_utc = Utc::now();
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
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
        headers: std::mem::take(&mut parts.headers),
        authority: shared.authority.clone(),
        body: body.clone(),
    };
    let mut waiting = Waiting { answer: Some(Answer::spawn(upstream.send(shared.client.clone()))), pending: None };
    // Let the request go out first; it is read while the server works on it.
    tokio::task::yield_now().await;
    waiting.pending = Some(Pending::open(&shared, start, start_utc, &parts.method, path, &body));
    let answer = waiting.answer.as_mut().expect("sent above").await;
    let mut pending = waiting.answered();

    match answer {
        Ok(resp) => {
            let (mut head, incoming) = resp.into_parts();
            pending.status = head.status.as_u16();
            let capture = Capture::new(content_type(&head.headers));
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
    async fn send(self, client: Client<HttpConnector, Full<Bytes>>) -> Answered {
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

    use super::super::stub;

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
    }
}
