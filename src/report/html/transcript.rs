//! A trial's `transcript.jsonl` read for the page, within its caps: each text cut at
//! [`TEXT_CAP`], the trial's turns kept while they fit in its share of the report's budget
//! (at most [`TRIAL_CAP`]), every cut counted. The file is read only as far as the page keeps.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::data::{Req, Transcript};
use super::intern::Candidate;
use crate::store::{Answer, RequestRecord, TranscriptEntry, TrialRecord};

/// The most of one text (a message, a tool result, an answer) the page holds.
pub const TEXT_CAP: usize = 16 * 1024;
/// The most transcript one trial embeds, in bytes of JSON.
pub const TRIAL_CAP: usize = 256 * 1024;
/// The transcript the whole report embeds unless told otherwise (`--transcript-budget`), in
/// MiB: shared out between its trials, so a report over thousands of trials stays openable.
pub const DEFAULT_BUDGET_MIB: usize = 32;

/// Below this share a trial's first turn must fit like any other (a report over thousands of
/// trials then leaves their transcripts out and says so, rather than weigh hundreds of MB).
const FIRST_TURN_SHARE: usize = 8 * 1024;

/// One trial's share of a report's transcript budget.
pub fn trial_cap(budget_bytes: usize, trials: usize) -> usize {
    (budget_bytes / trials.max(1)).min(TRIAL_CAP)
}

/// A turn before its large prompt items are shared.
#[derive(Debug, Clone)]
pub struct RawTurn {
    pub req: Req,
    pub error: Option<String>,
    pub kept: usize,
    pub new: Vec<Candidate>,
    pub answer: Answer,
}

/// A request's figures as the page holds them.
pub fn req(r: &RequestRecord) -> Req {
    let ms = |v: f64| (v * 10.0).round() / 10.0;
    Req(
        ms(r.offset_ms),
        ms(r.total_ms),
        r.queue_ms.map(ms),
        r.ttft_ms.map(ms),
        r.prompt_n,
        r.prompt_ms.map(ms),
        r.predicted_n,
        r.predicted_ms.map(ms),
        r.cache_n,
        r.slot,
        r.conversation,
        r.turn,
        r.status,
    )
}

/// The trial's transcript (`turns` left empty: the caller shares the items) and its raw turns,
/// as many as fit in `cap` bytes (the first one whatever its size, when `cap` is not small).
pub fn read(run_dir: &Path, run_id: &str, t: &TrialRecord, cap: usize) -> (Transcript, Vec<RawTurn>) {
    let mut out = Transcript {
        recorder_dropped_turns: t.telemetry.transcript.as_ref().map_or(0, |s| s.dropped_turns),
        ..Default::default()
    };
    let Some(rel) = t.paths.transcript.as_deref() else {
        out.state = "not recorded";
        return (out, Vec::new());
    };
    let file = match std::fs::File::open(run_dir.join(rel)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.state = "missing";
            return (out, Vec::new());
        }
        Err(_) => {
            out.state = "unreadable";
            return (out, Vec::new());
        }
    };
    out.state = "ok";
    let mut turns = Vec::new();
    let mut spent = 0;
    let mut lines = std::io::BufReader::new(file).lines();
    let mut full = false;
    for line in lines.by_ref() {
        let Ok(line) = line else {
            out.bad_lines += 1;
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(entry) = serde_json::from_str::<TranscriptEntry>(&line) else {
            out.bad_lines += 1;
            continue;
        };
        let mut cuts = Transcript::default();
        let turn = raw_turn(entry, &mut cuts);
        let cost = turn.new.iter().map(|c| c.bytes).sum::<usize>()
            + turn.answer.text.len()
            + turn.answer.reasoning.len()
            + turn.answer.tool_calls.iter().map(|c| c.arguments.len() + c.name.len()).sum::<usize>();
        // The first turn is kept past the cap when the trial's share is not a small one.
        let first = turns.is_empty() && cap >= FIRST_TURN_SHARE;
        if spent + cost > cap && !first {
            full = true;
            out.dropped_turns += 1;
            break;
        }
        spent += cost;
        out.cut_texts += cuts.cut_texts;
        out.cut_bytes += cuts.cut_bytes;
        turns.push(turn);
    }
    if full {
        // What the page leaves out: from the record when it says how many turns the file
        // holds, else counted (lines, not parsed).
        out.dropped_turns = match t.telemetry.transcript.as_ref().map(|s| s.turns as usize) {
            Some(total) if total >= turns.len() + out.bad_lines as usize => {
                (total - turns.len() - out.bad_lines as usize) as u32
            }
            _ => 1 + lines.map_while(|l| l.ok()).filter(|l| !l.trim().is_empty()).count() as u32,
        };
    }
    if out.dropped_turns + out.cut_texts + out.recorder_dropped_turns > 0 {
        out.hint = Some(format!("fixbench show {run_id} --trial {} --transcript", t.id));
    }
    (out, turns)
}

fn raw_turn(entry: TranscriptEntry, counts: &mut Transcript) -> RawTurn {
    let TranscriptEntry { request, kept, new, mut answer } = entry;
    let new = new
        .into_iter()
        .map(|mut v| {
            cut_strings(&mut v, counts);
            Candidate::new(v)
        })
        .collect();
    cut(&mut answer.text, counts);
    cut(&mut answer.reasoning, counts);
    for call in &mut answer.tool_calls {
        cut(&mut call.arguments, counts);
    }
    RawTurn { req: req(&request), error: request.error.clone(), kept, new, answer }
}

fn cut_strings(v: &mut Value, counts: &mut Transcript) {
    match v {
        Value::String(s) => cut(s, counts),
        Value::Array(items) => items.iter_mut().for_each(|i| cut_strings(i, counts)),
        Value::Object(map) => map.values_mut().for_each(|i| cut_strings(i, counts)),
        _ => {}
    }
}

/// Cuts `s` to [`TEXT_CAP`] bytes (on a character boundary), saying so at its end.
fn cut(s: &mut String, counts: &mut Transcript) {
    if s.len() <= TEXT_CAP {
        return;
    }
    let at = crate::text::prefix(s, TEXT_CAP).len();
    let dropped = (s.len() - at) as u64;
    s.truncate(at);
    s.push_str(&format!("\n… [{dropped} bytes cut]"));
    counts.cut_texts += 1;
    counts.cut_bytes += dropped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synth;

    fn entry(content: &str) -> String {
        let e = TranscriptEntry {
            new: vec![serde_json::json!({"role": "user", "content": [{"type": "text", "text": content}]})],
            answer: Answer { text: "ok".into(), ..Default::default() },
            ..Default::default()
        };
        serde_json::to_string(&e).unwrap()
    }

    #[test]
    fn long_texts_are_cut_and_turns_past_the_trial_cap_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = synth::trial("expr_calc", "a", 0, 15, 15, 11);
        t.paths.transcript = Some("t.jsonl".into());
        let lines: Vec<String> = (0..40).map(|_| entry(&"é".repeat(TEXT_CAP))).collect();
        std::fs::write(dir.path().join("t.jsonl"), "not json\n".to_string() + &lines.join("\n")).unwrap();
        let (stats, turns) = read(dir.path(), "R", &t, TRIAL_CAP);
        assert_eq!(stats.state, "ok");
        assert_eq!(stats.bad_lines, 1);
        assert_eq!(turns.len() as u32 + stats.dropped_turns, 40);
        assert!(stats.dropped_turns > 0 && stats.cut_texts as usize == turns.len(), "{stats:?}");
        let text = turns[0].new[0].value["content"][0]["text"].as_str().unwrap();
        assert!(text.len() < TEXT_CAP + 40 && text.ends_with("bytes cut]"), "{}", text.len());
        assert_eq!(stats.hint.as_deref(), Some("fixbench show R --trial expr_calc/a/0 --transcript"));
        // A smaller share of the report's budget: the first turn, the rest counted unread.
        let (stats, turns) = read(dir.path(), "R", &t, FIRST_TURN_SHARE);
        assert_eq!((turns.len(), stats.dropped_turns), (1, 39));
        t.telemetry.transcript = Some(crate::store::TranscriptStats { turns: 41, ..Default::default() });
        let small = read(dir.path(), "R", &t, FIRST_TURN_SHARE);
        assert_eq!(small.0.dropped_turns, 39, "the record's count, less the bad line");
        // A share too small for a turn: none, all counted.
        let (stats, turns) = read(dir.path(), "R", &t, 100);
        assert_eq!((turns.len(), stats.dropped_turns, stats.cut_texts), (0, 40, 0));
        assert_eq!((trial_cap(32 << 20, 100), trial_cap(32 << 20, 10_080)), (TRIAL_CAP, 3328));
    }

    #[test]
    fn a_trial_without_a_transcript_says_which_kind_of_absence() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = synth::trial("expr_calc", "a", 0, 15, 15, 11);
        assert_eq!(read(dir.path(), "R", &t, TRIAL_CAP).0.state, "not recorded");
        t.paths.transcript = Some("gone.jsonl".into());
        assert_eq!(read(dir.path(), "R", &t, TRIAL_CAP).0.state, "missing");
    }
}
