//! The recording proxy: agents talk to it on loopback, it forwards every request to
//! llama-server and passes the answer back as it arrives (a stream is never held back), and it
//! records each request's timings for the current trial. `fixbench proxy` (in `commands`)
//! runs one for any client.
//!
//! `forward` sends a request on (with [`Inject`]'s fields added to a generation request) and
//! hands the answer back, `recording` turns the answer into a [`RequestRecord`] as it passes,
//! `abandoned` finishes reading an answer whose client hung up; below them `pending` is a
//! request's record and `reply` the server's answer. Each imports only from those after it in
//! that order.

mod abandoned;
mod forward;
mod pending;
mod recording;
mod reply;
#[cfg(test)]
mod stub;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::conversation::Tracker;
use super::transcript::TranscriptBook;
use crate::error::Error;
use crate::store::RequestRecord;

/// How the proxy reaches the server: plain TCP, or TLS for an `https://` one.
pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Called with each finished request (the `fixbench proxy` log).
pub type Sink = Box<dyn Fn(&RequestRecord) + Send + Sync>;

/// What the proxy adds to each generation request (a JSON body with `messages` or `prompt`)
/// on its way to the server; the agent's own fields are never overwritten. `verbose` and
/// `id_slot` are llama-server's own fields: other servers get neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Inject {
    /// `"verbose": true`: llama-server then names the slot that served the request
    /// (`__verbose.id_slot`), recorded as the request's `slot`.
    pub verbose: bool,
    /// `"id_slot": N`: the request is served by slot N (a trial that owns a slot).
    pub id_slot: Option<u32>,
    /// The server is llama-server, which sends a stream's response headers when a slot takes
    /// the request: their time is the request's wait for a slot (`queue_ms`). Other servers
    /// send them at once.
    pub llama_server: bool,
    /// The server's API key (from the environment, never stored), sent as `Authorization:
    /// Bearer` on every request, in place of the agent's own (see `forward::with_key`): an
    /// agent needs no key of its own, and never sees this one.
    pub api_key: Option<String>,
    /// Read only what the OpenAI API defines in an answer (`usage`), never a server's own
    /// fields (`timings`, Ollama's durations): the server's kind is unknown (`other`).
    pub openai_only: bool,
}

impl Default for Inject {
    fn default() -> Self {
        Inject { verbose: true, id_slot: None, llama_server: true, api_key: None, openai_only: false }
    }
}

impl std::fmt::Debug for Inject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inject")
            .field("verbose", &self.verbose)
            .field("id_slot", &self.id_slot)
            .field("llama_server", &self.llama_server)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("openai_only", &self.openai_only)
            .finish()
    }
}

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
    client: Client<Connector, http_body_util::Full<Bytes>>,
    book: Mutex<Book>,
    /// Requests of the open trial not yet recorded.
    in_flight: AtomicUsize,
    /// Of those, the ones whose client hung up and whose answer is still being read.
    abandoned: AtomicUsize,
    /// The latest epoch whose answers nobody waits for any more are cut short (see `end`).
    closing: tokio::sync::watch::Sender<u64>,
    sink: Option<Sink>,
    /// Added to each generation request on its way out (`forward`).
    inject: Inject,
    /// A trial's proxy serves only paths under `/<token>/` (its base URL): another process
    /// on the machine that finds the port (a neighbour's agent) is refused, not recorded.
    token: Option<String>,
    /// Requests refused for lacking the token.
    refused: AtomicUsize,
    /// A trial's agent's requests refused for what they asked (`/slots`).
    forbidden: AtomicUsize,
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
    /// The trial's conversation, when it is recorded ([`Proxy::record_transcript`]).
    transcript: Option<TranscriptBook>,
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
    /// Requests still running, their client still waiting, when the trial ended (they are not
    /// in `records`).
    pub unfinished: usize,
    /// What was said, when the trial's transcript was recorded.
    pub transcript: Option<TranscriptBook>,
}

/// How long `end` waits for the answers it cut short to be recorded.
const SETTLE: Duration = Duration::from_secs(1);

impl Proxy {
    /// Starts forwarding from `listen` (port 0: any free port) to the server at `upstream`.
    pub fn start(upstream: &str, listen: SocketAddr, sink: Option<Sink>) -> Result<Proxy> {
        Self::start_with(upstream, listen, sink, Inject::default())
    }

    /// [`Proxy::start`], adding `inject`'s fields to each generation request.
    pub fn start_with(upstream: &str, listen: SocketAddr, sink: Option<Sink>, inject: Inject) -> Result<Proxy> {
        Self::start_inner(upstream, listen, sink, inject, None)
    }

    /// One trial's proxy: on a port of its own, serving only under a random path token that
    /// is part of its [`Proxy::base_url`], so that nothing but the trial's agent (which is
    /// given that URL) is recorded in the trial.
    pub fn start_for_trial(upstream: &str, inject: Inject) -> Result<Proxy> {
        let token = format!("t{:016x}", rand::random::<u64>());
        Self::start_inner(upstream, SocketAddr::from(([127, 0, 0, 1], 0)), None, inject, Some(token))
    }

    fn start_inner(
        upstream: &str,
        listen: SocketAddr,
        sink: Option<Sink>,
        inject: Inject,
        token: Option<String>,
    ) -> Result<Proxy> {
        let upstream = super::client::root_url(upstream)?;
        let Some(hostport) = upstream.strip_prefix("http://").or_else(|| upstream.strip_prefix("https://")) else {
            return Err(Error::BadInput(format!(
                "the recording proxy forwards to http:// and https:// servers; `{upstream}` is neither"
            ))
            .into());
        };
        let authority = HeaderValue::from_str(hostport.split('/').next().unwrap_or(hostport))
            .with_context(|| format!("bad server address {upstream}"))?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.enforce_http(false);
        let tls = match upstream.starts_with("https://") {
            true => (*super::tls::client_config().map_err(Error::BadInput)?).clone(),
            // Never used for a plain http:// server: an empty store, nothing read.
            false => super::tls::trusting(rustls::RootCertStore::empty()).map_err(Error::Environment)?,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
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
            abandoned: AtomicUsize::new(0),
            closing: tokio::sync::watch::Sender::new(0),
            sink,
            inject,
            token,
            refused: AtomicUsize::new(0),
            forbidden: AtomicUsize::new(0),
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
        Ok(Proxy { addr, shared, stop: Some(stop_tx), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL agents are given.
    pub fn base_url(&self) -> String {
        match &self.shared.token {
            Some(t) => format!("http://{}/{t}/v1", self.addr),
            None => format!("http://{}/v1", self.addr),
        }
    }

    /// Requests refused so far for lacking the trial's path token.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// The trial's own requests refused so far for reaching for the server's slot actions.
    pub fn forbidden(&self) -> usize {
        self.shared.forbidden.load(Ordering::SeqCst)
    }

    /// Requests of the open trial so far, answered or not.
    pub fn requests(&self) -> usize {
        self.shared.book.lock().unwrap().records.len() + self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Starts collecting a new trial's requests (dropping anything not collected).
    pub fn begin(&self, keep: bool) {
        let mut b = self.shared.book.lock().unwrap();
        let epoch = b.epoch + 1;
        *b = Book { epoch, open: true, keep, started: Some(Instant::now()), ..Default::default() };
    }

    /// Also records the open trial's conversation (each request's new prompt items and its
    /// answer), up to `cap` bytes; call it right after [`Proxy::begin`].
    pub fn record_transcript(&self, cap: u64) {
        let mut b = self.shared.book.lock().unwrap();
        if b.open {
            b.transcript = Some(TranscriptBook::new(cap));
        }
    }

    /// Waits up to `grace` for requests still running, then hands over what was collected.
    /// Requests whose client hung up are all in the records: with the server's timings when
    /// it answered within `grace`, else cut short (the server stops working on them).
    pub fn end(&self, grace: Duration) -> Collected {
        let deadline = Instant::now() + grace;
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let epoch = self.shared.book.lock().unwrap().epoch;
        self.shared.closing.send_replace(epoch);
        let settle = Instant::now() + SETTLE;
        while self.shared.abandoned.load(Ordering::SeqCst) > 0 && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(1));
        }
        let unfinished = self.shared.in_flight.load(Ordering::SeqCst);
        let mut b = self.shared.book.lock().unwrap();
        b.open = false;
        b.epoch += 1;
        Collected {
            records: std::mem::take(&mut b.records),
            first_request: b.first_request.take(),
            unfinished,
            transcript: b.transcript.take(),
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
            let svc = hyper::service::service_fn(move |req| forward::handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::stub;
    use super::*;

    #[test]
    fn requests_outside_a_trial_are_not_kept() {
        let proxy = stub::proxy_to(&stub::sse_upstream(1));
        stub::chat(&proxy);
        proxy.begin(true);
        assert!(proxy.end(Duration::from_secs(1)).records.is_empty());
    }

    #[test]
    fn a_request_cut_short_leaves_nothing_running_for_the_next_trial() {
        let proxy = stub::proxy_to(&stub::json_upstream(Duration::from_secs(5)));
        proxy.begin(true);
        stub::hang_up_after(&proxy, Duration::from_millis(100));
        let t = Instant::now();
        let got = proxy.end(Duration::from_millis(300));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!((got.records.len(), got.unfinished), (1, 0), "{got:?}");
        proxy.begin(true);
        let t = Instant::now();
        let next = proxy.end(Duration::from_secs(2));
        assert!(t.elapsed() < Duration::from_secs(1), "nothing left to wait for: {:?}", t.elapsed());
        assert_eq!((next.records.len(), next.unfinished), (0, 0));
    }

    #[test]
    fn a_trials_proxy_serves_only_its_own_base_url() {
        let proxy = Proxy::start_for_trial(&stub::sse_upstream(1), Inject::default()).unwrap();
        let url = proxy.base_url();
        let token = url.split('/').nth(3).unwrap().to_string();
        assert!(token.starts_with('t') && token.len() == 17 && url.ends_with("/v1"), "{url}");
        proxy.begin(true);
        assert!(stub::chat(&proxy).contains("data: [DONE]"));
        // A neighbour that found the port, without the token: refused and not recorded.
        let stranger = format!("http://{}/v1/chat/completions", proxy.addr());
        let err = ureq::post(&stranger).send_json(serde_json::json!({"messages": []})).unwrap_err();
        assert!(matches!(err, ureq::Error::Status(404, _)), "{err:?}");
        let guess = format!("http://{}/{}x/v1/chat/completions", proxy.addr(), token);
        assert!(ureq::post(&guess).send_json(serde_json::json!({"messages": []})).is_err());
        let got = proxy.end(Duration::from_secs(1));
        assert_eq!(got.records.len(), 1, "{:?}", got.records);
        assert_eq!(got.records[0].path, "/v1/chat/completions", "recorded without the token");
        assert_eq!(proxy.refused(), 2);
        // Its own agent, with the token, may not erase or save the server's slots.
        let erase = format!("{}/slots/1?action=erase", url.trim_end_matches("/v1"));
        let err = ureq::post(&erase).send_json(serde_json::json!({})).unwrap_err();
        assert!(matches!(err, ureq::Error::Status(403, _)), "{err:?}");
        assert_eq!(proxy.forbidden(), 1);
    }

    #[test]
    fn each_part_imports_only_the_parts_below_it() {
        let parts = [
            ("forward", include_str!("forward.rs")),
            ("recording", include_str!("recording.rs")),
            ("abandoned", include_str!("abandoned.rs")),
            ("pending", include_str!("pending.rs")),
            ("reply", include_str!("reply.rs")),
        ];
        for (i, (name, text)) in parts.iter().enumerate() {
            for (above, _) in &parts[..i] {
                assert!(!text.contains(&format!("super::{above}")), "{name} imports {above}, which is above it");
            }
        }
    }
}
