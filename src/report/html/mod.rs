//! `fixbench report`: one self-contained HTML file of runs, for a browser offline. The header,
//! matrix, comparison and history are rendered by the template (`page.html`, minijinja, HTML
//! auto-escaping) so the first paint needs no script; each trial's details are a JSON block of
//! their own near the end of the body, parsed by `report.js` only when the trial is opened.
//!
//! `view` is what the template renders, `data` what is embedded as JSON; `matrix`, `header`,
//! `comparison`, `changes` and `history_chart` build the views, `trial` and `transcript` read a
//! trial's files within their caps, `intern` shares prompt items many trials send alike,
//! `escape` makes JSON safe inside a script element, and `template` renders the page.

mod changes;
mod comparison;
pub mod data;
mod escape;
mod header;
mod history_chart;
mod intern;
mod matrix;
mod template;
mod transcript;
mod trial;
mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Error;
use crate::report::group::GroupBy;
use crate::report::history::Line;
use crate::store::{Outcome, RunRecord, Store, TrialRecord};
use data::{Index, IndexTrial, TrialDetail};
use intern::Interner;
use transcript::RawTurn;
pub use transcript::DEFAULT_BUDGET_MIB;
pub use view::Banner;
use view::{Block, Page};

/// What the report shows.
#[derive(Debug, Clone)]
pub struct Options {
    /// The matrix's columns.
    pub by: GroupBy,
    /// The store's last runs the history charts cover; 0 leaves them out.
    pub history: usize,
    /// A verdict shown first (the gate's).
    pub banner: Option<Banner>,
    /// The transcript the whole page embeds, in bytes, shared out between its trials (each at
    /// most 256 KiB); what does not fit is counted on the trial's page.
    pub transcript_budget: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            by: GroupBy::Agent,
            history: DEFAULT_HISTORY,
            banner: None,
            transcript_budget: transcript::DEFAULT_BUDGET_MIB << 20,
        }
    }
}

/// The store's runs the history covers unless told otherwise.
pub const DEFAULT_HISTORY: usize = 60;

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub runs: usize,
    pub trials: usize,
}

impl Written {
    /// `wrote report.html (412 KB): 1 run, 12 trials`.
    pub fn summary(&self) -> String {
        let size = if self.bytes >= 10 * 1024 * 1024 {
            format!("{:.1} MB", self.bytes as f64 / (1024.0 * 1024.0))
        } else {
            format!("{} KB", self.bytes.div_ceil(1024))
        };
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        format!(
            "wrote {} ({size}): {}, {}",
            self.path.display(),
            plural(self.runs, "run"),
            plural(self.trials, "trial")
        )
    }
}

/// Writes the report of `runs` (read from `store`) to `out`, atomically.
pub fn write(store: &Store, runs: &[RunRecord], opts: &Options, out: &Path) -> Result<Written> {
    let html = render(store, runs, opts)?;
    crate::store::write_atomic(out, html.as_bytes()).map_err(|e| {
        let why: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        Error::BadInput(format!("cannot write the report to {}: {}", out.display(), why.join(": ")))
    })?;
    Ok(Written {
        path: out.to_path_buf(),
        bytes: html.len() as u64,
        runs: runs.len(),
        trials: runs.iter().map(|r| r.trials.len()).sum(),
    })
}

/// The report of `runs` as one HTML document.
pub fn render(store: &Store, runs: &[RunRecord], opts: &Options) -> Result<String> {
    if runs.is_empty() {
        return Err(Error::BadInput("no run to report: name one or more runs".into()).into());
    }
    let (blocks, shared, index) = trials(store, runs, opts)?;
    let several = runs.len() > 1;
    let (compare, compare_error) = match several.then(|| comparison::build(runs)) {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let page = Page {
        title: match runs {
            [one] => format!("fixbench report: {}", one.run_id),
            _ => format!("fixbench report: {} runs", runs.len()),
        },
        generator: format!("fixbench {}", env!("CARGO_PKG_VERSION")),
        banner: opts.banner.as_ref(),
        runs: runs.iter().map(header::build).collect(),
        matrix: matrix::build(runs, &opts.by),
        several,
        compare,
        compare_error,
        changes: runs.iter().skip(1).map(|later| changes::between(&runs[0], later, &opts.by)).collect(),
        history: history_chart::build(&history(store, runs, opts.history)),
        css: template::CSS,
        js: template::JS,
        index: escape::script_json(&index)?,
        shared: escape::script_json(&shared)?,
        blocks,
    };
    template::render(&page)
}

/// Every trial's JSON block, the shared prompt items, and the index.
fn trials(
    store: &Store,
    runs: &[RunRecord],
    opts: &Options,
) -> Result<(Vec<Block>, std::collections::BTreeMap<String, serde_json::Value>, Index)> {
    let mut all = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let mut planned: Vec<&TrialRecord> = run.trials.iter().collect();
        let order = crate::store::plan_order(&run.config);
        planned.sort_by(|a, b| order(a, b));
        all.extend(planned.into_iter().map(|t| (r, run, t)));
    }
    let index = index(runs, &all, &opts.by);
    let cap = transcript::trial_cap(opts.transcript_budget, all.len());
    let log_end = trial::log_end(all.len());
    let loaded: Vec<(TrialDetail, Vec<RawTurn>)> =
        parallel(all, |(_, run, t)| trial::load(&store.run_dir(&run.run_id), &run.run_id, t, cap, log_end));
    let mut interner = Interner::default();
    for (_, turns) in &loaded {
        interner.count(turns.iter().flat_map(|t| &t.new));
    }
    let blocks = parallel(loaded, |(mut detail, turns)| {
        detail.transcript.turns = turns
            .into_iter()
            .map(|t| data::Turn {
                req: t.req,
                error: t.error,
                kept: t.kept,
                new: t.new.into_iter().map(|c| interner.item(c)).collect(),
                answer: t.answer,
            })
            .collect();
        escape::script_json(&detail).map(|json| Block { id: format!("t-{}/{}", detail.run, detail.id), json })
    })
    .into_iter()
    .collect::<serde_json::Result<Vec<Block>>>()?;
    let shared = interner.table().into_iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Ok((blocks, shared, index))
}

/// What the filters and cell lists read of every trial; texts each stored once.
fn index(runs: &[RunRecord], all: &[(usize, &RunRecord, &TrialRecord)], by: &GroupBy) -> Index {
    let mut out = Index { runs: runs.iter().map(|r| r.run_id.clone()).collect(), ..Default::default() };
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for (r, run, t) in all {
        let mut text = Vec::new();
        let failing = t.grade.tests.iter().filter(|x| matches!(x.outcome, Outcome::Failed | Outcome::Error));
        let texts = failing
            .flat_map(|x| std::iter::once(x.name.as_str()).chain(x.message.as_deref()))
            .chain(t.error.as_deref())
            .chain(t.grade.void.as_deref());
        for s in texts {
            let next = seen.len() as u32;
            let at = *seen.entry(s).or_insert_with(|| {
                out.strings.push(s.to_string());
                next
            });
            if !text.contains(&at) {
                text.push(at);
            }
        }
        out.trials.push(IndexTrial {
            run: *r,
            problem: t.problem.clone(),
            agent: t.agent.clone(),
            repeat: t.repeat,
            group: by.key(run, t),
            resolved: t.grade.resolved,
            passed: t.grade.passed,
            total: t.grade.total,
            text,
        });
    }
    out
}

/// The history lines of the store's last `n` runs, oldest first; runs already loaded are not
/// read again.
fn history(store: &Store, runs: &[RunRecord], n: usize) -> Vec<Line> {
    if n == 0 {
        return Vec::new();
    }
    let Ok(mut ids) = store.run_ids() else { return Vec::new() };
    ids.drain(..ids.len().saturating_sub(n));
    let have: HashMap<&str, &RunRecord> = runs.iter().map(|r| (r.run_id.as_str(), r)).collect();
    let missing: Vec<(&Store, &str)> =
        ids.iter().filter(|id| !have.contains_key(id.as_str())).map(|id| (store, id.as_str())).collect();
    let mut read: HashMap<&str, Line> = missing
        .iter()
        .zip(crate::report::runs::load_in_parallel(&missing))
        .map(|((_, id), r)| (*id, r.map_or_else(|e| Line::unreadable(id, &e.to_string()), |run| Line::of(&run))))
        .collect();
    ids.iter()
        .map(|id| have.get(id.as_str()).map(|r| Line::of(r)).or_else(|| read.remove(id.as_str())).expect("read above"))
        .collect()
}

/// Threads for reading trials' files even on a machine of few cores: the reads wait on the disk
/// more than on a core.
const THREADS_AT_LEAST: usize = 6;

/// `f` over `items` on a few threads (at most 8), keeping their order.
fn parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    crate::report::runs::in_parallel(items, crate::report::runs::cores().clamp(1, 8).max(THREADS_AT_LEAST), f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synth;

    #[test]
    fn a_banner_is_shown_first_and_the_written_line_says_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("results"));
        let ids = synth::generate(&store, &synth::Options { runs: 2, trials: 12, ..Default::default() }).unwrap();
        let runs: Vec<RunRecord> = ids.iter().map(|id| store.load(id).unwrap()).collect();
        let banner =
            Banner { title: "gate: FAILED".into(), passed: false, lines: vec!["resolve rate <down> 20 pts".into()] };
        let opts = Options { banner: Some(banner), ..Default::default() };
        let out = dir.path().join("r.html");
        let written = write(&store, &runs, &opts, &out).unwrap();
        assert_eq!(
            written.summary(),
            format!("wrote {} ({} KB): 2 runs, 12 trials", out.display(), written.bytes.div_ceil(1024))
        );
        let html = std::fs::read_to_string(&out).unwrap();
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s}"));
        assert!(at(r#"<section id="banner" class="banner failed">"#) < at(r#"<table id="matrix">"#));
        assert!(html.contains("resolve rate &lt;down&gt; 20 pts"));
        assert!(at(r#"<section id="compare">"#) < at(r#"<section id="history">"#));
        assert!(render(&store, &[], &opts).is_err());
    }
}
