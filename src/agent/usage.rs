//! The usage an agent reports about itself (tokens, model calls, turns, how it stopped), read
//! from its own output after the trial. One reader per output format; each returns `None`
//! when the text holds nothing it recognises.
//!
//! Numbers are normalised: `input_tokens` counts every prompt token, cached ones included, and
//! `cached_tokens` says how many of them were read from a cache.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// pi: session JSONL (`message` entries) or `--mode json` events (`message_end`).
    Pi,
    /// opencode `run --format json`: `step_finish` events with `tokens`.
    Opencode,
    /// `codex exec --json`: `turn.completed` events with `usage`.
    Codex,
    /// `claude -p --output-format json`: one `result` object (also its stream-json and array forms).
    Claude,
    /// mini-swe-agent's trajectory JSON: `info.model_stats` and each response's `usage`.
    MiniSweAgent,
    /// aider's text output: "Tokens: 2.1k sent, 85 received."
    Aider,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pi => "pi",
            Format::Opencode => "opencode",
            Format::Codex => "codex",
            Format::Claude => "claude",
            Format::MiniSweAgent => "mini-swe-agent",
            Format::Aider => "aider",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// The reader that produced this.
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Model responses the agent counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_calls: Option<u64>,
    /// Agent turns, where the agent counts them apart from model calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    /// How the agent's last model response or run ended, in its own words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// An error the agent reported (it may still have exited 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn read(format: Format, text: &str) -> Option<Usage> {
    let mut u = match format {
        Format::Pi => pi(text),
        Format::Opencode => opencode(text),
        Format::Codex => codex(text),
        Format::Claude => claude(text),
        Format::MiniSweAgent => mini_swe_agent(text),
        Format::Aider => aider(text),
    }?;
    u.format = format.as_str().to_string();
    Some(u)
}

/// Adds `v` to a running total that starts out absent.
fn add(total: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *total = Some(total.unwrap_or(0) + v);
    }
}

fn num(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64)))
}

fn sum(parts: &[Option<u64>]) -> Option<u64> {
    parts.iter().any(Option::is_some).then(|| parts.iter().map(|p| p.unwrap_or(0)).sum())
}

fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines().filter_map(|l| {
        let l = l.trim();
        l.starts_with('{').then(|| serde_json::from_str(l).ok()).flatten()
    })
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Object(o) => {
            o.get("message").or_else(|| o.get("data")).and_then(text_of).or_else(|| Some(v.to_string()))
        }
        other => Some(other.to_string()),
    }
}

fn pi(text: &str) -> Option<Usage> {
    let mut u = Usage::default();
    let mut seen = false;
    for ev in json_lines(text) {
        let msg = match ev.get("type").and_then(Value::as_str) {
            Some("message_end") | Some("message") => &ev["message"],
            _ => continue,
        };
        if msg.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        seen = true;
        add(&mut u.model_calls, Some(1));
        let usage = &msg["usage"];
        let cached = sum(&[num(usage, "cacheRead"), num(usage, "cacheWrite")]);
        add(&mut u.input_tokens, sum(&[num(usage, "input"), cached]));
        add(&mut u.output_tokens, num(usage, "output"));
        add(&mut u.cached_tokens, num(usage, "cacheRead"));
        u.stop_reason = msg.get("stopReason").and_then(Value::as_str).map(String::from);
        u.error = match u.stop_reason.as_deref() {
            Some("error") | Some("aborted") => msg.get("errorMessage").and_then(text_of).or(u.stop_reason.clone()),
            _ => None,
        };
    }
    seen.then_some(u)
}

fn opencode(text: &str) -> Option<Usage> {
    let mut u = Usage::default();
    let mut seen = false;
    for ev in json_lines(text) {
        match ev.get("type").and_then(Value::as_str) {
            Some("step_finish") | Some("step-finish") => {
                let part = if ev.get("part").is_some() { &ev["part"] } else { &ev };
                let t = &part["tokens"];
                seen = true;
                add(&mut u.model_calls, Some(1));
                let cache = &t["cache"];
                add(&mut u.input_tokens, sum(&[num(t, "input"), num(cache, "read"), num(cache, "write")]));
                add(&mut u.output_tokens, sum(&[num(t, "output"), num(t, "reasoning")]));
                add(&mut u.cached_tokens, num(cache, "read"));
                if let Some(r) = part.get("reason").and_then(Value::as_str) {
                    u.stop_reason = Some(r.to_string());
                }
            }
            Some("error") => {
                seen = true;
                u.error = ev.get("error").and_then(text_of).or_else(|| Some(ev.to_string()));
            }
            _ => {}
        }
    }
    seen.then_some(u)
}

fn codex(text: &str) -> Option<Usage> {
    let mut u = Usage::default();
    let mut seen = false;
    for ev in json_lines(text) {
        match ev.get("type").and_then(Value::as_str) {
            Some("turn.completed") => {
                seen = true;
                add(&mut u.turns, Some(1));
                let usage = &ev["usage"];
                add(&mut u.input_tokens, num(usage, "input_tokens"));
                add(&mut u.output_tokens, num(usage, "output_tokens"));
                add(&mut u.cached_tokens, num(usage, "cached_input_tokens"));
                u.stop_reason = Some("completed".into());
            }
            Some("turn.failed") => {
                seen = true;
                add(&mut u.turns, Some(1));
                u.stop_reason = Some("failed".into());
                u.error = ev.get("error").and_then(text_of);
            }
            Some("error") => {
                seen = true;
                u.error = ev.get("message").and_then(text_of).or_else(|| Some(ev.to_string()));
            }
            _ => {}
        }
    }
    seen.then_some(u)
}

fn claude(text: &str) -> Option<Usage> {
    let is_result = |v: &Value| v.get("type").and_then(Value::as_str) == Some("result");
    let result = match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) if is_result(&v) => Some(v),
        Ok(Value::Array(items)) => items.into_iter().rev().find(is_result),
        _ => None,
    }
    .or_else(|| json_lines(text).filter(is_result).last())?;
    let usage = &result["usage"];
    let cached = num(usage, "cache_read_input_tokens");
    // Qwen Code adds per-model request counts, and reports a failed request as a "success"
    // whose result is the error text.
    let apis: Vec<&Value> =
        result["stats"]["models"].as_object().into_iter().flatten().map(|(_, m)| &m["api"]).collect();
    let requests = apis.iter().map(|a| num(a, "totalRequests")).collect::<Vec<_>>();
    let failed: u64 = apis.iter().filter_map(|a| num(a, "totalErrors")).sum();
    let text = result.get("result").and_then(text_of);
    let is_error = result.get("is_error").and_then(Value::as_bool) == Some(true);
    let error = if is_error {
        Some(text.unwrap_or_else(|| "error".into()))
    } else if failed > 0 {
        Some(match text.filter(|t| t.contains("Error")) {
            Some(t) => t,
            None => format!("{failed} model request(s) failed"),
        })
    } else {
        None
    };
    Some(Usage {
        input_tokens: sum(&[num(usage, "input_tokens"), cached, num(usage, "cache_creation_input_tokens")]),
        output_tokens: num(usage, "output_tokens"),
        cached_tokens: cached,
        model_calls: sum(&requests),
        turns: num(&result, "num_turns"),
        stop_reason: result.get("subtype").and_then(Value::as_str).map(String::from),
        error,
        ..Default::default()
    })
}

fn mini_swe_agent(text: &str) -> Option<Usage> {
    let traj: Value = serde_json::from_str(text).ok()?;
    let info = traj.get("info")?;
    let mut u = Usage { model_calls: num(&info["model_stats"], "api_calls"), ..Default::default() };
    for m in traj["messages"].as_array().into_iter().flatten() {
        let usage = &m["extra"]["response"]["usage"];
        if usage.is_object() {
            add(&mut u.input_tokens, num(usage, "prompt_tokens"));
            add(&mut u.output_tokens, num(usage, "completion_tokens"));
            add(&mut u.cached_tokens, num(&usage["prompt_tokens_details"], "cached_tokens"));
        }
    }
    let status = info.get("exit_status").and_then(Value::as_str).filter(|s| !s.is_empty());
    u.stop_reason = status.map(String::from);
    if let Some(s) = status.filter(|s| !matches!(*s, "Submitted" | "LimitsExceeded" | "TimeExceeded")) {
        let last = traj["messages"].as_array().and_then(|m| m.last());
        let detail = last.and_then(|m| m["extra"].get("exception_str")).and_then(text_of);
        u.error = Some(match detail {
            Some(d) => format!("{s}: {d}"),
            None => s.to_string(),
        });
    }
    Some(u)
}

/// Sums aider's "Tokens: 2.1k sent, 1.5k cache hit, 85 received." lines (one per model call;
/// aider rounds counts over 1,000 to one decimal of a thousand).
fn aider(text: &str) -> Option<Usage> {
    let mut u = Usage::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("Tokens:") else { continue };
        add(&mut u.model_calls, Some(1));
        let rest = rest.split(". Cost:").next().unwrap_or(rest);
        for part in rest.split(',') {
            let part = part.trim().trim_end_matches('.');
            let Some((count, what)) = part.split_once(' ') else { continue };
            let Some(n) = aider_count(count) else { continue };
            match what.trim() {
                "sent" => add(&mut u.input_tokens, Some(n)),
                "received" => add(&mut u.output_tokens, Some(n)),
                "cache hit" => add(&mut u.cached_tokens, Some(n)),
                _ => {}
            }
        }
    }
    u.model_calls.is_some().then_some(u)
}

fn aider_count(s: &str) -> Option<u64> {
    let (digits, scale) = match s.strip_suffix('k') {
        Some(d) => (d, 1000.0),
        None => (s, 1.0),
    };
    digits.parse::<f64>().ok().map(|v| (v * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_sums_assistant_messages_once_each() {
        let text = r#"{"type":"session","id":"x"}
{"type":"message","message":{"role":"user","content":"fix"}}
{"type":"message","message":{"role":"assistant","usage":{"input":100,"output":20,"cacheRead":50,"cacheWrite":0,"totalTokens":170},"stopReason":"toolUse"}}
{"type":"message","message":{"role":"toolResult","content":"ok"}}
{"type":"message","message":{"role":"assistant","usage":{"input":30,"output":5,"cacheRead":150,"cacheWrite":0},"stopReason":"error","errorMessage":"400 context exceeded"}}
"#;
        let u = read(Format::Pi, text).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens, u.model_calls),
            (Some(330), Some(25), Some(200), Some(2))
        );
        assert_eq!(u.stop_reason.as_deref(), Some("error"));
        assert_eq!(u.error.as_deref(), Some("400 context exceeded"));
        // `--mode json` streams: only `message_end` counts, not the updates or turn/agent ends.
        let stream = r#"{"type":"message_update","message":{"role":"assistant","usage":{"input":9,"output":9}}}
{"type":"message_end","message":{"role":"assistant","usage":{"input":10,"output":2},"stopReason":"stop"}}
{"type":"agent_end","messages":[{"role":"assistant","usage":{"input":10,"output":2}}]}
"#;
        let u = read(Format::Pi, stream).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens, u.model_calls, u.error), (Some(10), Some(2), Some(1), None));
        assert_eq!(read(Format::Pi, "plain text\n"), None);
    }

    #[test]
    fn opencode_step_finish_tokens() {
        let text = r#"{"type":"step_start","part":{}}
{"type":"step_finish","part":{"type":"step-finish","reason":"tool-calls","tokens":{"input":200,"output":30,"reasoning":0,"cache":{"read":100,"write":0}}}}
{"type":"step_finish","part":{"type":"step-finish","reason":"stop","tokens":{"input":50,"output":10,"reasoning":5,"cache":{"read":300,"write":0}}}}
"#;
        let u = read(Format::Opencode, text).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens, u.model_calls),
            (Some(650), Some(45), Some(400), Some(2))
        );
        assert_eq!(u.stop_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn codex_turns_and_failures() {
        let text = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":800,"output_tokens":64}}
"#;
        let u = read(Format::Codex, text).unwrap();
        assert_eq!(
            (u.input_tokens, u.cached_tokens, u.output_tokens, u.turns),
            (Some(1200), Some(800), Some(64), Some(1))
        );
        let failed = r#"{"type":"turn.failed","error":{"message":"unexpected status 404"}}"#;
        assert_eq!(read(Format::Codex, failed).unwrap().error.as_deref(), Some("unexpected status 404"));
    }

    #[test]
    fn claude_result_object_array_and_stream() {
        let obj = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":4,"result":"done","usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":40}}"#;
        let u = read(Format::Claude, obj).unwrap();
        assert_eq!(
            (u.input_tokens, u.cached_tokens, u.output_tokens, u.turns),
            (Some(115), Some(100), Some(40), Some(4))
        );
        assert_eq!((u.stop_reason.as_deref(), u.error), (Some("success"), None));
        let arr = r#"[{"type":"system"},{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":2,"usage":{"input_tokens":1,"output_tokens":2}}]"#;
        assert_eq!(read(Format::Claude, arr).unwrap().error.as_deref(), Some("error"));
        let stream = "{\"type\":\"system\"}\n{\"type\":\"result\",\"num_turns\":1,\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}\n";
        assert_eq!(read(Format::Claude, stream).unwrap().output_tokens, Some(4));
        // Qwen Code: a failed request inside a "success".
        let qwen = r#"[{"type":"system"},{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"[API Error: 400 request (9443 tokens) exceeds the available context size (8192 tokens)]","usage":{"input_tokens":0,"output_tokens":0},"stats":{"models":{"local":{"api":{"totalRequests":1,"totalErrors":1}}}}}]"#;
        let u = read(Format::Claude, qwen).unwrap();
        assert_eq!(u.model_calls, Some(1));
        assert!(u.error.unwrap().contains("exceeds the available context size"));
    }

    #[test]
    fn mini_trajectory() {
        let traj = serde_json::json!({
            "info": {"model_stats": {"api_calls": 2, "instance_cost": 0.0}, "exit_status": "Submitted"},
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "assistant", "extra": {"response": {"usage": {"prompt_tokens": 900, "completion_tokens": 40, "prompt_tokens_details": {"cached_tokens": 0}}}}},
                {"role": "assistant", "extra": {"response": {"usage": {"prompt_tokens": 1000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 900}}}}},
            ]
        });
        let u = read(Format::MiniSweAgent, &traj.to_string()).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens, u.model_calls),
            (Some(1900), Some(50), Some(900), Some(2))
        );
        assert_eq!((u.stop_reason.as_deref(), u.error), (Some("Submitted"), None));
        let crashed = serde_json::json!({
            "info": {"model_stats": {"api_calls": 0}, "exit_status": "APIConnectionError"},
            "messages": [{"role": "exit", "extra": {"exception_str": "Connection refused"}}]
        });
        assert_eq!(
            read(Format::MiniSweAgent, &crashed.to_string()).unwrap().error.as_deref(),
            Some("APIConnectionError: Connection refused")
        );
    }

    #[test]
    fn aider_token_lines() {
        let text = "Some reply\nTokens: 2.1k sent, 85 received.\nApplied edit\nTokens: 12k sent, 1.5k cache hit, 1.2k received. Cost: $0.00 message, $0.00 session.\n";
        let u = read(Format::Aider, text).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens, u.model_calls),
            (Some(14100), Some(1285), Some(1500), Some(2))
        );
        assert_eq!(read(Format::Aider, "no usage here"), None);
    }
}
