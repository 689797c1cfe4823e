//! `fixbench proxy`: a recording proxy in front of llama-server for any client, logging one
//! line (and optionally one JSON line) per request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::error::Error;
use crate::settings::{Settings, Sources};
use crate::store::RequestRecord;
use crate::telemetry::client::{Reply, Server};
use crate::telemetry::proxy::{Proxy, Sink};

/// `fixbench proxy`: a recording proxy in front of llama-server for any client.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The llama-server to forward to [default: harness.toml's run.server]
    #[arg(long, env = "FIXBENCH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The harness config file [default: ./harness.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    let settings = Settings::load(&Sources { config: args.config.clone(), ..Default::default() })?;
    let Some(upstream) = args.server.clone().or_else(|| settings.servers(&[]).ok().and_then(|s| s.into_iter().next()))
    else {
        return Err(Error::BadInput(format!(
            "no llama-server to forward to: give --server URL, set FIXBENCH_SERVER, or set `run.server` in {}",
            settings.source()
        ))
        .into());
    };
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
    let server = Server::new(&upstream)?;
    let proxy = Proxy::start(&upstream, args.listen, Some(sink))?;
    proxy.begin(false);
    if let Reply::Unreachable(why) = server.get("/health") {
        eprintln!("warning: no server answers at {} yet ({why}); forwarding anyway", server.root());
    }
    eprintln!(
        "fixbench proxy: clients → {} → {}{}; Ctrl-C stops",
        proxy.base_url(),
        server.root(),
        args.log.as_ref().map(|p| format!("; one JSON line per request in {}", p.display())).unwrap_or_default()
    );
    let cancel = crate::interrupt::cancel_flag();
    while !cancel.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(proxy.end(Duration::from_secs(2)));
    Ok(crate::exit_codes::OK)
}

/// One request as a line: `POST /v1/chat/completions 200 stream ttft 120 ms total 900 ms queued
/// 3 ms slot 0 …` (the wait for a slot and the slot, when known).
pub fn describe(r: &RequestRecord) -> String {
    let mut s = format!("{} {} {} {}", r.start.format("%H:%M:%S"), r.method, r.path, r.status);
    if r.stream {
        s.push_str(" stream");
    }
    if let Some(t) = r.ttft_ms {
        s.push_str(&format!(" ttft {t:.0} ms"));
    }
    s.push_str(&format!(" total {:.0} ms", r.total_ms));
    if let Some(q) = r.queue_ms {
        s.push_str(&format!(" queued {q:.0} ms"));
    }
    if let Some(n) = r.slot {
        s.push_str(&format!(" slot {n}"));
    }
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
    if let Some(ms) = r.abandoned_ms {
        s.push_str(&format!(" ABANDONED at {ms:.0} ms"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" error: {e}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_the_client_left_says_so_in_its_line() {
        let r = RequestRecord {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            total_ms: 900.0,
            prompt_n: Some(30),
            cache_n: Some(0),
            predicted_n: Some(64),
            abandoned_ms: Some(120.4),
            ..Default::default()
        };
        let line = describe(&r);
        assert!(
            line.ends_with("POST /v1/chat/completions 200 total 900 ms prompt 30 cached 0 gen 64 ABANDONED at 120 ms"),
            "{line}"
        );
    }

    #[test]
    fn a_request_that_waited_for_a_slot_says_how_long_and_which() {
        let r = RequestRecord {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            stream: true,
            ttft_ms: Some(1450.0),
            total_ms: 2000.0,
            queue_ms: Some(1204.6),
            slot: Some(1),
            ..Default::default()
        };
        let line = describe(&r);
        assert!(line.ends_with("200 stream ttft 1450 ms total 2000 ms queued 1205 ms slot 1"), "{line}");
    }
}
