//! Prompt items that many trials send alike (every pi trial opens with the same system prompt
//! and tool definitions), stored once in the page's shared table and referred to by key.
//! Two passes: every trial's large items are counted, then each is either a reference (sent by
//! two trials or more) or kept inline (sent once: sharing it would only move it).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::data::Item;

/// Items smaller than this stay inline: a reference would save too little.
pub const MIN_SHARED_BYTES: usize = 1024;

/// A prompt item before the decision: its value, size, and key when large enough to share.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub value: Value,
    /// Bytes of its JSON.
    pub bytes: usize,
    pub key: Option<String>,
}

impl Candidate {
    pub fn new(value: Value) -> Candidate {
        let text = serde_json::to_vec(&value).expect("a JSON value serializes");
        let key = (text.len() >= MIN_SHARED_BYTES).then(|| hex::encode(&Sha256::digest(&text)[..8]));
        Candidate { value, bytes: text.len(), key }
    }
}

/// How many trials send each large item, and its value.
#[derive(Debug, Default)]
pub struct Interner {
    seen: HashMap<String, (usize, Value)>,
}

impl Interner {
    /// Counts one trial's items (an item a trial sends twice counts once).
    pub fn count<'a>(&mut self, trial: impl IntoIterator<Item = &'a Candidate>) {
        let mut mine = HashSet::new();
        for c in trial {
            if let Some(key) = &c.key {
                if mine.insert(key.as_str()) {
                    self.seen.entry(key.clone()).or_insert_with(|| (0, c.value.clone())).0 += 1;
                }
            }
        }
    }

    /// Whether `c` goes in the shared table.
    fn shared(&self, c: &Candidate) -> bool {
        c.key.as_ref().and_then(|k| self.seen.get(k)).is_some_and(|(n, _)| *n >= 2)
    }

    /// The item as the page holds it.
    pub fn item(&self, c: Candidate) -> Item {
        if self.shared(&c) {
            Item::Ref(c.key.expect("a shared item has a key"))
        } else {
            Item::Inline(c.value)
        }
    }

    /// The shared table: each item sent by two trials or more, by key.
    pub fn table(&self) -> BTreeMap<&str, &Value> {
        self.seen.iter().filter(|(_, (n, _))| *n >= 2).map(|(k, (_, v))| (k.as_str(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_two_trials_send_is_stored_once_and_a_single_one_stays_inline() {
        let system = Candidate::new(serde_json::json!({"role": "system", "content": "x".repeat(4000)}));
        let own = Candidate::new(serde_json::json!({"role": "tool", "content": "y".repeat(2000)}));
        let small = Candidate::new(serde_json::json!({"role": "user", "content": "fix it"}));
        assert!(small.key.is_none() && system.key.is_some());
        let a = vec![system.clone(), own.clone(), small.clone(), system.clone()];
        let b = vec![system.clone(), small.clone()];
        let mut interner = Interner::default();
        interner.count(&a);
        interner.count(&b);
        let table = interner.table();
        assert_eq!(table.len(), 1);
        assert_eq!(table[system.key.as_deref().unwrap()], &system.value);
        let items: Vec<Item> = a.into_iter().map(|c| interner.item(c)).collect();
        assert_eq!(items[0], Item::Ref(system.key.clone().unwrap()));
        assert_eq!(items[1], Item::Inline(own.value));
        assert_eq!(items[2], Item::Inline(small.value));
        assert_eq!(items[3], items[0]);
    }
}
