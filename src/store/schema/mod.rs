//! The on-disk results schema (`results/<run_id>/run.json`, one `trials/<trial>/trial.json`
//! per finished trial, and a finished run's `trials.json`), documented in `docs/results.md`.
//! Plain data passed between the pipeline's stages and read back by every report: a trial's
//! record is composed of what its stages produced ([`TrialGrade`], [`AgentRun`],
//! [`TrialTelemetry`]), each written flat into the trial's JSON object.

mod flat;
mod plan;
mod transcript;

pub use plan::{first_difference, MergeRecord, MergedRun, PlanRecord};
pub use transcript::{Answer, ToolCall, TranscriptEntry, TranscriptStats, TRANSCRIPT_FILE};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{BuiltinAgent, CacheState, GradeIsolation, Isolation, ServerKind, TrialKey};

/// Bumped whenever a field changes meaning or is removed (adding optional fields keeps it).
/// 2: each trial in a file of its own, `run.json` only the header; built-in agents typed.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub fixbench_version: String,
    pub git_commit: Option<String>,
    pub host: Host,
    pub labels: BTreeMap<String, String>,
    pub config: RunConfig,
    /// What the server said about itself at run start; `None` when the run had no server.
    pub server: Option<ServerInfo>,
    /// Each server of the run's pool: its `/metrics` deltas over the whole run (with trials
    /// overlapping, these are the exact server figures; a trial's own are its requests'),
    /// how many trials it ran, and why it left the pool if it did. Empty without a server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerUse>,
    /// The whole plan and what decides its results, hashed; which slice of it this run ran.
    /// Absent in runs made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    /// Set on a run made by `fixbench merge`: the runs it was made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeRecord>,
    /// The finished trials, in the order they started. Not in `run.json` since schema 2 (each
    /// is in its own file, and a finished run's all in `trials.json`); `Store::load` puts them
    /// here.
    #[serde(default)]
    pub trials: Vec<TrialRecord>,
}

/// `run.json` since schema 2: the record less its trials, each of which is in a file of its own.
#[derive(Serialize)]
pub(super) struct RunHeader<'a> {
    schema_version: u32,
    run_id: &'a str,
    started_at: &'a DateTime<Utc>,
    ended_at: &'a Option<DateTime<Utc>>,
    status: RunStatus,
    fixbench_version: &'a str,
    git_commit: &'a Option<String>,
    host: &'a Host,
    labels: &'a BTreeMap<String, String>,
    config: &'a RunConfig,
    server: &'a Option<ServerInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    servers: &'a Vec<ServerUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: &'a Option<PlanRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merged: &'a Option<MergeRecord>,
}

impl<'a> From<&'a RunRecord> for RunHeader<'a> {
    fn from(run: &'a RunRecord) -> Self {
        // Every field named, so that a new one cannot be left out of the header unnoticed.
        let RunRecord {
            schema_version: _,
            run_id,
            started_at,
            ended_at,
            status,
            fixbench_version,
            git_commit,
            host,
            labels,
            config,
            server,
            servers,
            plan,
            merged,
            trials: _,
        } = run;
        RunHeader {
            schema_version: SCHEMA_VERSION,
            run_id,
            started_at,
            ended_at,
            status: *status,
            fixbench_version,
            git_commit,
            host,
            labels,
            config,
            server,
            servers,
            plan,
            merged,
        }
    }
}

/// One server of a run's pool, over the whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerUse {
    pub url: String,
    /// The machine whose run used it, in a merged run (each shard's servers are kept apart,
    /// never summed: two shards' `http://127.0.0.1:8080` are two servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub total_slots: Option<u32>,
    /// Trials that ran against it (finished or not).
    pub trials: u32,
    /// `/metrics` deltas from run start to run end (or to when it left the pool).
    pub metrics: Option<ServerDelta>,
    /// When those deltas begin: the start of the run's last session (a resumed run's earlier
    /// trials are not in them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Why `metrics` is missing, when it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Set when the server stopped answering mid-run and was taken out of the pool: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
    /// Its running and waiting requests, sampled from `/metrics` gauges over the session;
    /// absent where the kind has none (or its `/metrics` is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<ServerLoad>,
}

/// A server's load over a run, from its gauges (llama-server `requests_processing` and
/// `requests_deferred`, vLLM `num_requests_running` and `num_requests_waiting`, SGLang
/// `num_running_reqs` and `num_queue_reqs`), read every `interval_ms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerLoad {
    pub samples: u32,
    /// Readings that failed (the server did not answer, or the page lacked the gauges).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_samples: u32,
    pub interval_ms: u32,
    pub peak_running: f64,
    pub peak_waiting: f64,
    pub mean_running: f64,
    pub mean_waiting: f64,
    /// The share of readings with any request waiting.
    pub waiting_share: f64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Finished,
    Interrupted,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub os: String,
    pub kernel: Option<String>,
    pub cpu: Option<String>,
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub hostname: Option<String>,
}

/// The resolved configuration a run was started with: enough to resume it exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub problems_dir: String,
    pub problems: Vec<String>,
    pub agents: Vec<AgentConfig>,
    pub repeat: u32,
    pub timeout_s: f64,
    pub python: String,
    pub isolation: Isolation,
    /// How pytest was contained while grading; absent in runs made before grading was
    /// contained (they graded unsandboxed).
    #[serde(default)]
    pub grade_isolation: Option<GradeIsolation>,
    /// The grading time limit in seconds; absent in older runs (300).
    #[serde(default)]
    pub grade_timeout_s: Option<f64>,
    pub cache_state: CacheState,
    pub server_url: Option<String>,
    pub server_label: Option<String>,
    /// The model name agents were told to use (`{model}`).
    #[serde(default)]
    pub model: Option<String>,
    /// Every server of the pool when there were several (`server_url` is the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Trials run at once (`--jobs`); absent in runs made before it existed (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentConfig {
    pub name: String,
    /// What runs: `"builtin": "null"` or `"command": [words]` in the JSON object.
    #[serde(flatten)]
    pub program: AgentProgram,
    pub env: BTreeMap<String, String>,
    pub timeout_s: f64,
}

/// What an agent runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum AgentProgram {
    /// One of fixbench's own agents.
    Builtin(BuiltinAgent),
    /// A command template's words, placeholders unfilled.
    Command(Vec<String>),
}

/// Schema 1 wrote a built-in agent as the one-word command `builtin:null` (or `builtin:oracle`).
fn v1_builtin(command: &[String]) -> Option<BuiltinAgent> {
    match command {
        [word] => word.strip_prefix("builtin:").and_then(BuiltinAgent::named),
        _ => None,
    }
}

impl RunRecord {
    /// The kind of server the run was measured on: llama-server for records made before
    /// other kinds were told apart (and for runs without a server, which read none).
    pub fn server_kind(&self) -> ServerKind {
        self.server.as_ref().and_then(|s| s.kind).unwrap_or(ServerKind::LlamaServer)
    }

    /// Brings a record read from an older schema to this one, in memory: schema 1 wrote the
    /// built-in agents as commands (`builtin:null`), in the configuration and in each trial.
    pub fn upgrade(&mut self) {
        if self.schema_version < 2 {
            for a in &mut self.config.agents {
                if let AgentProgram::Command(words) = &a.program {
                    if let Some(builtin) = v1_builtin(words) {
                        a.program = AgentProgram::Builtin(builtin);
                    }
                }
            }
            for t in &mut self.trials {
                if v1_builtin(&t.command).is_some() {
                    t.command.clear();
                }
            }
        }
        self.schema_version = SCHEMA_VERSION;
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    pub url: String,
    /// What kind of server it is; absent in runs made before kinds were detected (those
    /// were all llama-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ServerKind>,
    /// What the kind was told by: `owned_by "vllm" in /v1/models, confirmed by /version`,
    /// or `named with --server-kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_evidence: Option<String>,
    /// The server's own version, where it says it (`/version`, `/server_info`, `/api/version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub label: Option<String>,
    pub model_path: Option<String>,
    pub model_alias: Option<String>,
    /// Parsed from the model file name (`Qwen3-8B-Q4_K_M.gguf` → `Qwen3-8B`); labels override.
    pub model: Option<String>,
    pub quant: Option<String>,
    pub total_slots: Option<u32>,
    pub n_ctx_per_slot: Option<u64>,
    pub build_info: Option<String>,
    pub chat_template_sha256: Option<String>,
    pub model_size_bytes: Option<u64>,
    pub model_sha256: Option<String>,
    /// The server's command-line flags, when fixbench started it.
    pub flags: Option<Vec<String>>,
    /// `/props` and `/slots` as the server returned them.
    pub props: Option<serde_json::Value>,
    pub slots: Option<serde_json::Value>,
}

/// One finished trial: which it was, then what each stage of it produced. Its JSON object is
/// flat, the parts' fields side by side (read through [`flat::TrialFile`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "flat::TrialFile")]
pub struct TrialRecord {
    /// `problem/agent/repeat`: unique within a run.
    pub id: String,
    pub problem: String,
    pub agent: String,
    pub repeat: u32,
    /// The argv as run, with the prompt argument shown as `{prompt}` (its text is PROBLEM.md);
    /// empty for a built-in agent, which runs inside fixbench.
    pub command: Vec<String>,
    pub agent_version: Option<String>,
    pub isolation: Isolation,
    pub cache_state: CacheState,
    pub server_label: Option<String>,
    pub started_at: DateTime<Utc>,
    /// The machine that ran it, in a merged run (in any other, the run's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub grade: TrialGrade,
    #[serde(flatten)]
    pub agent_run: AgentRun,
    /// Null, or one sentence on what went wrong with the agent run or grading.
    pub error: Option<String>,
    pub wall_s: f64,
    pub paths: TrialPaths,
    #[serde(flatten)]
    pub telemetry: TrialTelemetry,
}

/// What grading found: the frozen tests' outcomes, against the starter's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TrialGrade {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub total: u32,
    /// What the starter passes.
    pub baseline: u32,
    pub resolved: bool,
    /// Tests that failed on the starter and pass now.
    pub fixed: Vec<String>,
    /// Tests that passed on the starter and fail now.
    pub broken: Vec<String>,
    pub tests: Vec<TestResult>,
    /// Set when the grade is not believed: the JUnit report, fixbench's own report channel and
    /// pytest's summary disagreed (the reasons follow). A void trial is never resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void: Option<String>,
    /// Lines of the agent's change that reach for the grader (pytest, atexit, trace hooks,
    /// os._exit, sys.argv, frames): evidence for a reader; the grade stands unless void.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suspicious: Vec<String>,
    /// Seconds pytest took.
    pub grade_s: f64,
}

/// What the agent's run did, and what it said it used.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentRun {
    pub timed_out: bool,
    pub exit_code: Option<i32>,
    /// False when the agent's program could not be started at all (not found, not installed,
    /// not executable); absent in older results, where it reads as true.
    pub agent_started: bool,
    pub agent_s: f64,
    pub output: OutputStats,
    /// Usage the agent reported itself (tokens, turns), when its preset knows how to read it.
    pub agent_usage: Option<serde_json::Value>,
}

/// What the server and the recording proxy saw of one trial.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TrialTelemetry {
    /// `/metrics` counter deltas around the agent run; `None` when there was no server.
    pub server: Option<ServerDelta>,
    /// Every request the agent made through the recording proxy.
    pub requests: Vec<RequestRecord>,
    pub timing: Option<TimeSplit>,
    /// What telemetry is missing for this trial and why (never silently zero).
    #[serde(rename = "telemetry_missing")]
    pub missing: Vec<String>,
    /// The server the trial ran against (one of the run's pool); `None` without a server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// The slot every request of the trial was pinned to (`id_slot`), under `--cache-state
    /// cold|warm` with trials running at once; `None`: the server chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_slot: Option<u32>,
    /// What the trial's transcript holds (`paths.transcript`) and what its cap dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<TranscriptStats>,
}

/// An agent that exits non-zero sooner than this most likely never got to work (a typo, a
/// missing file): its trials are flagged in tables.
pub const QUICK_EXIT_S: f64 = 1.0;

impl ServerDelta {
    /// Whether `field` (`prompt_tokens`, `cached_tokens`, `prompt_seconds`, `predicted_tokens`,
    /// `predicted_seconds`, `n_decode`) is known.
    pub fn knows(&self, field: &str) -> bool {
        !self.unknown.iter().any(|u| u == field)
    }
}

impl TrialRecord {
    pub fn key(&self) -> TrialKey {
        TrialKey { problem: self.problem.clone(), agent: self.agent.clone(), repeat: self.repeat }
    }

    /// What tables and progress lines flag about the agent's run: it could not start, or it
    /// failed within [`QUICK_EXIT_S`] (`exited in 0.2 s (code 2)`); `None` otherwise.
    pub fn agent_flag(&self) -> Option<String> {
        let run = &self.agent_run;
        if !run.agent_started {
            return Some("cannot start".into());
        }
        match run.exit_code {
            Some(code) if code != 0 && run.agent_s < QUICK_EXIT_S => {
                Some(format!("exited in {:.1} s (code {code})", run.agent_s))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestResult {
    /// `tests.test_module::test_name` (pytest's JUnit classname and name).
    pub name: String,
    pub outcome: Outcome,
    /// pytest's failure or error message, first line(s); `None` when it passed.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutputStats {
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Bytes produced beyond the cap, counted and dropped.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
}

/// Paths relative to the run directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrialPaths {
    pub dir: String,
    pub stdout: String,
    pub stderr: String,
    pub diff: String,
    pub junit: String,
    /// The conversation the proxy recorded (`transcript.jsonl`); absent when none was
    /// recorded (no server, `--no-transcript`, or a run made before transcripts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// `/metrics` counter deltas for one trial; rates derived from the counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerDelta {
    pub prompt_tokens: f64,
    pub cached_tokens: f64,
    pub prompt_seconds: f64,
    pub predicted_tokens: f64,
    pub predicted_seconds: f64,
    pub n_decode: f64,
    pub prefill_tps: Option<f64>,
    pub decode_tps: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
    /// The counters' family (`llamacpp`, `vllm`, `sglang`); absent when summed from requests
    /// and in records made before other servers were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Mean time to first token of the requests the server finished, from its own histogram
    /// (vLLM, SGLang); from the requests' arrival times when summed from requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ttft_ms: Option<f64>,
    /// Mean time a request waited in the server's queue, from its own histogram (vLLM, SGLang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_queue_ms: Option<f64>,
    /// Requests the server counted as finished over the delta (vLLM, SGLang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_finished: Option<f64>,
    /// The fields above that are not known (`prompt_tokens`, `prompt_seconds`, …): the server's
    /// kind does not count them, or some requests' answers did not say. Their value is then
    /// what was known (often 0) and is never shown as a figure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
    /// Summed from the trial's own requests, not read from `/metrics`: trials overlapped, so
    /// the server's counters also counted the neighbours' (those are kept per run and server,
    /// in the run's `servers`). `n_decode` is then 0 (unknown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_requests: bool,
}

/// One request through the recording proxy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    pub start: DateTime<Utc>,
    /// Milliseconds since the trial's agent started.
    pub offset_ms: f64,
    pub method: String,
    pub path: String,
    pub stream: bool,
    pub status: u16,
    pub ttft_ms: Option<f64>,
    pub total_ms: f64,
    pub prompt_n: Option<u64>,
    pub cache_n: Option<u64>,
    pub prompt_ms: Option<f64>,
    pub predicted_n: Option<u64>,
    pub predicted_ms: Option<f64>,
    /// Prompt tokens prefilled again although the previous turn of the same conversation
    /// had already processed them.
    pub reprefilled_tokens: Option<u64>,
    pub error: Option<String>,
    /// Which conversation of the trial this request continues (0, 1, …), matched by the
    /// messages it shares with earlier requests; `None` for requests without messages.
    #[serde(default)]
    pub conversation: Option<u32>,
    /// The request's turn within its conversation (0 = first).
    #[serde(default)]
    pub turn: Option<u32>,
    /// Set when the client hung up before the answer ended (an agent killed at its timeout):
    /// milliseconds from the request's start until it did. The proxy still read the rest of
    /// the answer for the server's timings, up to the trial's grace period; `error` says
    /// whether the server finished in time.
    #[serde(default)]
    pub abandoned_ms: Option<f64>,
    /// The slot that served it: llama-server's `__verbose.id_slot`, which the proxy asks for
    /// (`"verbose": true`) on every generation request; `None` when the server did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// Milliseconds the request waited for a slot before the server started on it, apart from
    /// prefill and decode: a stream's time to its response headers (llama-server sends them
    /// when a slot takes the task), a plain answer's `total_ms − prompt_ms − predicted_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_ms: Option<f64>,
    /// Milliseconds from the request's start to the last event of its stream that carried
    /// generated text: with `ttft_ms`, the decode time as the client saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_token_ms: Option<f64>,
    /// How many stream events carried generated text (a server streams about one token per
    /// event): the decode rate's count when the answer gave no token count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_events: Option<u32>,
    /// Milliseconds the server spent loading the model for this request (Ollama's
    /// `load_duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
}

/// Where a trial's agent time went.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeSplit {
    pub requests: u32,
    pub server_wait_s: f64,
    pub agent_own_s: f64,
    /// Prompt tokens of follow-up turns prefilled again although the previous turn had
    /// processed them, over the turns whose answers said what was cached.
    pub reprefilled_tokens: u64,
    /// Follow-up turns whose answers did not say how many tokens were cached (or prompted):
    /// their re-prefill is unknown and left out of `reprefilled_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reprefill_unknown: u32,
    /// Conversations the requests formed (a sub-agent or a restarted history is another one).
    #[serde(default)]
    pub conversations: Option<u32>,
    /// Sums of the requests' `prompt_ms` and `predicted_ms`, in seconds.
    #[serde(default)]
    pub prompt_s: Option<f64>,
    #[serde(default)]
    pub decode_s: Option<f64>,
}
