//! A trial's transcript while it is recorded: one JSON line per generation request, capped
//! per trial (what the cap drops is counted, never silently lost), written to the trial's
//! folder when the trial ends.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::store::{TranscriptEntry, TranscriptStats};

/// The lines recorded so far, with each one's request start (they are written in that order).
#[derive(Debug)]
pub struct TranscriptBook {
    cap: u64,
    lines: Vec<(f64, String)>,
    stats: TranscriptStats,
}

impl TranscriptBook {
    pub fn new(cap: u64) -> TranscriptBook {
        TranscriptBook { cap, lines: Vec::new(), stats: TranscriptStats::default() }
    }

    /// Keeps the entry, or counts it as dropped once the cap is reached.
    pub fn push(&mut self, entry: &TranscriptEntry) {
        let Ok(line) = serde_json::to_string(entry) else { return };
        let size = line.len() as u64 + 1;
        if self.stats.bytes + size > self.cap {
            self.stats.dropped_turns += 1;
            self.stats.dropped_bytes += size;
            return;
        }
        self.stats.turns += 1;
        self.stats.bytes += size;
        self.lines.push((entry.request.offset_ms, line));
    }

    pub fn stats(&self) -> &TranscriptStats {
        &self.stats
    }

    /// Writes the lines, in the order their requests started, to `path`.
    pub fn write(mut self, path: &Path) -> Result<TranscriptStats> {
        self.lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for (_, line) in &self.lines {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush().with_context(|| format!("cannot write {}", path.display()))?;
        Ok(self.stats)
    }
}

/// Reads a transcript file back; a line that does not parse is an error naming it.
pub fn read(path: &Path) -> Result<Vec<TranscriptEntry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: line {} is not a transcript entry", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RequestRecord;

    #[test]
    fn the_cap_drops_whole_entries_and_counts_them() {
        let entry = |offset_ms: f64, text: &str| TranscriptEntry {
            request: RequestRecord { offset_ms, ..Default::default() },
            new: vec![serde_json::json!({"role": "user", "content": text})],
            ..Default::default()
        };
        let one = serde_json::to_string(&entry(50.0, "aaaa")).unwrap().len() as u64 + 1;
        let mut book = TranscriptBook::new(2 * one + 5);
        book.push(&entry(20.0, "aaaa"));
        book.push(&entry(10.0, "bbbb"));
        book.push(&entry(30.0, "cccc"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let stats = book.write(&path).unwrap();
        assert_eq!((stats.turns, stats.dropped_turns, stats.bytes, stats.dropped_bytes), (2, 1, 2 * one, one));
        let back = read(&path).unwrap();
        let texts: Vec<_> = back.iter().map(|e| e.new[0]["content"].as_str().unwrap().to_string()).collect();
        assert_eq!(texts, ["bbbb", "aaaa"], "in the order the requests started");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), stats.bytes);
    }
}
