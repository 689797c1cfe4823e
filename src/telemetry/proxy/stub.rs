//! Test upstreams standing in for llama-server, and clients that talk to the proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::{Inject, Proxy};

const TIMINGS: &str = r#""timings":{"cache_n":7,"prompt_n":3,"prompt_ms":1.5,"predicted_n":4,"predicted_ms":2.5}"#;

/// Serves every connection on a thread of its own: reads one request, then `answer`s it with
/// the request's body at hand.
fn upstream(answer: impl Fn(&mut TcpStream, &[u8]) + Send + Sync + Copy + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                if let Some(body) = read_request(&mut s) {
                    answer(&mut s, &body);
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Reads a request's head and body; the body, or `None` when the connection closed first.
fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok().then_some(body)
}

/// A recording proxy on a free loopback port in front of `upstream`, logging nowhere.
pub fn proxy_to(upstream: &str) -> Proxy {
    proxy_with(upstream, Inject::default())
}

/// [`proxy_to`], adding `inject`'s fields to generation requests.
pub fn proxy_with(upstream: &str, inject: Inject) -> Proxy {
    Proxy::start_with(upstream, std::net::SocketAddr::from(([127, 0, 0, 1], 0)), None, inject).unwrap()
}

/// What a stub server says besides its answer, and when it starts answering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// Sends llama-server's `__verbose` object naming this slot (in a stream: on the
    /// `finish_reason` event, whose `__verbose` holds no "timings" here).
    pub slot: Option<u32>,
    /// Waits this long before the response headers (a stream waiting for a slot).
    pub headers_after: Duration,
}

/// Answers every request with `events` SSE events 20 ms apart, then one carrying `timings`.
pub fn sse_upstream(events: usize) -> String {
    sse_upstream_as(events, Shape::default())
}

/// [`sse_upstream`] shaped by `shape`.
pub fn sse_upstream_as(events: usize, shape: Shape) -> String {
    upstream(move |s, _| {
        std::thread::sleep(shape.headers_after);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        let _ = s.flush();
        let chunk = |s: &mut TcpStream, text: &str| {
            let _ = s.write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes());
            let _ = s.flush();
        };
        for i in 0..events {
            std::thread::sleep(Duration::from_millis(20));
            chunk(s, &format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"));
        }
        if let Some(n) = shape.slot {
            chunk(
                s,
                &format!(
                    "data: {{\"choices\":[{{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{{}}}}],\"__verbose\":{{\"id_slot\":{n},\"prompt\":\"hi\"}}}}\n\n"
                ),
            );
        }
        chunk(s, &format!("data: {{\"choices\":[],{TIMINGS}}}\n\ndata: [DONE]\n\n"));
        let _ = s.write_all(b"0\r\n\r\n");
    })
}

/// Answers every request after `delay` with one JSON body carrying `timings`.
pub fn json_upstream(delay: Duration) -> String {
    json_upstream_as(delay, Shape::default())
}

/// [`json_upstream`] shaped by `shape` (its `headers_after` adds to `delay`).
pub fn json_upstream_as(delay: Duration, shape: Shape) -> String {
    upstream(move |s, _| {
        std::thread::sleep(delay + shape.headers_after);
        let verbose =
            shape.slot.map(|n| format!(r#""__verbose":{{"id_slot":{n},"prompt":"hi"}},"#)).unwrap_or_default();
        let json = format!(r#"{{"choices":[{{"message":{{"content":"hi"}}}}],{verbose}{TIMINGS}}}"#);
        respond(s, 200, "application/json", json.as_bytes());
    })
}

/// Answers every request with the very bytes of the body it received.
pub fn echo_upstream() -> String {
    upstream(|s, body| respond(s, 200, "application/octet-stream", body))
}

/// Answers every request with HTTP `status` and an error body.
pub fn error_upstream(status: u16) -> String {
    upstream(move |s, _| respond(s, status, "application/json", br#"{"error":{"code":500,"message":"boom"}}"#))
}

fn respond(s: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body);
}

/// A streamed chat request through the proxy; the whole answer.
pub fn chat(proxy: &Proxy) -> String {
    let body = serde_json::json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
    ureq::post(&format!("{}/chat/completions", proxy.base_url())).send_json(body).unwrap().into_string().unwrap()
}

/// A non-streamed chat request through the proxy; the whole answer.
pub fn chat_plain(proxy: &Proxy) -> String {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
    ureq::post(&format!("{}/chat/completions", proxy.base_url())).send_json(body).unwrap().into_string().unwrap()
}

/// `body` sent as it is with `method` to `path` through the proxy; the answer's bytes.
pub fn send(proxy: &Proxy, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let resp = ureq::request(method, &format!("http://{}{path}", proxy.addr()))
        .set("Content-Type", "application/json")
        .send_bytes(body)
        .unwrap();
    let mut out = Vec::new();
    resp.into_reader().read_to_end(&mut out).unwrap();
    out
}

/// Sends a non-streamed chat request on a connection of its own and hangs up after `after`.
pub fn hang_up_after(proxy: &Proxy, after: Duration) {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(after);
    drop(s);
}
