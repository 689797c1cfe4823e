//! Progress while trials run: a bar on a terminal, one plain line per trial otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::model::TrialKey;
use crate::store::TrialRecord;

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    offset: usize,
}

impl Progress {
    /// `todo` trials to run; `already` finished earlier (a resumed run).
    pub fn new(todo: usize, already: usize) -> Progress {
        let fancy = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let bar = fancy.then(|| {
            let bar = ProgressBar::new(todo as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed_precise} {wide_msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, total: todo, done: 0, offset: already }
    }

    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(msg.to_string()),
            None => eprintln!("{msg}"),
        }
    }

    pub fn start(&self, key: &TrialKey) {
        let msg = format!("{} · {} · #{}", key.problem, key.agent, key.repeat);
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => eprintln!("[{}/{}] {msg} …", self.offset + self.done + 1, self.offset + self.total),
        }
    }

    pub fn finish(&mut self, t: &TrialRecord) {
        self.done += 1;
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
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => eprintln!("    {line}"),
        }
    }

    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
