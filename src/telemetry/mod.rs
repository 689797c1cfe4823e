//! Stage 5: server-side truth from llama-server: `/metrics` counter deltas around each agent
//! run, `/props` and `/slots` at run start, and the recording proxy between agent and server.
//!
//! `client` talks to the server's own endpoints, `metrics` turns scrapes into deltas,
//! `props` and `fingerprint` describe the server, `proxy` (with `capture` and `conversation`)
//! records the agent's requests, `cache` prepares the prompt cache, `summary` sums a trial up.

pub(crate) mod cache;
pub mod capture;
pub mod client;
pub(crate) mod conversation;
pub(crate) mod fingerprint;
pub mod metrics;
pub(crate) mod props;
pub mod proxy;
pub(crate) mod summary;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::Error;
use crate::model::CacheState;
use crate::store::{ServerInfo, TrialTelemetry};
use client::Server;
use metrics::Counters;
use proxy::{FirstRequest, Proxy};

/// What the runner hands telemetry about the trial about to start.
#[derive(Debug, Clone)]
pub struct TrialContext {
    /// The agent's name: a warm-up copies the shape of its previous trial's first request.
    pub agent: String,
    pub prompt: String,
}

/// Telemetry for one run against one server: started once, then begin/end around each trial.
pub struct RunTelemetry {
    server: Server,
    info: ServerInfo,
    cache_state: CacheState,
    proxy: Proxy,
    trial: Option<OpenTrial>,
    /// Each agent's latest prompt and first request, for `warm` warm-ups.
    shapes: BTreeMap<String, (String, FirstRequest)>,
}

struct OpenTrial {
    before: Result<Counters, String>,
    started: Instant,
    notes: Vec<String>,
    agent: String,
    prompt: String,
}

/// How long `end_trial` waits for requests still running when the agent ended.
const END_GRACE: Duration = Duration::from_secs(5);

impl RunTelemetry {
    /// Waits for `/health`, records `/props` and `/slots`, starts the recording proxy.
    pub fn start(server_url: &str, cache_state: CacheState) -> Result<RunTelemetry> {
        let server = Server::new(server_url)?;
        server.wait_healthy(client::LOAD_WAIT, client::CONNECT_WAIT)?;
        let mut info = props::read(&server)
            .map_err(|why| Error::Environment(format!("the llama-server at {} is not usable: {why}", server.root())))?;
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
        let proxy = Proxy::start(server.root(), SocketAddr::from(([127, 0, 0, 1], 0)), None)?;
        Ok(RunTelemetry { server, info, cache_state, proxy, trial: None, shapes: BTreeMap::new() })
    }

    /// What the server said about itself at run start.
    pub fn info(&self) -> ServerInfo {
        self.info.clone()
    }

    /// The address agents are pointed at (the proxy), e.g. `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.proxy.base_url()
    }

    /// Prepares the cache as asked and snapshots the counters before the agent starts.
    pub fn begin_trial(&mut self, ctx: &TrialContext) {
        let mut notes = Vec::new();
        match self.cache_state {
            CacheState::Shared => {}
            CacheState::Cold => {
                let slots = self.info.total_slots.unwrap_or(1);
                if let Err(why) = cache::erase_all(&self.server, slots) {
                    notes.push(format!("cache state cold: erasing the slots failed, so the cache was not cold: {why}"));
                }
            }
            CacheState::Warm => {
                let shape = self.shapes.get(&ctx.agent).map(|(p, f)| (p.as_str(), f));
                if let Err(why) = cache::warm(&self.server, shape, &ctx.prompt) {
                    notes.push(format!("cache state warm: the warm-up failed, so the cache was not warm: {why}"));
                }
            }
        }
        let before = metrics::scrape(&self.server);
        self.proxy.begin(true);
        self.trial = Some(OpenTrial {
            before,
            started: Instant::now(),
            notes,
            agent: ctx.agent.clone(),
            prompt: ctx.prompt.clone(),
        });
    }

    /// Snapshots the counters again and collects the proxy's requests for this trial: the
    /// telemetry part of its record.
    pub fn end_trial(&mut self) -> TrialTelemetry {
        // The agent's time ends now, not after the wait below for requests it left running.
        let agent_s = self.trial.as_ref().map(|open| open.started.elapsed().as_secs_f64());
        let collected = self.proxy.end(END_GRACE);
        let (Some(open), Some(agent_s)) = (self.trial.take(), agent_s) else {
            return TrialTelemetry {
                missing: vec!["telemetry was not started for this trial".into()],
                ..Default::default()
            };
        };
        let after = metrics::scrape(&self.server);
        let mut missing = open.notes;
        let server = match (&open.before, &after) {
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
        };
        let records = collected.records;
        missing.extend(summary::request_notes(&records, collected.unfinished, server.as_ref()));
        if self.cache_state == CacheState::Cold {
            if let Some(c) = records.first().and_then(|r| r.cache_n).filter(|&c| c > 0) {
                missing.push(format!(
                    "cache state cold: the first request found {c} tokens cached although every slot was erased: \
                     llama-server's host-memory prompt cache kept them; start it with --cache-ram 0 for cold trials"
                ));
            }
        }
        if let Some(first) = collected.first_request {
            self.shapes.insert(open.agent, (open.prompt, first));
        }
        let timing = Some(summary::time_split(&records, agent_s));
        TrialTelemetry { server, requests: records, timing, missing, ..Default::default() }
    }
}
