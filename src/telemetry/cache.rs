//! Preparing the prompt cache before a trial (`--cache-state`): erase every slot (`cold`) or
//! send one warm-up request shaped like the agent's first one (`warm`).

use std::time::Duration;

use serde_json::Value;

use super::client::{error_message, Reply, Server};
use super::proxy::FirstRequest;
use crate::error::Error;

/// A warm-up may prefill a long prompt on a slow machine.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(600);

/// Fails early when `cold` cannot work: slot actions need `--slot-save-path`.
pub fn check_cold(server: &Server) -> anyhow::Result<()> {
    match erase(server, 0) {
        Ok(()) => Ok(()),
        Err(why) => Err(Error::Environment(format!(
            "--cache-state cold erases every slot before each trial, and the server refused: {why}. \
             Start llama-server with --slot-save-path DIR, or use --cache-state shared"
        ))
        .into()),
    }
}

/// Erases one slot's prompt cache.
pub fn erase(server: &Server, slot: u32) -> Result<(), String> {
    let reply =
        server.post_json(&format!("/slots/{slot}?action=erase"), &serde_json::json!({}), Duration::from_secs(30));
    match &reply {
        Reply::Ok { status: 200, .. } => Ok(()),
        Reply::Ok { status: 501, body, .. } => {
            Err(format!("slot actions are off ({}): start llama-server with --slot-save-path DIR", error_message(body)))
        }
        other => other.ok_body(&format!("POST /slots/{slot}?action=erase")).map(|_| ()),
    }
}

/// Erases slots `0..slots`.
pub fn erase_all(server: &Server, slots: u32) -> Result<(), String> {
    for id in 0..slots {
        erase(server, id)?;
    }
    Ok(())
}

/// Sends one warm-up request, straight to the server (it is no part of the trial): the
/// previous trial's first request of this agent with its prompt swapped for this trial's,
/// or, for an agent's first trial, the prompt as a single user message. Returns a note on
/// what was sent.
/// `pin`: the slot the trial owns, which the warm-up then warms.
pub fn warm(
    server: &Server,
    shape: Option<(&str, &FirstRequest)>,
    prompt: &str,
    pin: Option<u32>,
) -> Result<String, String> {
    let copied = shape.and_then(|(old_prompt, first)| {
        let mut body: Value = serde_json::from_slice(&first.body).ok()?;
        if !old_prompt.is_empty() {
            swap_text(&mut body, old_prompt, prompt);
        }
        limit(&mut body, &first.path);
        Some((first.path.clone(), body))
    });
    let (path, body, note) = match copied {
        Some((path, body)) => (path, body, "copied the agent's first request of its previous trial"),
        None => (
            "/v1/chat/completions".to_string(),
            serde_json::json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 1, "cache_prompt": true}),
            "sent the prompt as one user message (no earlier request of this agent to copy)",
        ),
    };
    let mut body = body;
    if let (Some(slot), Some(o)) = (pin, body.as_object_mut()) {
        o.insert("id_slot".into(), slot.into());
    }
    let reply = server.post_json(&path, &body, WARMUP_TIMEOUT);
    reply.ok_body(&format!("the warm-up request to {path}"))?;
    Ok(note.to_string())
}

/// Replaces `old` with `new` inside every string of `v`.
fn swap_text(v: &mut Value, old: &str, new: &str) {
    match v {
        Value::String(s) if s.contains(old) => *s = s.replace(old, new),
        Value::Array(a) => a.iter_mut().for_each(|x| swap_text(x, old, new)),
        Value::Object(o) => o.values_mut().for_each(|x| swap_text(x, old, new)),
        _ => {}
    }
}

/// One token, not streamed: the warm-up only needs the prompt prefilled.
fn limit(body: &mut Value, path: &str) {
    let Some(o) = body.as_object_mut() else {
        return;
    };
    for k in ["stream", "stream_options", "max_completion_tokens", "n_predict"] {
        o.remove(k);
    }
    if path.contains("/responses") {
        o.insert("max_output_tokens".into(), 1.into());
    } else {
        o.insert("max_tokens".into(), 1.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_copies_the_shape_with_the_new_prompt() {
        let first = FirstRequest {
            path: "/v1/chat/completions".into(),
            body: bytes::Bytes::from(
                serde_json::json!({
                    "model": "m", "stream": true, "max_tokens": 500, "tools": [{"name": "bash"}],
                    "messages": [{"role": "system", "content": "You are an agent."},
                                 {"role": "user", "content": "Task:\nfix expr_calc\nthanks"}]
                })
                .to_string(),
            ),
        };
        let mut body: Value = serde_json::from_slice(&first.body).unwrap();
        swap_text(&mut body, "fix expr_calc", "fix mini_sheet");
        limit(&mut body, &first.path);
        assert_eq!(body["messages"][1]["content"], "Task:\nfix mini_sheet\nthanks");
        assert_eq!(body["max_tokens"], 1);
        assert!(body.get("stream").is_none());
        assert_eq!(body["tools"][0]["name"], "bash");
    }
}
