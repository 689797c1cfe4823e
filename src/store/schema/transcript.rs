//! A trial's conversation as the recording proxy saw it (`trials/<trial>/transcript.jsonl`,
//! one [`TranscriptEntry`] per generation request, in the order their answers ended). Each
//! entry keeps only the prompt items that are new since the previous turn of the same
//! conversation, so a 40-turn session is not stored 40 times: the whole prompt of a turn is
//! the previous turn's first `kept` items followed by `new`.

use serde::{Deserialize, Serialize};

use super::RequestRecord;

/// File name of a trial's transcript inside its folder.
pub const TRANSCRIPT_FILE: &str = "transcript.jsonl";

/// One generation request: its timings, what its prompt added, and the answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TranscriptEntry {
    /// The request's record, as in the trial's `requests` (timings, conversation, turn, slot).
    #[serde(flatten)]
    pub request: RequestRecord,
    /// Leading prompt items shared with the previous turn of this conversation (0 on a first
    /// turn), not stored again.
    pub kept: usize,
    /// The prompt items after those, as the agent sent them: chat messages
    /// (`{"role": …, "content": …}`), and `{"tools": […]}`, `{"system": …}`,
    /// `{"instructions": …}` or `{"prompt": "line"}` where the endpoint has them.
    pub new: Vec<serde_json::Value>,
    pub answer: Answer,
}

/// What the server answered: text, reasoning and tool calls, from the JSON body or pieced
/// together from a stream's events.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why the answer ended (`stop`, `length`, `tool_calls`, `end_turn`…), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, not always valid).
    pub arguments: String,
}

/// What a trial's transcript holds and what its cap dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TranscriptStats {
    /// Entries written.
    pub turns: u32,
    /// Bytes of `transcript.jsonl`.
    pub bytes: u64,
    /// Entries left out once the cap was reached, and their size.
    pub dropped_turns: u32,
    pub dropped_bytes: u64,
}
