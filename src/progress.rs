//! Progress while trials run. On a terminal: the overall bar with its ETA, and one line per
//! trial in flight (problem, agent, server, elapsed, requests so far), refreshed by
//! [`Progress::tick`]. Otherwise plain lines: one when a trial starts, one when it ends.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::model::TrialKey;
use crate::store::TrialRecord;

/// Counts a trial's requests so far.
pub type RequestCount = Box<dyn Fn() -> usize + Send + Sync>;

pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    lines: Mutex<BTreeMap<u64, Line>>,
    next: AtomicU64,
    total: usize,
    done: AtomicUsize,
    started: AtomicUsize,
    offset: usize,
}

/// A trial in flight.
struct Line {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
    requests: Option<RequestCount>,
}

/// Which line a trial has.
#[derive(Debug, Clone, Copy)]
pub struct LineId(u64);

impl Progress {
    /// `todo` trials to run; `already` finished earlier (a resumed run).
    pub fn new(todo: usize, already: usize) -> Progress {
        let fancy = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let multi = fancy.then(MultiProgress::new);
        let overall = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(todo as u64));
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed_precise} (eta {eta}) {wide_msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            multi,
            overall,
            lines: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            total: todo,
            done: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            offset: already,
        }
    }

    pub fn note(&self, msg: &str) {
        match &self.overall {
            Some(bar) => bar.set_message(msg.to_string()),
            None => eprintln!("{msg}"),
        }
    }

    /// A trial starts (on `server`, when there is one).
    pub fn start(&self, key: &TrialKey, server: Option<&str>) -> LineId {
        let id = LineId(self.next.fetch_add(1, Ordering::SeqCst));
        let on = server.map(|s| format!(" · {}", s.trim_start_matches("http://"))).unwrap_or_default();
        let label = format!("{} · {} · #{}{on}", key.problem, key.agent, key.repeat);
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {spinner} {wide_msg}").expect("valid template"));
            bar.set_message(label.clone());
            bar
        });
        if bar.is_none() {
            eprintln!("[{}/{}] {label} …", self.offset + n, self.offset + self.total);
        }
        self.lines.lock().unwrap().insert(id.0, Line { bar, label, started: Instant::now(), requests: None });
        id
    }

    /// The trial's requests can be counted from now on.
    pub fn watch(&self, id: LineId, requests: RequestCount) {
        if let Some(line) = self.lines.lock().unwrap().get_mut(&id.0) {
            line.requests = Some(requests);
        }
    }

    /// What the trial is doing now, shown after its label (`grading`).
    pub fn phase(&self, id: LineId, what: &str) {
        if let Some(line) = self.lines.lock().unwrap().get_mut(&id.0) {
            if !line.label.ends_with(what) {
                line.label = format!("{} · {what}", line.label);
            }
        }
    }

    /// Refreshes the lines of the trials in flight (a terminal only: plain output prints
    /// nothing between a trial's start and end). Cheap at 64 in flight.
    pub fn tick(&self) {
        if self.multi.is_none() {
            return;
        }
        for line in self.lines.lock().unwrap().values() {
            if let Some(bar) = &line.bar {
                let requests = line.requests.as_ref().map(|count| format!(" · {} req", count())).unwrap_or_default();
                bar.set_message(format!("{} · {:.0} s{requests}", line.label, line.started.elapsed().as_secs_f64()));
                bar.tick();
            }
        }
    }

    /// The trial ended without a record (interrupted).
    pub fn abandon(&self, id: LineId) {
        if let Some(Line { bar: Some(bar), .. }) = self.lines.lock().unwrap().remove(&id.0) {
            bar.finish_and_clear();
        }
    }

    pub fn finish(&self, id: LineId, t: &TrialRecord) {
        self.abandon(id);
        self.done.fetch_add(1, Ordering::SeqCst);
        let line = format!(
            "{} · {} · #{}: {}/{} passed{}{}{} ({:.1} s)",
            t.problem,
            t.agent,
            t.repeat,
            t.grade.passed,
            t.grade.total,
            if t.grade.resolved { ", resolved" } else { "" },
            if t.agent_run.timed_out { ", timed out" } else { "" },
            t.agent_flag().map(|f| format!(", agent {f}")).unwrap_or_default(),
            t.wall_s
        );
        match (&self.multi, &self.overall) {
            (Some(m), Some(bar)) => {
                let _ = m.println(line);
                bar.inc(1);
            }
            _ => eprintln!("    {line}"),
        }
    }

    pub fn done(&self) {
        if let Some(bar) = &self.overall {
            bar.finish_and_clear();
        }
    }
}
