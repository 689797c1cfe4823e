//! One trial read for its page: its record's figures and tests, the head and tail of its logs,
//! its diff, its requests and its transcript; a file that is gone is marked, never an error.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::data::{Excerpt, FailingTest, TrialDetail};
use super::transcript::{self, RawTurn};
use crate::store::{Outcome, TrialRecord};

/// What is kept of each log: its first and its last this many bytes, at most.
pub const LOG_HEAD: usize = 4 * 1024;
pub const LOG_TAIL: usize = 4 * 1024;
/// What the logs' excerpts may weigh in all, shared out between the page's trials (each log's
/// head and tail then 512 bytes at least, and at most the above).
pub const LOG_BUDGET: usize = 8 << 20;

/// Each end of each log kept for one of `trials` trials.
pub fn log_end(trials: usize) -> usize {
    (LOG_BUDGET / trials.max(1) / 4).clamp(512, LOG_HEAD.min(LOG_TAIL))
}
/// The most of a diff the page holds.
pub const DIFF_CAP: usize = 256 * 1024;

/// A trial's detail (transcript turns still to fill) and its transcript's raw turns.
pub fn load(
    run_dir: &Path,
    run_id: &str,
    t: &TrialRecord,
    transcript_cap: usize,
    log_end: usize,
) -> (TrialDetail, Vec<RawTurn>) {
    let (transcript, turns) = transcript::read(run_dir, run_id, t, transcript_cap);
    let file = |rel: &str, head: usize, tail: usize| excerpt(run_dir, rel, head, tail);
    let server = t.telemetry.server.as_ref();
    let g = &t.grade;
    let detail = TrialDetail {
        run: run_id.to_string(),
        id: t.id.clone(),
        problem: t.problem.clone(),
        agent: t.agent.clone(),
        repeat: t.repeat,
        agent_version: t.agent_version.clone(),
        command: t.command.join(" "),
        resolved: g.resolved,
        passed: g.passed,
        failed: g.failed,
        errors: g.errors,
        skipped: g.skipped,
        total: g.total,
        baseline: g.baseline,
        error: t.error.clone(),
        void: g.void.clone(),
        suspicious: g.suspicious.clone(),
        timed_out: t.agent_run.timed_out,
        exit_code: t.agent_run.exit_code,
        agent_s: t.agent_run.agent_s,
        grade_s: g.grade_s,
        wall_s: t.wall_s,
        decode_tps: server.and_then(|s| s.decode_tps),
        prefill_tps: server.and_then(|s| s.prefill_tps),
        fixed: g.fixed.clone(),
        broken: g.broken.clone(),
        failing: failing(t),
        diff: file(&t.paths.diff, DIFF_CAP, 0),
        stdout: file(&t.paths.stdout, log_end, log_end),
        stderr: file(&t.paths.stderr, log_end, log_end),
        output_dropped: (t.agent_run.output.stdout_dropped, t.agent_run.output.stderr_dropped),
        requests: t.telemetry.requests.iter().map(transcript::req).collect(),
        telemetry_missing: t.telemetry.missing.clone(),
        transcript,
    };
    (detail, turns)
}

/// The tests that failed or errored, with their messages.
pub fn failing(t: &TrialRecord) -> Vec<FailingTest> {
    t.grade
        .tests
        .iter()
        .filter_map(|r| {
            let outcome = match r.outcome {
                Outcome::Failed => "failed",
                Outcome::Error => "error",
                Outcome::Passed | Outcome::Skipped => return None,
            };
            Some(FailingTest { name: r.name.clone(), outcome, message: r.message.clone() })
        })
        .collect()
}

/// The first `head` and last `tail` bytes of the file at `rel` (relative to the run folder),
/// the middle counted; `tail == 0` keeps the head alone.
pub fn excerpt(run_dir: &Path, rel: &str, head: usize, tail: usize) -> Excerpt {
    if rel.is_empty() {
        return Excerpt { state: "not recorded", ..Default::default() };
    }
    match read_ends(&run_dir.join(rel), head, tail) {
        Ok((h, t, bytes)) => Excerpt {
            state: "ok",
            cut: bytes - (h.len() + t.len()) as u64,
            head: String::from_utf8_lossy(&h).into_owned(),
            tail: String::from_utf8_lossy(&t).into_owned(),
            bytes,
        },
        Err(_) => Excerpt { state: "missing", ..Default::default() },
    }
}

fn read_ends(path: &Path, head: usize, tail: usize) -> std::io::Result<(Vec<u8>, Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let bytes = f.metadata()?.len();
    if bytes <= (head + tail) as u64 {
        let mut all = Vec::with_capacity(bytes as usize);
        f.read_to_end(&mut all)?;
        return Ok((all, Vec::new(), bytes));
    }
    let mut h = vec![0; head];
    f.read_exact(&mut h)?;
    let mut t = Vec::with_capacity(tail);
    if tail > 0 {
        f.seek(SeekFrom::End(-(tail as i64)))?;
        f.read_to_end(&mut t)?;
    }
    Ok((h, t, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_ends_and_counts_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("out.log"), &text).unwrap();
        let e = excerpt(dir.path(), "out.log", LOG_HEAD, LOG_TAIL);
        assert_eq!((e.state, e.bytes), ("ok", text.len() as u64));
        assert_eq!((e.head.len(), e.tail.len()), (LOG_HEAD, LOG_TAIL));
        assert_eq!(e.cut, (text.len() - LOG_HEAD - LOG_TAIL) as u64);
        assert!(text.starts_with(&e.head) && text.ends_with(&e.tail));
        assert_eq!(excerpt(dir.path(), "gone.log", 10, 10).state, "missing");
        assert_eq!(excerpt(dir.path(), "", 10, 10).state, "not recorded");
    }
}
