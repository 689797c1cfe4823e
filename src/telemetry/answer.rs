//! What a generation request was answered, for the trial's transcript: the text, the
//! reasoning and the tool calls, read from a plain JSON answer or pieced together from a
//! stream's events, for the chat-completions, completions, Anthropic messages and Responses
//! endpoints (and llama-server's own `/completion`).

use serde_json::Value;

use crate::store::{Answer, ToolCall};

/// Builds an [`Answer`] from what passes: one plain body, or a stream's events in order.
#[derive(Debug, Default)]
pub struct AnswerReader {
    answer: Answer,
    /// A stream's tool calls by their index (chat: `tool_calls[].index`, Anthropic: the
    /// content block's index), in the order they began.
    calls: Vec<(u64, ToolCall)>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl AnswerReader {
    /// A plain (not streamed) answer's JSON body.
    pub fn body(&mut self, v: &Value) {
        if let Some(choice) = v.pointer("/choices/0") {
            if let Some(m) = choice.get("message") {
                self.text(str_at(m, "content"));
                self.reasoning(str_at(m, "reasoning_content").or_else(|| str_at(m, "reasoning")));
                for c in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    self.answer.tool_calls.push(ToolCall {
                        id: str_at(c, "id").map(str::to_string),
                        name: c.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        arguments: c.pointer("/function/arguments").map(text_of).unwrap_or_default(),
                    });
                }
            }
            self.text(str_at(choice, "text"));
            self.finish(str_at(choice, "finish_reason"));
        } else if let Some(blocks) = v.get("content").and_then(Value::as_array) {
            for b in blocks {
                self.block(b);
            }
            self.finish(str_at(v, "stop_reason"));
        } else if let Some(output) = v.get("output").and_then(Value::as_array) {
            self.responses_output(output);
            self.finish(str_at(v, "status"));
        } else {
            self.completion(v);
        }
    }

    /// One event of a stream (the JSON after `data:`).
    pub fn event(&mut self, v: &Value) {
        if let Some(choice) = v.pointer("/choices/0") {
            if let Some(d) = choice.get("delta") {
                self.text(str_at(d, "content"));
                self.reasoning(str_at(d, "reasoning_content").or_else(|| str_at(d, "reasoning")));
                for c in d.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let call = self.call(index);
                    if let Some(id) = str_at(c, "id") {
                        call.id = Some(id.to_string());
                    }
                    if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                        call.name.push_str(name);
                    }
                    if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                        call.arguments.push_str(args);
                    }
                }
            }
            self.text(str_at(choice, "text"));
            self.finish(str_at(choice, "finish_reason"));
            return;
        }
        match str_at(v, "type") {
            Some("content_block_start") => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(b) = v.get("content_block").filter(|b| str_at(b, "type") == Some("tool_use")) {
                    let call = self.call(index);
                    call.id = str_at(b, "id").map(str::to_string);
                    call.name = str_at(b, "name").unwrap_or_default().to_string();
                }
            }
            Some("content_block_delta") => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(d) = v.get("delta") else { return };
                match str_at(d, "type") {
                    Some("text_delta") => self.text(str_at(d, "text")),
                    Some("thinking_delta") => self.reasoning(str_at(d, "thinking")),
                    Some("input_json_delta") => {
                        let part = str_at(d, "partial_json").unwrap_or_default().to_string();
                        self.call(index).arguments.push_str(&part);
                    }
                    _ => {}
                }
            }
            Some("message_delta") => self.finish(v.pointer("/delta/stop_reason").and_then(Value::as_str)),
            Some("response.output_text.delta") => self.text(str_at(v, "delta")),
            Some("response.completed") => {
                // The whole answer again: what the deltas said is replaced by it.
                if let Some(r) = v.get("response") {
                    *self = AnswerReader::default();
                    self.body(r);
                }
            }
            _ => self.completion(v),
        }
    }

    /// llama-server's own `/completion`: a plain answer, or one event of its stream.
    fn completion(&mut self, v: &Value) {
        self.text(str_at(v, "content"));
        if v.get("stop").and_then(Value::as_bool) == Some(true) {
            self.finish(str_at(v, "stop_type"));
        }
    }

    pub fn finish_answer(mut self) -> Answer {
        self.answer.tool_calls.extend(self.calls.into_iter().map(|(_, c)| c));
        self.answer
    }

    fn text(&mut self, s: Option<&str>) {
        if let Some(s) = s {
            self.answer.text.push_str(s);
        }
    }

    fn reasoning(&mut self, s: Option<&str>) {
        if let Some(s) = s {
            self.answer.reasoning.push_str(s);
        }
    }

    fn finish(&mut self, why: Option<&str>) {
        if let Some(why) = why.filter(|w| !w.is_empty()) {
            self.answer.finish_reason = Some(why.to_string());
        }
    }

    fn call(&mut self, index: u64) -> &mut ToolCall {
        let at = match self.calls.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None => {
                self.calls.push((index, ToolCall::default()));
                self.calls.len() - 1
            }
        };
        &mut self.calls[at].1
    }

    /// An Anthropic content block of a plain answer.
    fn block(&mut self, b: &Value) {
        match str_at(b, "type") {
            Some("text") => self.text(str_at(b, "text")),
            Some("thinking") => self.reasoning(str_at(b, "thinking")),
            Some("tool_use") => self.answer.tool_calls.push(ToolCall {
                id: str_at(b, "id").map(str::to_string),
                name: str_at(b, "name").unwrap_or_default().to_string(),
                arguments: b.get("input").map(text_of).unwrap_or_default(),
            }),
            _ => {}
        }
    }

    /// A Responses API answer's `output` items.
    fn responses_output(&mut self, output: &[Value]) {
        for item in output {
            match str_at(item, "type") {
                Some("message") => {
                    for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
                        self.text(str_at(part, "text"));
                    }
                }
                Some("reasoning") => {
                    for key in ["content", "summary"] {
                        for part in item.get(key).and_then(Value::as_array).into_iter().flatten() {
                            self.reasoning(str_at(part, "text"));
                        }
                    }
                }
                Some("function_call") => self.answer.tool_calls.push(ToolCall {
                    id: str_at(item, "call_id").map(str::to_string),
                    name: str_at(item, "name").unwrap_or_default().to_string(),
                    arguments: item.get("arguments").map(text_of).unwrap_or_default(),
                }),
                _ => {}
            }
        }
    }
}

/// A string as it is; anything else as compact JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn streamed(events: &[Value]) -> Answer {
        let mut r = AnswerReader::default();
        events.iter().for_each(|e| r.event(e));
        r.finish_answer()
    }

    #[test]
    fn a_chat_stream_is_pieced_together_with_its_tool_calls() {
        let a = streamed(&[
            json!({"choices": [{"delta": {"role": "assistant"}}]}),
            json!({"choices": [{"delta": {"reasoning_content": "think "}}]}),
            json!({"choices": [{"delta": {"reasoning_content": "more"}}]}),
            json!({"choices": [{"delta": {"content": "Fix"}}]}),
            json!({"choices": [{"delta": {"content": "ing."}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "bash", "arguments": "{\"cmd\""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": \"ls\"}"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "read", "arguments": "{}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        ]);
        assert_eq!((a.text.as_str(), a.reasoning.as_str()), ("Fixing.", "think more"));
        assert_eq!(a.finish_reason.as_deref(), Some("tool_calls"));
        let calls: Vec<_> =
            a.tool_calls.iter().map(|c| (c.id.as_deref(), c.name.as_str(), c.arguments.as_str())).collect();
        assert_eq!(calls, [(Some("c1"), "bash", "{\"cmd\": \"ls\"}"), (Some("c2"), "read", "{}")]);
    }

    #[test]
    fn plain_answers_of_each_endpoint() {
        let mut r = AnswerReader::default();
        r.body(&json!({"choices": [{"message": {"content": "ok", "tool_calls": [
            {"id": "x", "function": {"name": "edit", "arguments": "{\"a\":1}"}}]}, "finish_reason": "stop"}]}));
        let a = r.finish_answer();
        assert_eq!(
            (a.text.as_str(), a.tool_calls[0].name.as_str(), a.finish_reason.as_deref()),
            ("ok", "edit", Some("stop"))
        );

        let mut r = AnswerReader::default();
        r.body(&json!({"content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "done"},
            {"type": "tool_use", "id": "t", "name": "bash", "input": {"cmd": "ls"}}], "stop_reason": "tool_use"}));
        let a = r.finish_answer();
        assert_eq!((a.reasoning.as_str(), a.text.as_str()), ("hm", "done"));
        assert_eq!(a.tool_calls[0].arguments, "{\"cmd\":\"ls\"}");

        let mut r = AnswerReader::default();
        r.body(&json!({"content": "42", "stop": true, "stop_type": "eos"}));
        assert_eq!(r.finish_answer().text, "42");
    }

    #[test]
    fn an_anthropic_stream_and_a_responses_stream() {
        let a = streamed(&[
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "u", "name": "bash"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"c\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        ]);
        assert_eq!((a.text.as_str(), a.tool_calls[0].arguments.as_str()), ("Hi", "{\"c\":1}"));
        assert_eq!(a.finish_reason.as_deref(), Some("tool_use"));

        let a = streamed(&[
            json!({"type": "response.output_text.delta", "delta": "par"}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": [
                {"type": "message", "content": [{"type": "output_text", "text": "partial"}]},
                {"type": "function_call", "call_id": "f", "name": "ls", "arguments": "{}"}]}}),
        ]);
        assert_eq!((a.text.as_str(), a.tool_calls.len()), ("partial", 1), "the completed answer replaces the deltas");
    }
}
