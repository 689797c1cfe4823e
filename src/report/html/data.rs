//! The plain data the page embeds as JSON: one [`TrialDetail`] per trial (its own
//! `<script type="application/json">` block, parsed only when the trial is opened), the
//! [`Index`] the filters and trial lists read, and the shared table of prompt items that many
//! trials send alike.

use serde::Serialize;

/// What the trial page shows of one trial.
#[derive(Debug, Clone, Serialize)]
pub struct TrialDetail {
    pub run: String,
    /// `problem/agent/repeat`.
    pub id: String,
    pub problem: String,
    pub agent: String,
    pub repeat: u32,
    pub agent_version: Option<String>,
    /// The argv as run, one line.
    pub command: String,
    pub resolved: bool,
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub total: u32,
    pub baseline: u32,
    pub error: Option<String>,
    pub void: Option<String>,
    pub suspicious: Vec<String>,
    pub timed_out: bool,
    pub exit_code: Option<i32>,
    pub agent_s: f64,
    pub grade_s: f64,
    pub wall_s: f64,
    pub decode_tps: Option<f64>,
    pub prefill_tps: Option<f64>,
    /// Tests that failed on the starter and pass now, and the reverse.
    pub fixed: Vec<String>,
    pub broken: Vec<String>,
    /// Tests that failed or errored, with pytest's message.
    pub failing: Vec<FailingTest>,
    pub diff: Excerpt,
    pub stdout: Excerpt,
    pub stderr: Excerpt,
    /// Output the agent wrote beyond the harness's cap, never stored (stdout, stderr).
    pub output_dropped: (u64, u64),
    pub requests: Vec<Req>,
    pub telemetry_missing: Vec<String>,
    pub transcript: Transcript,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailingTest {
    pub name: String,
    /// `failed` or `error`.
    pub outcome: &'static str,
    pub message: Option<String>,
}

/// What a stored file holds, or why it is not there.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Excerpt {
    /// `ok`, `missing` (the record names it, the file is gone) or `not recorded`.
    pub state: &'static str,
    pub head: String,
    /// The file's end, when its middle was cut; empty otherwise.
    pub tail: String,
    /// Bytes left out between `head` and `tail` (or after `head`).
    pub cut: u64,
    pub bytes: u64,
}

/// One request's figures, as an array (the page holds thousands):
/// `[offset_ms, total_ms, queue_ms, ttft_ms, prompt_n, prompt_ms, predicted_n, predicted_ms,
/// cache_n, slot, conversation, turn, status]`, milliseconds to 0.1, `null` where unknown.
#[derive(Debug, Clone, Serialize)]
#[allow(clippy::type_complexity)]
pub struct Req(
    pub f64,
    pub f64,
    pub Option<f64>,
    pub Option<f64>,
    pub Option<u64>,
    pub Option<f64>,
    pub Option<u64>,
    pub Option<f64>,
    pub Option<u64>,
    pub Option<u32>,
    pub Option<u32>,
    pub Option<u32>,
    pub u16,
);

/// A trial's transcript as embedded: its turns within the caps, and what the caps cut.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transcript {
    /// `ok`, `missing`, `not recorded` or `unreadable`.
    pub state: &'static str,
    pub turns: Vec<Turn>,
    /// Turns left out of the page once the trial's share was spent.
    pub dropped_turns: u32,
    /// Texts cut at the per-text cap, and the bytes cut from them.
    pub cut_texts: u32,
    pub cut_bytes: u64,
    /// Lines of the file that did not read as a transcript entry.
    pub bad_lines: u32,
    /// What the recorder itself dropped (its cap), from the trial's stats.
    pub recorder_dropped_turns: u32,
    /// The command that prints the whole transcript, when anything was cut.
    pub hint: Option<String>,
}

/// One generation request of the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    pub req: Req,
    pub error: Option<String>,
    /// Leading prompt items shared with the conversation's previous turn, not repeated.
    pub kept: usize,
    pub new: Vec<Item>,
    pub answer: crate::store::Answer,
}

/// A prompt item: inline, or a reference into the page's shared table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Item {
    /// The key of an item in the shared table.
    #[serde(rename = "r")]
    Ref(String),
    #[serde(rename = "v")]
    Inline(serde_json::Value),
}

/// What the filters and the cell lists need of every trial, without opening it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Index {
    pub runs: Vec<String>,
    /// Test names and messages, each once; trials refer to them by position.
    pub strings: Vec<String>,
    pub trials: Vec<IndexTrial>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexTrial {
    /// Position in `Index::runs`.
    pub run: usize,
    pub problem: String,
    pub agent: String,
    pub repeat: u32,
    /// Its matrix column (`--by`).
    pub group: String,
    pub resolved: bool,
    pub passed: u32,
    pub total: u32,
    /// The failing tests' names and messages and the trial's error, as `Index::strings` positions.
    pub text: Vec<u32>,
}
