//! Test upstreams standing in for llama-server, and clients that talk to the proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::Proxy;

const TIMINGS: &str = r#""timings":{"cache_n":7,"prompt_n":3,"prompt_ms":1.5,"predicted_n":4,"predicted_ms":2.5}"#;

/// Serves every connection on a thread of its own: reads one request, then `answer`s it.
fn upstream(answer: impl Fn(&mut TcpStream) + Send + Sync + Copy + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                if read_request(&mut s) {
                    answer(&mut s);
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Reads a request's head and body; false when the connection closed first.
fn read_request(s: &mut TcpStream) -> bool {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok()
}

/// Answers every request with `events` SSE events 20 ms apart, then one carrying `timings`.
/// A recording proxy on a free loopback port in front of `upstream`, logging nowhere.
pub fn proxy_to(upstream: &str) -> Proxy {
    Proxy::start(upstream, std::net::SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap()
}

pub fn sse_upstream(events: usize) -> String {
    upstream(move |s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        let chunk = |s: &mut TcpStream, text: &str| {
            let _ = s.write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes());
            let _ = s.flush();
        };
        for i in 0..events {
            std::thread::sleep(Duration::from_millis(20));
            chunk(s, &format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"));
        }
        chunk(s, &format!("data: {{\"choices\":[],{TIMINGS}}}\n\ndata: [DONE]\n\n"));
        let _ = s.write_all(b"0\r\n\r\n");
    })
}

/// Answers every request after `delay` with one JSON body carrying `timings`.
pub fn json_upstream(delay: Duration) -> String {
    upstream(move |s| {
        std::thread::sleep(delay);
        let json = format!(r#"{{"choices":[{{"message":{{"content":"hi"}}}}],{TIMINGS}}}"#);
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        );
    })
}

/// A streamed chat request through the proxy; the whole answer.
pub fn chat(proxy: &Proxy) -> String {
    let body = serde_json::json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
    ureq::post(&format!("{}/chat/completions", proxy.base_url())).send_json(body).unwrap().into_string().unwrap()
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
