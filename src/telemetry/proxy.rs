//! The recording proxy: agents talk to it on loopback, it forwards every request to
//! llama-server and passes the answer back as it arrives (a stream is never held back), and it
//! records each request's timings for the current trial. Also `fixbench proxy`, for watching
//! any client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::capture::Capture;
use super::conversation::{self, Placement, Tracker};
use crate::error::Error;
use crate::store::RequestRecord;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Called with each finished request (the `fixbench proxy` log).
pub type Sink = Box<dyn Fn(&RequestRecord) + Send + Sync>;

/// A running proxy; dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    /// `http://host:port`, no trailing slash.
    upstream: String,
    authority: HeaderValue,
    client: Client<HttpConnector, Full<Bytes>>,
    book: Mutex<Book>,
    in_flight: AtomicUsize,
    sink: Option<Sink>,
}

/// The requests of the current trial (or of the whole `fixbench proxy` session).
#[derive(Default)]
struct Book {
    /// Bumped by every `begin`: a request that straddles two trials is kept by neither.
    epoch: u64,
    open: bool,
    /// Whether records are kept for `end` (a `fixbench proxy` session only logs them).
    keep: bool,
    started: Option<Instant>,
    records: Vec<RequestRecord>,
    tracker: Tracker,
    first_request: Option<FirstRequest>,
}

/// The first generation request of a trial: the shape a warm-up copies.
#[derive(Debug, Clone)]
pub struct FirstRequest {
    pub path: String,
    pub body: Bytes,
}

/// What a trial's requests left behind.
#[derive(Debug, Default)]
pub struct Collected {
    pub records: Vec<RequestRecord>,
    pub first_request: Option<FirstRequest>,
    /// Requests still running when the trial ended (they are not in `records`).
    pub unfinished: usize,
}

impl Proxy {
    /// Starts forwarding from `listen` (port 0: any free port) to the server at `upstream`.
    pub fn start(upstream: &str, listen: SocketAddr, sink: Option<Sink>) -> Result<Proxy> {
        let upstream = super::client::root_url(upstream)?;
        let Some(hostport) = upstream.strip_prefix("http://") else {
            return Err(Error::BadInput(format!(
                "the recording proxy forwards to plain http:// servers; `{upstream}` is not one"
            ))
            .into());
        };
        let authority = HeaderValue::from_str(hostport.split('/').next().unwrap_or(hostport))
            .with_context(|| format!("bad server address {upstream}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        // llama-server closes idle connections after 5 s: give them up before it does.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(3))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            authority,
            client,
            book: Mutex::new(Book::default()),
            in_flight: AtomicUsize::new(0),
            sink,
        });
        // Its own thread and runtime, stopped and joined on drop.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fixbench-proxy".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fixbench-proxy")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("failed to start the proxy's runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind(listen).await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "the proxy cannot listen on {listen}: {e}: pick another --listen address"
                            )));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    tokio::select! {
                        _ = accept_loop(listener, serving) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .context("failed to start the proxy's thread")?;
        let addr = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the proxy's thread ended before it listened"))?
            .map_err(Error::Environment)?;
        Ok(Proxy {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL agents are given.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Starts collecting a new trial's requests (dropping anything not collected).
    pub fn begin(&self, keep: bool) {
        let mut b = self.shared.book.lock().unwrap();
        let epoch = b.epoch + 1;
        *b = Book {
            epoch,
            open: true,
            keep,
            started: Some(Instant::now()),
            ..Default::default()
        };
    }

    /// Waits up to `grace` for requests still running, then hands over what was collected.
    pub fn end(&self, grace: Duration) -> Collected {
        let deadline = Instant::now() + grace;
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let unfinished = self.shared.in_flight.load(Ordering::SeqCst);
        let mut b = self.shared.book.lock().unwrap();
        b.open = false;
        b.epoch += 1;
        Collected {
            records: std::mem::take(&mut b.records),
            first_request: b.first_request.take(),
            unfinished,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors and the like: wait and go on rather than stop serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
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

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let start_utc = Utc::now();
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
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
    let send = upstream.send(shared.client.clone());
    let read = async {
        // Let the request go out first; it is read while the server works on it.
        tokio::task::yield_now().await;
        let json: Option<serde_json::Value> = if parts.method == hyper::Method::POST {
            serde_json::from_slice(&body).ok()
        } else {
            None
        };
        let stream_req = json
            .as_ref()
            .and_then(|j| j.get("stream"))
            .and_then(|s| s.as_bool())
            .unwrap_or(false);
        let units = json.as_ref().and_then(|j| conversation::units(&path, j));
        let mut b = shared.book.lock().unwrap();
        if !b.open {
            return (stream_req, None, None);
        }
        if b.first_request.is_none() && units.is_some() {
            b.first_request = Some(FirstRequest {
                path: path.clone(),
                body: body.clone(),
            });
        }
        let placement = units.map(|u| b.tracker.place(u));
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        (stream_req, Some(b.epoch), placement)
    };
    let (answer, (stream_req, epoch, placement)) = tokio::join!(send, read);
    let mut pending = Pending {
        shared: shared.clone(),
        epoch,
        start,
        start_utc,
        method: parts.method.to_string(),
        path,
        stream_req,
        placement,
        status: 0,
    };

    match answer {
        Ok(resp) => {
            let (mut head, incoming) = resp.into_parts();
            pending.status = head.status.as_u16();
            let content_type = head
                .headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let capture = Capture::new(content_type);
            let mut headers = HeaderMap::new();
            copy_headers(&head.headers, &mut headers, &[]);
            head.headers = headers;
            let body = Recording {
                inner: incoming,
                capture: Some(capture),
                pending: Some(pending),
            };
            Ok(Response::from_parts(
                head,
                body.map_err(|e| Box::new(e) as BoxError).boxed(),
            ))
        }
        Err(why) => {
            let msg = format!(
                "fixbench proxy: the llama-server at {} did not answer: {why}",
                shared.upstream
            );
            pending.status = StatusCode::BAD_GATEWAY.as_u16();
            pending.finish(Capture::new(None), Some(msg.clone()));
            Ok(error_response(StatusCode::BAD_GATEWAY, &msg))
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
        let mut up = Request::builder()
            .method(self.method.clone())
            .uri(&self.uri);
        if let Some(h) = up.headers_mut() {
            // The proxy reads the answer, so it asks for it uncompressed.
            copy_headers(
                &self.headers,
                h,
                &["host", "content-length", "accept-encoding"],
            );
            h.insert(hyper::header::HOST, self.authority.clone());
        }
        up.body(Full::new(self.body.clone()))
            .map_err(|e| format!("bad request: {e}"))
    }

    /// Sends once, and once more when a kept-alive connection turned out closed before the
    /// server answered anything (it closes idle connections after a few seconds).
    async fn send(
        self,
        client: Client<HttpConnector, Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        match client.request(self.build()?).await {
            Ok(r) => Ok(r),
            Err(e) if closed_before_answer(&e) => client
                .request(self.build()?)
                .await
                .map_err(|e| error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        }
    }
}

fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<hyper::Error>())
        .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn error_response(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": msg, "type": "unavailable_error"}});
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A request whose record is written when its answer ends.
struct Pending {
    shared: Arc<Shared>,
    /// The trial it belongs to; `None` when no trial was collecting.
    epoch: Option<u64>,
    start: Instant,
    start_utc: DateTime<Utc>,
    method: String,
    path: String,
    stream_req: bool,
    placement: Option<Placement>,
    status: u16,
}

impl Pending {
    fn finish(self, capture: Capture, broke_off: Option<String>) {
        let end = Instant::now();
        let stream = capture.is_stream() || self.stream_req;
        let sse = capture.is_stream();
        let o = capture.finish();
        let error = broke_off.or_else(|| {
            (self.status >= 400).then(|| {
                o.error
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", self.status))
            })
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut rec = RequestRecord {
            start: self.start_utc,
            offset_ms: 0.0,
            method: self.method,
            path: self.path,
            stream,
            status: self.status,
            ttft_ms: if sse {
                o.first_token.map(|t| ms(t - self.start))
            } else {
                None
            },
            total_ms: ms(end - self.start),
            prompt_n: o.prompt_n,
            cache_n: o.cache_n,
            prompt_ms: o.prompt_ms,
            predicted_n: o.predicted_n,
            predicted_ms: o.predicted_ms,
            reprefilled_tokens: None,
            error,
            conversation: self.placement.as_ref().map(|p| p.conversation),
            turn: self.placement.as_ref().map(|p| p.turn),
        };
        let Some(epoch) = self.epoch else {
            if let Some(sink) = &self.shared.sink {
                sink(&rec);
            }
            return;
        };
        {
            let mut b = self.shared.book.lock().unwrap();
            if b.open && b.epoch == epoch {
                if let Some(p) = &self.placement {
                    rec.reprefilled_tokens = b.tracker.finish(p, rec.prompt_n, rec.cache_n);
                }
                if let Some(t0) = b.started {
                    rec.offset_ms = ms(self.start.saturating_duration_since(t0));
                }
                if b.keep {
                    b.records.push(rec.clone());
                }
            }
        }
        if let Some(sink) = &self.shared.sink {
            sink(&rec);
        }
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server's answer on its way to the client, read as it passes.
struct Recording {
    inner: Incoming,
    capture: Option<Capture>,
    pending: Option<Pending>,
}

impl Recording {
    fn finish(&mut self, broke_off: Option<String>) {
        if let (Some(p), Some(c)) = (self.pending.take(), self.capture.take()) {
            p.finish(c, broke_off);
        }
    }
}

impl Body for Recording {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(c)) = (frame.data_ref(), this.capture.as_mut()) {
                    c.feed(data, Instant::now());
                }
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(format!(
                    "the server broke off its answer: {}",
                    error_chain(&e)
                )));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.pending.is_some() {
            let complete =
                self.inner.is_end_stream() || self.capture.as_ref().is_some_and(Capture::saw_end);
            let why = (!complete)
                .then(|| "the client closed the connection before the answer ended".to_string());
            self.finish(why);
        }
    }
}

/// `fixbench proxy`: a recording proxy in front of llama-server for any client.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The llama-server to forward to.
    #[arg(long, env = "FIXBENCH_SERVER", value_name = "URL")]
    pub server: String,
    /// Where clients connect (point them at http://ADDR/v1).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Append one JSON line per request to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Print nothing per request on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn command(args: ProxyArgs) -> Result<i32> {
    let log = match &args.log {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("failed to open the log file {}", p.display()))?,
        )),
        None => None,
    };
    let quiet = args.quiet;
    let sink: Sink = Box::new(move |r: &RequestRecord| {
        if let Some(f) = &log {
            use std::io::Write;
            if let Ok(line) = serde_json::to_string(r) {
                let mut f = f.lock().unwrap();
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
        }
        if !quiet {
            eprintln!("{}", describe(r));
        }
    });
    let server = super::client::Server::new(&args.server)?;
    let proxy = Proxy::start(&args.server, args.listen, Some(sink))?;
    proxy.begin(false);
    if let super::client::Reply::Unreachable(why) = server.get("/health") {
        eprintln!(
            "warning: no llama-server answers at {} yet ({why}); forwarding anyway",
            server.root()
        );
    }
    eprintln!(
        "fixbench proxy: clients → {} → {}{}; Ctrl-C stops",
        proxy.base_url(),
        server.root(),
        args.log
            .as_ref()
            .map(|p| format!("; one JSON line per request in {}", p.display()))
            .unwrap_or_default()
    );
    let cancel = crate::runner::cancel_flag();
    while !cancel.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(proxy.end(Duration::from_secs(2)));
    Ok(crate::exit_codes::OK)
}

/// One request as a line: `POST /v1/chat/completions 200 stream ttft 120 ms total 900 ms …`.
pub fn describe(r: &RequestRecord) -> String {
    let mut s = format!(
        "{} {} {} {}",
        r.start.format("%H:%M:%S"),
        r.method,
        r.path,
        r.status
    );
    if r.stream {
        s.push_str(" stream");
    }
    if let Some(t) = r.ttft_ms {
        s.push_str(&format!(" ttft {t:.0} ms"));
    }
    s.push_str(&format!(" total {:.0} ms", r.total_ms));
    if let (Some(p), Some(c)) = (r.prompt_n, r.cache_n) {
        s.push_str(&format!(" prompt {p} cached {c}"));
    }
    if let Some(n) = r.predicted_n {
        s.push_str(&format!(" gen {n}"));
    }
    if let (Some(c), Some(t)) = (r.conversation, r.turn) {
        s.push_str(&format!(" conv {c} turn {t}"));
    }
    if let Some(n) = r.reprefilled_tokens.filter(|&n| n > 0) {
        s.push_str(&format!(" RE-PREFILLED {n}"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" error: {e}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-connection-at-a-time upstream that answers every request with `events` SSE
    /// events 20 ms apart, the last one carrying `timings`.
    fn stub_upstream(events: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
                    let chunk = |s: &mut std::net::TcpStream, text: &str| {
                        let _ = s.write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes());
                        let _ = s.flush();
                    };
                    for i in 0..events {
                        std::thread::sleep(Duration::from_millis(20));
                        chunk(&mut s, &format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"));
                    }
                    chunk(&mut s, "data: {\"choices\":[],\"timings\":{\"cache_n\":7,\"prompt_n\":3,\"prompt_ms\":1.5,\"predicted_n\":4,\"predicted_ms\":2.5}}\n\ndata: [DONE]\n\n");
                    let _ = s.write_all(b"0\r\n\r\n");
                });
            }
        });
        format!("http://{addr}")
    }

    fn chat(proxy: &Proxy) -> String {
        let body =
            serde_json::json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
        ureq::post(&format!("{}/chat/completions", proxy.base_url()))
            .send_json(body)
            .unwrap()
            .into_string()
            .unwrap()
    }

    #[test]
    fn a_stream_passes_through_and_is_recorded() {
        let proxy = Proxy::start(
            &stub_upstream(5),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .unwrap();
        proxy.begin(true);
        let text = chat(&proxy);
        assert!(
            text.contains("t4") && text.ends_with("data: [DONE]\n\n"),
            "{text}"
        );
        let got = proxy.end(Duration::from_secs(2));
        assert_eq!(got.records.len(), 1);
        let r = &got.records[0];
        assert_eq!((r.status, r.stream, r.error.as_deref()), (200, true, None));
        let ttft = r.ttft_ms.unwrap();
        assert!(
            ttft >= 15.0 && ttft + 60.0 < r.total_ms,
            "the first token is not held back: {r:?}"
        );
        assert_eq!(
            (r.prompt_n, r.cache_n, r.predicted_n),
            (Some(3), Some(7), Some(4))
        );
        assert_eq!((r.conversation, r.turn), (Some(0), Some(0)));
        assert_eq!(got.first_request.unwrap().path, "/v1/chat/completions");
    }

    #[test]
    fn requests_outside_a_trial_are_not_kept() {
        let proxy = Proxy::start(
            &stub_upstream(1),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .unwrap();
        chat(&proxy);
        proxy.begin(true);
        assert!(proxy.end(Duration::from_secs(1)).records.is_empty());
    }

    #[test]
    fn a_dead_upstream_gives_502_and_a_record_saying_so() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = Proxy::start(
            &format!("http://127.0.0.1:{port}"),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .unwrap();
        proxy.begin(true);
        let err = ureq::post(&format!("{}/chat/completions", proxy.base_url()))
            .send_json(serde_json::json!({"messages": []}))
            .unwrap_err();
        let ureq::Error::Status(502, resp) = err else {
            panic!("expected 502, got {err:?}")
        };
        assert!(resp.into_string().unwrap().contains("did not answer"));
        let got = proxy.end(Duration::from_secs(1));
        assert_eq!(got.records[0].status, 502);
        assert!(got.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("did not answer"));
        assert_eq!(got.records[0].prompt_n, None);
    }

    #[test]
    fn a_client_hanging_up_mid_stream_is_recorded() {
        let proxy = Proxy::start(
            &stub_upstream(20),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .unwrap();
        proxy.begin(true);
        let body =
            serde_json::json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let resp = ureq::post(&format!("{}/chat/completions", proxy.base_url()))
            .send_json(body)
            .unwrap();
        let mut reader = resp.into_reader();
        let mut first = [0u8; 16];
        reader.read_exact(&mut first).unwrap();
        drop(reader);
        let got = proxy.end(Duration::from_secs(3));
        assert_eq!(got.records.len(), 1);
        assert!(
            got.records[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("client closed"),
            "{:?}",
            got.records[0]
        );
    }
}
