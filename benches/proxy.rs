//! The recording proxy's overhead, two ways (`scripts/bench-proxy.sh` runs both):
//!
//! 1. against a real llama-server: the same streamed chat request direct, through the proxy,
//!    and through a proxy recording the transcript, in rotated order, TTFT and total of each;
//!    the median of the per-round ratios to direct, for a cached prompt and a full prefill;
//! 2. against a local stub upstream that streams 20 events 5 ms apart: 200 concurrent
//!    streamed requests direct, then through the proxy, in alternated rounds; every request
//!    must arrive whole and be recorded; p50/p99 of TTFT and total, and what the proxy adds.
//!
//! `cargo bench --bench proxy -- [--server URL] [--pairs N] [--concurrency N] [--rounds N]`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fixbench::telemetry::capture::Capture;
use fixbench::telemetry::proxy::Proxy;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Args {
    server: Option<String>,
    pairs: usize,
    concurrency: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args { server: std::env::var("FIXBENCH_SERVER").ok(), pairs: 30, concurrency: 200, rounds: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let num = |it: &mut dyn Iterator<Item = String>| it.next().and_then(|v| v.parse().ok()).expect("a number");
        match x.as_str() {
            "--server" => a.server = it.next(),
            "--pairs" => a.pairs = num(&mut it),
            "--concurrency" => a.concurrency = num(&mut it),
            "--rounds" => a.rounds = num(&mut it),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    ttft: f64,
    total: f64,
    ok: bool,
}

fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    // llama-server closes idle connections after 5 s: give them up before it does.
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .pool_idle_timeout(Duration::from_secs(3))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(c)
}

/// One streamed POST: milliseconds to the first token and to the end; `ok` when the answer
/// was 200 and arrived whole (its closing event seen).
async fn one(client: &HttpClient, url: &str, body: Bytes) -> Sample {
    let t0 = Instant::now();
    let req = || Request::post(url).header("content-type", "application/json").body(Full::new(body.clone())).unwrap();
    let failed = Sample { ttft: f64::NAN, total: f64::NAN, ok: false };
    // A kept-alive connection the server closed just as it was reused is tried once more,
    // on either path alike (the proxy does the same upstream).
    let resp = match client.request(req()).await {
        Ok(r) => Ok(r),
        Err(_) => client.request(req()).await,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            eprintln!("request to {url} failed: {e:?}");
            return failed;
        }
    };
    let status = resp.status();
    let mut body = resp.into_body();
    let mut cap = Capture::new(Some("text/event-stream"));
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    cap.feed(d, Instant::now());
                }
            }
            Err(e) => {
                eprintln!("answer from {url} broke off: {e:?}");
                return failed;
            }
        }
    }
    let total = t0.elapsed().as_secs_f64() * 1000.0;
    let whole = cap.saw_end();
    let o = cap.finish();
    let ttft = o.first_token.map(|t| (t - t0).as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
    Sample { ttft, total, ok: status == 200 && whole }
}

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

fn real_server(rt: &tokio::runtime::Runtime, url: &str, pairs: usize) {
    let root = url.trim_end_matches('/').trim_end_matches("/v1").to_string();
    let proxy = Proxy::start(&root, SocketAddr::from(([127, 0, 0, 1], 0)), None).expect("proxy starts");
    // A second proxy recording the transcript, as a trial's does by default.
    let recording = Proxy::start(&root, SocketAddr::from(([127, 0, 0, 1], 0)), None).expect("proxy starts");
    let c = client();
    let direct = format!("{root}/v1/chat/completions");
    let proxied = format!("{}/chat/completions", proxy.base_url());
    let transcribed = format!("{}/chat/completions", recording.base_url());
    let prompt = "Explain in two sentences why a prompt cache speeds up a multi-turn conversation. ".repeat(6);
    println!("## proxy overhead against the llama-server at {root}");
    println!(
        "{pairs} rounds per workload, direct (D), proxied (P) and proxied recording the transcript (T) in rotated \
         order (D P T, P T D, T D P …), streamed, max_tokens 32\n"
    );
    println!(
        "| workload | metric | direct median | proxied median | median ratio P/D | ratio p25…p75 | transcript median | median ratio T/D |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, cache) in [("cached prompt", true), ("full prefill (cache_prompt false)", false)] {
        let body = Bytes::from(
            serde_json::json!({
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 32, "temperature": 0, "seed": 1, "stream": true, "cache_prompt": cache,
            })
            .to_string(),
        );
        // Warm up every path (connections, the prompt cache).
        for _ in 0..2 {
            for url in [&direct, &proxied, &transcribed] {
                rt.block_on(one(&c, url, body.clone()));
            }
        }
        proxy.begin(false);
        recording.begin(false);
        recording.record_transcript(20 << 20);
        let (mut d, mut p, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..pairs {
            let urls = [&direct, &proxied, &transcribed];
            let mut got: [Option<Sample>; 3] = [None, None, None];
            for k in 0..3 {
                let which = (i + k) % 3;
                got[which] = Some(rt.block_on(one(&c, urls[which], body.clone())));
            }
            let [ds, ps, ts] = got.map(|s| s.expect("each path once"));
            assert!(ds.ok && ps.ok && ts.ok, "a request failed: {ds:?} {ps:?} {ts:?}");
            d.push(ds);
            p.push(ps);
            t.push(ts);
        }
        proxy.end(Duration::from_secs(2));
        let kept = recording.end(Duration::from_secs(2)).transcript.map_or(0, |b| b.stats().turns);
        assert_eq!(kept as usize, pairs, "every transcribed request is in the transcript");
        for (metric, get) in [("TTFT", (|s: &Sample| s.ttft) as fn(&Sample) -> f64), ("total", |s: &Sample| s.total)] {
            let mut dv: Vec<f64> = d.iter().map(get).collect();
            let mut pv: Vec<f64> = p.iter().map(get).collect();
            let mut tv: Vec<f64> = t.iter().map(get).collect();
            let mut ratios: Vec<f64> = d.iter().zip(&p).map(|(a, b)| get(b) / get(a)).collect();
            let mut t_ratios: Vec<f64> = d.iter().zip(&t).map(|(a, b)| get(b) / get(a)).collect();
            println!(
                "| {name} | {metric} | {:.1} ms | {:.1} ms | **{:.3}** | {:.3}…{:.3} | {:.1} ms | **{:.3}** |",
                median(&mut dv),
                median(&mut pv),
                median(&mut ratios),
                percentile(&mut ratios, 25.0),
                percentile(&mut ratios, 75.0),
                median(&mut tv),
                median(&mut t_ratios),
            );
        }
    }
    println!();
}

/// A stand-in llama-server: every POST gets 20 SSE events 5 ms apart, then timings and [DONE].
async fn stub(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
                tokio::spawn(async move {
                    for i in 0..20 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        let ev = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"tok{i} \"}}}}]}}\n\n");
                        if tx.send(Bytes::from(ev)).await.is_err() {
                            return;
                        }
                    }
                    let last = "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{}}],\"timings\":{\"cache_n\":10,\"prompt_n\":5,\"prompt_ms\":1.0,\"predicted_n\":20,\"predicted_ms\":100.0}}\n\ndata: [DONE]\n\n";
                    let _ = tx.send(Bytes::from(last)).await;
                });
                let mut r = Response::new(ChanBody(rx));
                r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// A response body fed by a channel.
struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn concurrent(rt: &tokio::runtime::Runtime, n: usize, rounds: usize) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(stub(listener));
    let proxy = Proxy::start(&format!("http://{addr}"), SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
    let c = Arc::new(client());
    let direct = format!("http://{addr}/v1/chat/completions");
    let proxied = format!("{}/chat/completions", proxy.base_url());
    let body = Bytes::from_static(br#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#);
    let burst = |url: &str| -> Vec<Sample> {
        rt.block_on(async {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (c, url, body) = (c.clone(), url.to_string(), body.clone());
                    tokio::spawn(async move { one(&c, &url, body).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    };
    burst(&direct); // warm-up: open the connections
    burst(&proxied);
    let (mut d, mut p) = (Vec::new(), Vec::new());
    let mut recorded = 0;
    for r in 0..rounds {
        let order = if r % 2 == 0 { [true, false] } else { [false, true] };
        for is_direct in order {
            if is_direct {
                d.extend(burst(&direct));
            } else {
                proxy.begin(true);
                p.extend(burst(&proxied));
                let got = proxy.end(Duration::from_secs(5));
                recorded += got
                    .records
                    .iter()
                    .filter(|r| r.status == 200 && r.error.is_none() && r.predicted_n == Some(20))
                    .count();
            }
        }
    }
    let lost_d = d.iter().filter(|s| !s.ok).count();
    let lost_p = p.iter().filter(|s| !s.ok).count();
    println!("## {n} concurrent streamed requests against a local stub upstream ({rounds} rounds, alternated)");
    println!("stub: 20 events 5 ms apart per request; the proxy and the client share this machine's cores\n");
    println!(
        "requests: {} direct, {} proxied; lost (not 200 or not whole): {lost_d} direct, {lost_p} proxied; recorded by the proxy: {recorded} of {}\n",
        d.len(),
        p.len(),
        p.len()
    );
    println!("| metric | direct p50 | proxied p50 | added p50 | direct p99 | proxied p99 | added p99 |");
    println!("|---|---|---|---|---|---|---|");
    for (metric, get) in [("TTFT", (|s: &Sample| s.ttft) as fn(&Sample) -> f64), ("total", |s: &Sample| s.total)] {
        let mut dv: Vec<f64> = d.iter().filter(|s| s.ok).map(get).collect();
        let mut pv: Vec<f64> = p.iter().filter(|s| s.ok).map(get).collect();
        let (d50, p50) = (percentile(&mut dv, 50.0), percentile(&mut pv, 50.0));
        let (d99, p99) = (percentile(&mut dv, 99.0), percentile(&mut pv, 99.0));
        println!(
            "| {metric} | {d50:.1} ms | {p50:.1} ms | {:+.1} ms | {d99:.1} ms | {p99:.1} ms | **{:+.1} ms** |",
            p50 - d50,
            p99 - d99
        );
    }
    if lost_p > 0 || recorded != p.len() {
        eprintln!("FAILED: the proxy lost or did not record requests");
        std::process::exit(1);
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match &a.server {
        Some(url) => real_server(&rt, url, a.pairs),
        None => println!("(no --server URL: the real-server comparison is skipped)\n"),
    }
    concurrent(&rt, a.concurrency, a.rounds);
}
