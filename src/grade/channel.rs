//! fixbench's own report channel from pytest: a pipe whose write end the graded process inherits
//! (fd number in its argv) and whose read end only fixbench holds. `channel.py` writes one JSON
//! line per test report as it happens and an `end` line when the session finishes; what arrived
//! cannot be rewritten afterwards, unlike the JUnit file in the grading folder.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;

use crate::store::{Outcome, TestResult};

/// The Python that grading runs (`python -I -B fixbench_grade.py FD ARGS`): pytest with the
/// channel plugin.
pub const ENTRY: &str = include_str!("channel.py");
pub const ENTRY_FILE: &str = "fixbench_grade.py";

/// The most the channel keeps; a graded process that floods it is cut off there.
const CAP: u64 = 8 * 1024 * 1024;

/// What pytest reported through the channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reports {
    pub reports: Vec<Report>,
    /// The session's exit status from the `end` message; `None` when it never came.
    pub end: Option<i32>,
    /// Messages that came after `end`, or lines that were no message of ours.
    pub stray: usize,
    /// Whether the channel was cut at its cap.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Report {
    pub name: String,
    /// `collect`, `setup`, `call` or `teardown`.
    pub when: String,
    /// `passed`, `failed` or `skipped`.
    pub outcome: String,
    #[serde(default)]
    pub xfail: bool,
}

#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Message {
    Report(Report),
    End { exitstatus: i32 },
}

/// Counts as pytest's terminal summary makes them (per report, not per test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub xfailed: u32,
    pub xpassed: u32,
}

/// The pipe, and the thread reading its other end.
pub struct Channel {
    write: Option<OwnedFd>,
    done: mpsc::Receiver<Reports>,
}

impl Channel {
    pub fn open() -> std::io::Result<Channel> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_all(std::fs::File::from(read)));
        });
        Ok(Channel { write: Some(write), done })
    }

    /// The descriptor the graded process inherits (close-on-exec is cleared in the child only).
    pub fn child_fd(&self) -> i32 {
        self.write.as_ref().map(|w| w.as_raw_fd()).unwrap_or(-1)
    }

    /// Everything received, once the graded process and all it started have ended (our own
    /// write end is closed here). A descendant that kept the pipe open is waited for `grace`.
    pub fn finish(mut self, grace: Duration) -> Reports {
        drop(self.write.take());
        self.done.recv_timeout(grace).unwrap_or_else(|_| Reports { stray: 1, ..Default::default() })
    }
}

fn read_all(pipe: std::fs::File) -> Reports {
    let mut out = Reports::default();
    let mut reader = BufReader::new(pipe.take(CAP));
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<Message>(line.trim_end()) {
            Ok(_) if out.end.is_some() => out.stray += 1,
            Ok(Message::Report(r)) => out.reports.push(r),
            Ok(Message::End { exitstatus }) => out.end = Some(exitstatus),
            Err(_) => out.stray += 1,
        }
    }
    out.truncated = reader.into_inner().limit() == 0;
    out
}

impl Reports {
    /// Each test's outcome as pytest's JUnit XML (xunit1) records it: an error in setup,
    /// teardown or collection is an error, a failed call a failure, an expected failure skipped.
    pub fn tests(&self) -> Vec<TestResult> {
        let mut by_name: BTreeMap<&str, Outcome> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for r in &self.reports {
            let now = match (r.when.as_str(), r.outcome.as_str()) {
                ("call", "failed") => Some(Outcome::Failed),
                (_, "failed") => Some(Outcome::Error),
                (_, "skipped") => Some(Outcome::Skipped),
                ("call", "passed") => Some(Outcome::Passed),
                _ => None,
            };
            let entry = by_name.entry(&r.name).or_insert_with(|| {
                order.push(&r.name);
                Outcome::Passed
            });
            *entry = match (*entry, now) {
                (Outcome::Failed, Some(Outcome::Error)) => Outcome::Failed,
                (Outcome::Error, _) => Outcome::Error,
                (_, Some(o)) => o,
                (o, None) => o,
            };
        }
        order.into_iter().map(|n| TestResult { name: n.to_string(), outcome: by_name[n], message: None }).collect()
    }

    /// The counts pytest's own summary line should show for these reports.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.reports {
            match (r.when.as_str(), r.outcome.as_str(), r.xfail) {
                ("call", "passed", true) => c.xpassed += 1,
                ("call", "passed", false) => c.passed += 1,
                ("call", "failed", _) => c.failed += 1,
                (_, "failed", _) => c.errors += 1,
                (_, "skipped", true) => c.xfailed += 1,
                (_, "skipped", false) => c.skipped += 1,
                _ => {}
            }
        }
        c
    }
}

/// The counts on pytest's last summary line in `output` (`3 failed, 12 passed in 0.05s`), or
/// `None` when there is none. Words fixbench does not compare (warnings, deselected) are skipped.
pub fn summary_counts(output: &str) -> Option<Counts> {
    for line in output.lines().rev() {
        let body = line.trim().trim_matches('=').trim();
        let Some((counts, _time)) = body.rsplit_once(" in ") else { continue };
        if counts == "no tests ran" {
            return Some(Counts::default());
        }
        let mut c = Counts::default();
        let mut ok = !counts.is_empty();
        for part in counts.split(", ") {
            let mut words = part.split(' ');
            let (Some(n), Some(word), None) = (words.next(), words.next(), words.next()) else {
                ok = false;
                break;
            };
            let Ok(n) = n.parse::<u32>() else {
                ok = false;
                break;
            };
            match word {
                "passed" => c.passed = n,
                "failed" => c.failed = n,
                "error" | "errors" => c.errors = n,
                "skipped" => c.skipped = n,
                "xfailed" => c.xfailed = n,
                "xpassed" => c.xpassed = n,
                _ => {}
            }
        }
        if ok {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, when: &str, outcome: &str) -> Report {
        Report { name: name.into(), when: when.into(), outcome: outcome.into(), xfail: false }
    }

    #[test]
    fn reports_fold_into_junit_outcomes_and_summary_counts() {
        let reports = Reports {
            reports: vec![
                r("t::a", "setup", "passed"),
                r("t::a", "call", "passed"),
                r("t::a", "teardown", "passed"),
                r("t::b", "setup", "passed"),
                r("t::b", "call", "failed"),
                r("t::b", "teardown", "failed"),
                r("t::c", "setup", "failed"),
                r("t::d", "setup", "skipped"),
                r("tests.test_x", "collect", "failed"),
            ],
            end: Some(1),
            ..Default::default()
        };
        let tests = reports.tests();
        let got: Vec<(&str, Outcome)> = tests.iter().map(|t| (t.name.as_str(), t.outcome)).collect();
        assert_eq!(
            got,
            [
                ("t::a", Outcome::Passed),
                ("t::b", Outcome::Failed),
                ("t::c", Outcome::Error),
                ("t::d", Outcome::Skipped),
                ("tests.test_x", Outcome::Error)
            ]
        );
        assert_eq!(reports.counts(), Counts { passed: 1, failed: 1, errors: 3, skipped: 1, ..Default::default() });
    }

    #[test]
    fn the_last_summary_line_is_read() {
        let out = "..F.\nFAILED tests/test_a.py::test_x - assert 1 == 2\n3 failed, 12 passed, 1 warning in 0.05s\n";
        assert_eq!(summary_counts(out), Some(Counts { passed: 12, failed: 3, ..Default::default() }));
        assert_eq!(
            summary_counts("==== 2 passed, 1 error in 1.2s ====\n"),
            Some(Counts { passed: 2, errors: 1, ..Default::default() })
        );
        assert_eq!(summary_counts("no tests ran in 0.01s\n"), Some(Counts::default()));
        assert_eq!(summary_counts("Traceback (most recent call last):\n  boom in here\n"), None);
    }

    #[test]
    fn the_pipe_carries_messages_and_counts_strays_after_the_end() {
        use std::io::Write as _;
        let ch = Channel::open().unwrap();
        // SAFETY: dup of a descriptor we own; the File takes ownership of the copy.
        let mut w = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(libc::dup(ch.child_fd())) };
        writeln!(w, r#"{{"t":"report","name":"t::a","when":"call","outcome":"passed","xfail":false}}"#).unwrap();
        writeln!(w, r#"{{"t":"end","exitstatus":0}}"#).unwrap();
        writeln!(w, r#"{{"t":"report","name":"t::b","when":"call","outcome":"passed","xfail":false}}"#).unwrap();
        writeln!(w, "garbage").unwrap();
        drop(w);
        let got = ch.finish(Duration::from_secs(5));
        assert_eq!(got.reports.len(), 1);
        assert_eq!((got.end, got.stray, got.truncated), (Some(0), 2, false));
    }
}
