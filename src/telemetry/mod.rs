//! Stage 5: server-side truth: the server's kind, detected at run start; its `/metrics`
//! counter deltas around each agent run (around the whole run when trials overlap) where the
//! kind has them (llama-server, vLLM, SGLang); llama-server's `/props` and `/slots`; and a
//! recording proxy of its own between each trial's agent and the server, which reads what any
//! answer says (`usage`, `timings`, Ollama's native durations, the stream's arrival times).
//!
//! `client` talks to the server's own endpoints, `kind` tells which server it is, `metrics`
//! turns scrapes into deltas, `load` samples its running and waiting requests over the run,
//! `props` and `fingerprint` describe the server, `gaps` says
//! what a kind cannot give, `proxy` (with `capture` and `conversation`)
//! records the agent's requests (`answer` and `transcript`: what was said, for the trial's
//! transcript), `cache` prepares the prompt cache, `summary` sums a trial up.

pub(crate) mod answer;
pub(crate) mod cache;
pub mod capture;
pub mod client;
pub(crate) mod conversation;
pub(crate) mod fingerprint;
pub(crate) mod gaps;
pub mod kind;
pub(crate) mod load;
pub mod metrics;
pub(crate) mod props;
pub mod proxy;
pub(crate) mod summary;
pub(crate) mod tls;
pub mod transcript;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::Error;
use crate::model::{CacheState, ServerKind};
use crate::store::{ServerDelta, ServerInfo, ServerLoad, TrialTelemetry};
use client::Server;
use metrics::Counters;
use proxy::{FirstRequest, Proxy};

/// What the runner hands telemetry about the trial about to start.
#[derive(Debug, Clone)]
pub struct TrialContext {
    /// The agent's name: a warm-up copies the shape of its previous trial's first request.
    pub agent: String,
    pub prompt: String,
    /// Whether other trials may run beside this one: then the server's counters also count
    /// theirs, and the trial's server figures are summed from its own requests.
    pub overlapping: bool,
    /// The slot the trial owns (every request pinned to it): `cold` erases it and `warm`
    /// warms it. `None`: the server chooses, and `cold` erases every slot.
    pub pinned_slot: Option<u32>,
    /// Where the trial's transcript is written, and its cap in bytes; `None`: not recorded.
    pub transcript: Option<(std::path::PathBuf, u64)>,
}

/// Telemetry for one run against one server: started once; each trial opens a [`TrialProbe`]
/// of its own. Shared by the trials running at once.
pub struct RunTelemetry {
    server: Server,
    kind: ServerKind,
    info: ServerInfo,
    cache_state: CacheState,
    /// The counters when the run started: the run's own deltas are taken from them.
    at_start: Result<Counters, String>,
    started: chrono::DateTime<chrono::Utc>,
    /// Each agent's latest prompt and first request, for `warm` warm-ups.
    shapes: Mutex<BTreeMap<String, (String, FirstRequest)>>,
    /// Its running and waiting requests, sampled while the run goes (where `/metrics` has them).
    load: Option<load::Sampler>,
}

/// One trial's telemetry: its own recording proxy (its own port, so that every request is
/// recorded in the trial that made it), and the counters before it when it runs alone.
pub struct TrialProbe<'a> {
    run: &'a RunTelemetry,
    proxy: std::sync::Arc<Proxy>,
    before: Option<Result<Counters, String>>,
    started: Instant,
    notes: Vec<String>,
    ctx: TrialContext,
}

/// How long `end_trial` waits for requests still running when the agent ended.
const END_GRACE: Duration = Duration::from_secs(5);

impl RunTelemetry {
    /// Waits for the server to be ready, tells its kind (or takes the one named), records
    /// what it says about itself (llama-server: `/props` and `/slots`) and the counters.
    pub fn start(server_url: &str, cache_state: CacheState, named: Option<ServerKind>) -> Result<RunTelemetry> {
        let server = Server::new(server_url)?;
        server.wait_healthy(client::LOAD_WAIT, client::CONNECT_WAIT)?;
        let models = server.get("/v1/models");
        server.check_key(&models)?;
        let detected = match named {
            Some(kind) => kind::named(kind, &models),
            None => kind::detect(&server, &models),
        };
        let kind = detected.kind;
        if kind != ServerKind::LlamaServer && cache_state != CacheState::Shared {
            return Err(Error::BadInput(format!(
                "--cache-state {} needs llama-server's slots (erased or warmed one by one), but the server at {} is \
                 {kind} ({}): use --cache-state shared",
                cache_state.as_str(),
                server.root(),
                detected.evidence
            ))
            .into());
        }
        let mut info = if kind == ServerKind::LlamaServer {
            let mut info = props::read(&server).map_err(|why| {
                Error::Environment(format!("the llama-server at {} is not usable: {why}", server.root()))
            })?;
            info.kind = Some(kind);
            info.kind_evidence = Some(detected.evidence.clone());
            info.version = detected.version.clone().or_else(|| info.build_info.clone());
            info
        } else {
            props::from_detected(server.root(), &detected)
        };
        if let Some(path) = info.model_path.clone() {
            let cache = fingerprint::cache_file();
            if let Some((size, sha)) = fingerprint::model_file(Path::new(&path), cache.as_deref()) {
                info.model_size_bytes = Some(size);
                info.model_sha256 = Some(sha);
            }
        }
        if info.total_slots.is_none() {
            info.total_slots = info.slots.as_ref().and_then(|s| s.as_array()).map(|a| a.len() as u32);
        }
        if cache_state == CacheState::Cold {
            cache::check_cold(&server)?;
        }
        let at_start = metrics::scrape(&server, kind);
        let started = chrono::Utc::now();
        let load = at_start.is_ok().then(|| load::Sampler::start(&server, kind, load::INTERVAL)).flatten();
        let shapes = Mutex::new(BTreeMap::new());
        Ok(RunTelemetry { server, kind, info, cache_state, at_start, started, shapes, load })
    }

    /// The server's running and waiting requests over the run so far, where its `/metrics`
    /// has them.
    pub fn load(&self) -> Option<ServerLoad> {
        self.load.as_ref().and_then(load::Sampler::load)
    }

    /// The server's kind, as detected or named.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// What the server said about itself at run start.
    pub fn info(&self) -> ServerInfo {
        self.info.clone()
    }

    pub fn url(&self) -> &str {
        self.server.root()
    }

    /// Whether the server still answers (`/health`, or `/v1/models` where there is no
    /// `/health`) within a few seconds.
    pub fn answers(&self) -> bool {
        self.server.ready_probe().1.status().is_some_and(|s| s < 500)
    }

    /// When the counters of [`RunTelemetry::run_delta`] start.
    pub fn since(&self) -> chrono::DateTime<chrono::Utc> {
        self.started
    }

    /// The server's counters over the run so far: its deltas since the run started.
    pub fn run_delta(&self) -> Result<ServerDelta, String> {
        let before = self.at_start.as_ref().map_err(|why| format!("at run start, {why}"))?;
        let after = metrics::scrape(&self.server, self.kind).map_err(|why| format!("at run end, {why}"))?;
        metrics::delta(before, &after)
    }

    /// Prepares the cache as asked, starts the trial's own proxy and snapshots the counters
    /// (when the trial runs alone) before the agent starts.
    pub fn begin_trial(&self, ctx: &TrialContext) -> Result<TrialProbe<'_>> {
        let mut notes = Vec::new();
        match self.cache_state {
            CacheState::Shared => {}
            CacheState::Cold => {
                let erased = match ctx.pinned_slot {
                    Some(slot) => cache::erase(&self.server, slot),
                    None => cache::erase_all(&self.server, self.info.total_slots.unwrap_or(1)),
                };
                if let Err(why) = erased {
                    notes.push(format!("cache state cold: erasing the slots failed, so the cache was not cold: {why}"));
                }
            }
            CacheState::Warm => {
                let shape = self.shapes.lock().unwrap().get(&ctx.agent).cloned();
                let shape = shape.as_ref().map(|(p, f)| (p.as_str(), f));
                if let Err(why) = cache::warm(&self.server, shape, &ctx.prompt, ctx.pinned_slot) {
                    notes.push(format!("cache state warm: the warm-up failed, so the cache was not warm: {why}"));
                }
            }
        }
        let llama = self.kind == ServerKind::LlamaServer;
        let inject = proxy::Inject {
            verbose: llama,
            id_slot: ctx.pinned_slot.filter(|_| llama),
            llama_server: llama,
            api_key: self.server.api_key().map(str::to_string),
            openai_only: self.kind == ServerKind::Other,
        };
        let proxy = Proxy::start_for_trial(self.server.root(), inject)?;
        let proxy = std::sync::Arc::new(proxy);
        let before = (!ctx.overlapping && self.at_start.is_ok()).then(|| metrics::scrape(&self.server, self.kind));
        proxy.begin(true);
        if let Some((_, cap)) = &ctx.transcript {
            proxy.record_transcript(*cap);
        }
        Ok(TrialProbe { run: self, proxy, before, started: Instant::now(), notes, ctx: ctx.clone() })
    }
}

impl TrialProbe<'_> {
    /// The address the trial's agent is pointed at (its proxy), e.g. `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.proxy.base_url()
    }

    /// Counts the requests the agent has sent so far (for progress lines).
    pub fn request_count(&self) -> Box<dyn Fn() -> usize + Send + Sync> {
        let proxy = self.proxy.clone();
        Box::new(move || proxy.requests())
    }

    /// Collects the proxy's requests and, for a trial that ran alone, the counters' deltas:
    /// the telemetry part of its record.
    pub fn end(self) -> TrialTelemetry {
        // The agent's time ends now, not after the wait below for requests it left running.
        let agent_s = self.started.elapsed().as_secs_f64();
        let collected = self.proxy.end(END_GRACE);
        let run = self.run;
        let mut missing = self.notes;
        let forbidden = self.proxy.forbidden();
        if forbidden > 0 {
            missing.push(format!(
                "{forbidden} request(s) of the agent to the server's slot actions (/slots: erase, save, restore) were \
                 refused: they would reach other trials' slots"
            ));
        }
        let refused = self.proxy.refused();
        if refused > 0 {
            missing.push(format!(
                "{refused} request(s) reached this trial's proxy without its path token and were refused: \
                 another process on this machine found its port, or the agent called it without the base URL it was \
                 given ($FIXBENCH_BASE_URL holds the token)"
            ));
        }
        let mut records = collected.records;
        gaps::fill_uncached(run.kind, &mut records);
        let server = match self.before {
            Some(before) => {
                let after = metrics::scrape(&run.server, run.kind);
                if let Ok(c) = &after {
                    missing.extend(metrics::not_counted(c));
                }
                let mut delta = counter_delta(&before, &after, &mut missing);
                // Counters that time no decode (SGLang): the rate is the requests' own.
                if let Some(d) = delta.as_mut().filter(|d| !d.knows("predicted_seconds")) {
                    let own = summary::from_requests(&records);
                    d.decode_tps = own.decode_tps;
                    d.predicted_seconds = own.predicted_seconds;
                    if own.knows("predicted_seconds") {
                        d.unknown.retain(|f| f != "predicted_seconds");
                    }
                }
                delta
            }
            None => {
                match &run.at_start {
                    // Trials overlap: the counters also count the neighbours'. The trial's
                    // figures are its own requests'; a server that went away is still noticed.
                    Ok(_) => {
                        if let Err(why) = metrics::scrape(&run.server, run.kind) {
                            missing.push(format!(
                                "server counters unknown: at trial end, {why}; the server stopped or failed during \
                                 the trial"
                            ));
                        }
                    }
                    // No counters at all (the kind has none, or they are off): said once per
                    // trial, with the reason.
                    Err(why) => missing.push(format!("server counters unknown: {why}")),
                }
                Some(summary::from_requests(&records))
            }
        };
        missing.extend(gaps::of_requests(run.kind, &records));
        missing.extend(summary::request_notes(&records, collected.unfinished, server.as_ref()));
        if run.cache_state == CacheState::Cold {
            if let Some(c) = records.first().and_then(|r| r.cache_n).filter(|&c| c > 0) {
                missing.push(format!(
                    "cache state cold: the first request found {c} tokens cached although its slots were erased: \
                     llama-server's host-memory prompt cache kept them; start it with --cache-ram 0 for cold trials"
                ));
            }
        }
        if let Some(first) = collected.first_request {
            run.shapes.lock().unwrap().insert(self.ctx.agent.clone(), (self.ctx.prompt.clone(), first));
        }
        let timing = Some(summary::time_split(&records, agent_s));
        let transcript = match (collected.transcript, &self.ctx.transcript) {
            (Some(book), Some((path, _))) => match book.write(path) {
                Ok(stats) => Some(stats),
                Err(why) => {
                    missing.push(format!("transcript not kept: {why:#}"));
                    None
                }
            },
            _ => None,
        };
        TrialTelemetry {
            server,
            requests: records,
            timing,
            missing,
            server_url: Some(run.server.root().to_string()),
            pinned_slot: self.ctx.pinned_slot,
            transcript,
        }
    }
}

/// The counters' deltas around a trial that ran alone; what is unknown goes to `missing`.
fn counter_delta(
    before: &Result<Counters, String>,
    after: &Result<Counters, String>,
    missing: &mut Vec<String>,
) -> Option<ServerDelta> {
    match (before, after) {
        (Ok(b), Ok(a)) => match metrics::delta(b, a) {
            Ok(d) => Some(d),
            Err(why) => {
                missing.push(format!("server counters: {why}"));
                None
            }
        },
        (Err(b), Err(a)) if a == b => {
            missing.push(format!("server counters unknown: {b}"));
            None
        }
        (Err(b), _) => {
            missing.push(format!("server counters unknown: at trial start, {b}"));
            None
        }
        (_, Err(a)) => {
            missing.push(format!(
                "server counters unknown: at trial end, {a}; the server stopped or failed during the trial"
            ));
            None
        }
    }
}
