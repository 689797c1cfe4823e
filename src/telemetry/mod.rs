//! Stage 5: server-side truth from llama-server: `/metrics` counter deltas around each agent
//! run, `/props` and `/slots` at run start, and the recording proxy between agent and server.

pub mod proxy;

use anyhow::Result;

use crate::store::{RequestRecord, ServerDelta, ServerInfo, TimeSplit};

/// How the prompt cache is prepared before each trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// Leave the server as it is.
    Shared,
    /// One warm-up request shaped like the agent's first prompt before each trial.
    Warm,
    /// Erase every slot before each trial (needs `--slot-save-path` on the server).
    Cold,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Shared => "shared",
            CacheState::Warm => "warm",
            CacheState::Cold => "cold",
        }
    }
}

/// What the runner hands telemetry about the trial about to start.
#[derive(Debug, Clone)]
pub struct TrialContext {
    pub trial_id: String,
    pub prompt: String,
}

/// Telemetry of one trial, merged into its `TrialRecord`.
#[derive(Debug, Clone, Default)]
pub struct TrialTelemetry {
    pub server: Option<ServerDelta>,
    pub requests: Vec<RequestRecord>,
    pub timing: Option<TimeSplit>,
    /// What is missing and why; empty when everything was measured.
    pub missing: Vec<String>,
}

/// Telemetry for one run against one server: started once, then begin/end around each trial.
pub struct RunTelemetry {
    _private: (),
}

impl RunTelemetry {
    /// Waits for `/health`, records `/props` and `/slots`, starts the recording proxy.
    pub fn start(_server_url: &str, _cache_state: CacheState) -> Result<RunTelemetry> {
        anyhow::bail!("server telemetry is not built yet")
    }

    /// What the server said about itself at run start.
    pub fn info(&self) -> ServerInfo {
        ServerInfo::default()
    }

    /// The address agents are pointed at (the proxy), e.g. `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        String::new()
    }

    /// Prepares the cache as asked and snapshots the counters before the agent starts.
    pub fn begin_trial(&mut self, _ctx: &TrialContext) {}

    /// Snapshots the counters again and collects the proxy's requests for this trial.
    pub fn end_trial(&mut self) -> TrialTelemetry {
        TrialTelemetry::default()
    }
}
