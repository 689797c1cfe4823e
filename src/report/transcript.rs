//! `fixbench show RUN --trial ID --transcript`: a trial's conversation in the terminal, turn
//! by turn: each request's figures (start, slot, wait, TTFT, prefill, cache, decode), what its
//! prompt added since the conversation's previous turn, and the answer with its tool calls.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::error::Error;
use crate::store::{TranscriptEntry, TrialRecord};

/// System prompts and tool results longer than this are cut in the terminal (the file has all).
const LONG: usize = 4000;

/// The transcript's text; a trial without one is a bad-input error saying why.
pub fn render(t: &TrialRecord, run_dir: &Path) -> Result<String> {
    let Some(rel) = &t.paths.transcript else {
        let why = if t.telemetry.requests.is_empty() {
            "it made no request through the recording proxy (no server, or a built-in agent)"
        } else {
            "the run recorded none (`--no-transcript`, `run.transcript = false`, or made before transcripts)"
        };
        return Err(Error::BadInput(format!("trial {} has no transcript: {why}", t.id)).into());
    };
    let path = run_dir.join(rel);
    let entries = crate::telemetry::transcript::read(&path).map_err(|e| Error::BadInput(format!("{e:#}")))?;
    let mut s = String::new();
    let conversations = entries.iter().filter_map(|e| e.request.conversation).max().map_or(0, |c| c + 1);
    let _ = write!(s, "transcript of {}: {} request(s), {} conversation(s)", t.id, entries.len(), conversations);
    if let Some(st) = &t.telemetry.transcript {
        let _ = write!(s, ", {:.1} KB", st.bytes as f64 / 1000.0);
        if st.dropped_turns > 0 {
            let _ = write!(
                s,
                "; {} later request(s) ({:.1} KB) dropped at the cap (run.transcript_cap_mib)",
                st.dropped_turns,
                st.dropped_bytes as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(s, "\n{}", path.display());
    for e in &entries {
        turn(&mut s, e);
    }
    Ok(s)
}

fn turn(s: &mut String, e: &TranscriptEntry) {
    let r = &e.request;
    let mut figures = vec![format!("+{:.1} s", r.offset_ms / 1000.0)];
    if let Some(slot) = r.slot {
        figures.push(format!("slot {slot}"));
    }
    if let Some(q) = r.queue_ms.filter(|&q| q >= 1.0) {
        figures.push(format!("waited {:.2} s", q / 1000.0));
    }
    if let Some(t) = r.ttft_ms {
        figures.push(format!("TTFT {:.2} s", t / 1000.0));
    }
    if let Some(n) = r.prompt_n {
        let rate = r.prompt_ms.filter(|&ms| ms > 0.0).map(|ms| format!(" {:.0} tok/s", n as f64 * 1000.0 / ms));
        figures.push(format!("prefill {n} tok{}", rate.unwrap_or_default()));
    }
    if let Some(c) = r.cache_n {
        figures.push(format!("{c} cached"));
    }
    if let Some(n) = r.predicted_n {
        let rate = r.predicted_ms.filter(|&ms| ms > 0.0).map(|ms| format!(" {:.1} tok/s", n as f64 * 1000.0 / ms));
        figures.push(format!("decode {n} tok{}", rate.unwrap_or_default()));
    }
    if r.status != 200 {
        figures.push(format!("status {}", r.status));
    }
    let (c, n) = (r.conversation.unwrap_or(0), r.turn.unwrap_or(0));
    let _ = writeln!(s, "\n── conversation {c} turn {n} · {}", figures.join(" · "));
    if e.kept > 0 {
        let _ = writeln!(s, "   ({} earlier item(s) of the conversation)", e.kept);
    }
    for item in &e.new {
        prompt_item(s, item);
    }
    let a = &e.answer;
    let why = a.finish_reason.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
    let _ = writeln!(s, "▶ answer{why}");
    if !a.reasoning.is_empty() {
        let _ = writeln!(s, "{}", indent(&format!("[reasoning] {}", a.reasoning)));
    }
    if !a.text.is_empty() {
        let _ = writeln!(s, "{}", indent(&a.text));
    }
    for call in &a.tool_calls {
        let _ = writeln!(s, "{}", indent(&format!("[tool call] {}({})", call.name, call.arguments)));
    }
    if let Some(err) = &r.error {
        let _ = writeln!(s, "   error: {err}");
    }
}

fn prompt_item(s: &mut String, item: &Value) {
    if let Some(tools) = item.get("tools") {
        let names: Vec<&str> = tools
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.pointer("/function/name").or_else(|| t.get("name")).and_then(Value::as_str))
            .collect();
        let _ = writeln!(s, "[tools] {} definition(s): {}", names.len(), names.join(", "));
        return;
    }
    for key in ["system", "instructions", "prompt"] {
        if let Some(v) = item.get(key).filter(|_| item.get("role").is_none()) {
            let _ = writeln!(s, "[{key}] {}", cut(&content_text(v)));
            return;
        }
    }
    let role = item.get("role").and_then(Value::as_str).unwrap_or("item");
    let mut text = item.get("content").map(content_text).unwrap_or_default();
    for call in item.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or("?");
        let args = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("");
        let _ = write!(text, "{}[tool call] {name}({args})", if text.is_empty() { "" } else { "\n" });
    }
    let shown = if matches!(role, "system" | "developer" | "tool") { cut(&text) } else { text };
    let _ = writeln!(s, "[{role}] {shown}");
}

/// A message's content as text: a string, or the text of its parts.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("text").or_else(|| p.get("content")) {
                Some(Value::String(t)) => t.clone(),
                Some(other) => content_text(other),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn cut(text: &str) -> String {
    if text.len() <= LONG {
        return text.to_string();
    }
    let kept = crate::text::prefix(text, LONG);
    format!("{kept}… ({} more bytes in the file)", text.len() - kept.len())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}")).collect::<Vec<_>>().join("\n")
}
