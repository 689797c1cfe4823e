//! Which conversation a request continues, and the re-prefill signature of a cache miss:
//! prompt tokens a turn prefilled although the previous turn of the same conversation had
//! already processed them.
//!
//! A request's prompt is a list of units (the tools and system prompt, then each message);
//! a request continues the conversation whose latest request shares the longest run of
//! leading units with it, past the system units (two sessions with the same system prompt
//! are still two). The previous turn processed `prompt_n + cache_n` tokens; when its units are
//! all a prefix of this one's, this turn could have found all of them cached (less the one
//! token llama-server always evaluates again). When only part is shared (the agent rewrote
//! its history), the share of bytes estimates the share of tokens.

use std::hash::{Hash, Hasher};

use serde_json::Value;

/// One piece of a prompt: its hash, its size, and whether it is tools/system text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub hash: u64,
    pub bytes: usize,
    pub system: bool,
}

impl Unit {
    fn of(v: &Value, system: bool) -> Unit {
        let text = v.to_string();
        Unit::text(&text, system)
    }
    fn text(text: &str, system: bool) -> Unit {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        Unit { hash: h.finish(), bytes: text.len(), system }
    }
}

/// One item of a generation request's prompt, borrowed from its body: a chat message, one of
/// the endpoint's other prompt parts (`tools`, `system`, `instructions`), or a line of a plain
/// completion's prompt.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    part: Part<'a>,
    /// Tools or system text.
    pub system: bool,
}

#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    /// A message or input item, as sent.
    Message(&'a Value),
    /// The body's field of that name.
    Field(&'static str, &'a Value),
    /// A line of a plain completion's string prompt.
    Line(&'a str),
}

impl Item<'_> {
    /// Its unit: its hash and size, for matching turns.
    pub fn unit(self) -> Unit {
        match self.part {
            Part::Message(v) | Part::Field(_, v) => Unit::of(v, self.system),
            Part::Line(l) => Unit::text(l, self.system),
        }
    }

    /// The item as the transcript keeps it: a message as sent, another part wrapped as
    /// `{"tools": …}`, `{"system": …}`, `{"instructions": …}` or `{"prompt": …}`.
    pub fn to_value(self) -> Value {
        match self.part {
            Part::Message(v) => v.clone(),
            Part::Field(key, v) => serde_json::json!({ key: v }),
            Part::Line(l) => serde_json::json!({ "prompt": l }),
        }
    }
}

/// The prompt items of a generation request, by endpoint; `None` for other requests.
pub fn items<'a>(path: &str, body: &'a Value) -> Option<Vec<Item<'a>>> {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let mut out = Vec::new();
    let field = |out: &mut Vec<Item<'a>>, key: &'static str| {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            out.push(Item { part: Part::Field(key, v), system: true });
        }
    };
    let message = |m: &'a Value, system: bool| Item { part: Part::Message(m), system };
    if path.ends_with("/chat/completions") {
        field(&mut out, "tools");
        for m in body.get("messages")?.as_array()? {
            let system = matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer"));
            out.push(message(m, system));
        }
    } else if path.ends_with("/messages") {
        field(&mut out, "tools");
        field(&mut out, "system");
        out.extend(body.get("messages")?.as_array()?.iter().map(|m| message(m, false)));
    } else if path.ends_with("/responses") {
        field(&mut out, "tools");
        field(&mut out, "instructions");
        match body.get("input")? {
            Value::Array(items) => out.extend(items.iter().map(|i| message(i, false))),
            other => out.push(message(other, false)),
        }
    } else if path.ends_with("/completions") || path.ends_with("/completion") {
        match body.get("prompt")? {
            Value::String(s) => {
                out.extend(s.split_inclusive('\n').map(|l| Item { part: Part::Line(l), system: false }))
            }
            other => out.push(Item { part: Part::Field("prompt", other), system: false }),
        }
    } else {
        return None;
    }
    Some(out)
}

/// The prompt units of a generation request's [`items`].
pub fn units_of(items: &[Item]) -> Vec<Unit> {
    items.iter().map(|i| i.unit()).collect()
}

/// The prompt units of a generation request, by endpoint; `None` for other requests.
#[cfg(test)]
pub fn units(path: &str, body: &Value) -> Option<Vec<Unit>> {
    items(path, body).map(|i| units_of(&i))
}

/// Where a request landed: its conversation and turn, and what it shares with the previous turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub conversation: u32,
    pub turn: u32,
    /// Leading units shared with the previous turn of the conversation (0 on a first turn).
    pub shared: usize,
    /// The previous turn and the share of its prompt this request repeats (1.0 = all of it).
    prev: Option<(usize, f64)>,
}

#[derive(Debug, Default)]
struct Conversation {
    latest: Vec<Unit>,
    /// Each turn's prompt tokens (`prompt_n + cache_n`), once its answer ended.
    prompt_totals: Vec<Option<u64>>,
}

/// The conversations of one trial (or of a `fixbench proxy` session).
#[derive(Debug, Default)]
pub struct Tracker {
    conversations: Vec<Conversation>,
}

impl Tracker {
    pub fn place(&mut self, units: Vec<Unit>) -> Placement {
        let mut best: Option<(usize, usize)> = None; // (conversation, shared units)
        for (i, c) in self.conversations.iter().enumerate() {
            let shared = common_prefix(&c.latest, &units);
            let system = c.latest.iter().take_while(|u| u.system).count();
            let continues = shared > system || (shared == c.latest.len() && shared == units.len() && shared > 0);
            if continues && best.map_or(true, |(_, s)| shared >= s) {
                best = Some((i, shared));
            }
        }
        match best {
            Some((i, shared)) => {
                let c = &mut self.conversations[i];
                let prev_bytes: usize = c.latest.iter().map(|u| u.bytes).sum();
                let shared_bytes: usize = c.latest[..shared].iter().map(|u| u.bytes).sum();
                let fraction = if shared == c.latest.len() || prev_bytes == 0 {
                    1.0
                } else {
                    shared_bytes as f64 / prev_bytes as f64
                };
                let turn = c.prompt_totals.len();
                c.prompt_totals.push(None);
                c.latest = units;
                Placement { conversation: i as u32, turn: turn as u32, shared, prev: Some((turn - 1, fraction)) }
            }
            None => {
                self.conversations.push(Conversation { latest: units, prompt_totals: vec![None] });
                Placement { conversation: (self.conversations.len() - 1) as u32, turn: 0, shared: 0, prev: None }
            }
        }
    }

    /// Records the turn's prompt size and returns its re-prefilled tokens, when both its own
    /// and the previous turn's counts are known.
    pub fn finish(&mut self, p: &Placement, prompt_n: Option<u64>, cache_n: Option<u64>) -> Option<u64> {
        let c = self.conversations.get_mut(p.conversation as usize)?;
        let total = match (prompt_n, cache_n) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        if let Some(slot) = c.prompt_totals.get_mut(p.turn as usize) {
            *slot = total;
        }
        let (prev, fraction) = p.prev?;
        let prev_total = (*c.prompt_totals.get(prev)?)?;
        let (total, cache_n) = (total?, cache_n?);
        let could_have = ((prev_total as f64 * fraction).floor() as u64).min(total.saturating_sub(1));
        Some(could_have.saturating_sub(cache_n))
    }
}

fn common_prefix(a: &[Unit], b: &[Unit]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x.hash == y.hash).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(msgs: &[(&str, &str)]) -> Vec<Unit> {
        let messages: Vec<Value> = msgs.iter().map(|(r, c)| json!({"role": r, "content": c})).collect();
        units("/v1/chat/completions", &json!({"messages": messages})).unwrap()
    }

    #[test]
    fn turns_of_one_conversation_and_a_second_one() {
        let mut t = Tracker::default();
        let a1 = t.place(chat(&[("system", "S"), ("user", "fix bug A")]));
        let b1 = t.place(chat(&[("system", "S"), ("user", "fix bug B")]));
        let a2 = t.place(chat(&[("system", "S"), ("user", "fix bug A"), ("assistant", "ok"), ("user", "go on")]));
        assert_eq!((a1.conversation, a1.turn), (0, 0));
        assert_eq!((b1.conversation, b1.turn), (1, 0), "a shared system prompt alone is not a conversation");
        assert_eq!((a2.conversation, a2.turn), (0, 1));
    }

    #[test]
    fn a_full_hit_has_no_reprefill_and_a_miss_is_counted() {
        let mut t = Tracker::default();
        let p1 = t.place(chat(&[("user", "hello")]));
        assert_eq!(t.finish(&p1, Some(30), Some(0)), None, "a first turn has nothing to re-prefill");
        let p2 = t.place(chat(&[("user", "hello"), ("assistant", "hi"), ("user", "more")]));
        assert_eq!(t.finish(&p2, Some(12), Some(30)), Some(0));
        let p3 = t.place(chat(&[
            ("user", "hello"),
            ("assistant", "hi"),
            ("user", "more"),
            ("assistant", "x"),
            ("user", "y"),
        ]));
        // Everything prefilled again: the 42 tokens turn 2 had processed are re-prefilled.
        assert_eq!(t.finish(&p3, Some(50), Some(0)), Some(42));
    }

    #[test]
    fn identical_prompt_repeated_allows_for_the_one_token_evaluated_again() {
        let mut t = Tracker::default();
        let p1 = t.place(chat(&[("user", "same")]));
        t.finish(&p1, Some(296), Some(0));
        let p2 = t.place(chat(&[("user", "same")]));
        assert_eq!(p2.conversation, 0);
        assert_eq!(t.finish(&p2, Some(1), Some(295)), Some(0));
    }

    #[test]
    fn rewritten_history_estimates_by_bytes() {
        let mut t = Tracker::default();
        let long = "x".repeat(300);
        let p1 = t.place(chat(&[("user", "task"), ("assistant", &long)]));
        t.finish(&p1, Some(100), Some(0));
        let p2 = t.place(chat(&[("user", "task"), ("assistant", "summary")]));
        assert_eq!(p2.turn, 1);
        let got = t.finish(&p2, Some(20), Some(0)).unwrap();
        assert!(got > 0 && got < 19, "only the shared first message counts: {got}");
    }

    #[test]
    fn units_by_endpoint() {
        assert!(units("/v1/models", &json!({})).is_none());
        let m = units("/v1/messages", &json!({"system": "S", "messages": [{"role": "user", "content": "a"}]})).unwrap();
        assert_eq!(m.iter().map(|u| u.system).collect::<Vec<_>>(), [true, false]);
        let r = units("/v1/responses", &json!({"input": "hi"})).unwrap();
        assert_eq!(r.len(), 1);
        let c = units("/v1/completions", &json!({"prompt": "a\nb\n"})).unwrap();
        assert_eq!(c.len(), 2);
    }
}
