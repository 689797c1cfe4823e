//! `fixbench inject`: bugs put into a problem's reference, each kept only when the frozen
//! suite catches it, and caught still with the others in. The result is a problem
//! `fixbench validate` accepts: the starter, `bugs.toml`, `FIX.md`, the measured baseline and a
//! PROBLEM.md drafted from what the failing tests say.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;

use crate::error::Error;
use crate::files::Files;
use crate::grade::{Grade, Grader};
use crate::problem::bugs::{Bug, BugsFile, BUGS_FILE, FIX_FILE};
use crate::problem::mutation::{self, Mutation};
use crate::problem::{Problem, PROMPT_FILE};
use crate::store::Outcome;

#[derive(Debug, Clone)]
pub struct Request {
    pub dir: PathBuf,
    pub bugs: usize,
    pub seed: u64,
    /// The share of tests the starter should fail (0..1), steering which bugs are chosen.
    pub target_failing: Option<f64>,
    /// At most this many candidate mutations are tried alone.
    pub max_tries: usize,
}

#[derive(Debug, Clone)]
pub struct Injected {
    pub bugs: Vec<Bug>,
    pub tests: u32,
    pub baseline: u32,
    pub candidates: usize,
    pub tried: usize,
    pub kept: usize,
    /// Suite runs in all: each candidate alone, the starter, each leave-one-out.
    pub graded: usize,
    pub why_short: Option<String>,
    /// Whether PROBLEM.md was written (it is left alone once someone else wrote it).
    pub prompt_written: bool,
    pub prompt: String,
    pub seconds: f64,
}

/// The first line of PROBLEM.md when `inject` drafted it: a later `inject` may redraft it.
const DRAFT_MARK: &str = "<!-- drafted by fixbench inject: edit freely, and delete this line to keep your text -->";

pub fn inject(req: &Request, grader: &Grader, cancel: &AtomicBool) -> Result<Injected> {
    let t0 = Instant::now();
    let problem = Problem::load(&req.dir)?;
    if req.bugs == 0 {
        return Err(Error::BadInput("--bugs 0: a problem needs at least one bug".into()).into());
    }
    if let Some(t) = req.target_failing.filter(|t| !(0.0..=1.0).contains(t) || *t == 0.0) {
        return Err(
            Error::BadInput(format!("--target-failing {t}: give a share of the tests, above 0 and at most 1")).into()
        );
    }
    let reference = problem.reference()?;
    let scratch = tempfile::Builder::new().prefix("fixbench-inject-").tempdir()?;
    let junit = scratch.path().join("junit.xml");
    let grade_with = |grader: &Grader, files: &Files| -> Result<Grade> {
        let g = grader.grade_files(&problem, files, &junit, cancel)?;
        if g.interrupted {
            return Err(Error::Interrupted("fixbench inject stopped".into()).into());
        }
        Ok(g)
    };
    let whole = grade_with(grader, &reference)?;
    if whole.error.is_some() || whole.void.is_some() || whole.total == 0 || whole.passed != whole.total {
        return Err(Error::BadInput(format!(
            "problem `{}`: its reference passes {} of {} tests{}: inject starts from code that passes its whole suite (make the problem with `fixbench new`)",
            problem.name,
            whole.passed,
            whole.total,
            whole.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        ))
        .into());
    }
    let total = whole.total;
    // A mutation can make a loop endless: each candidate gets a few times the whole suite's time.
    let mut quick = grader.clone();
    quick.timeout = grader.timeout.min(std::time::Duration::from_secs_f64((whole.seconds * 5.0).max(10.0)));
    let python = grader.python_for(&problem);
    let sources: Files =
        reference.iter().filter(|(k, _)| k.ends_with(".py")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let candidates = mutation::candidates(&python, &sources)?;
    let found = candidates.len();
    if candidates.is_empty() {
        return Err(Error::BadInput(format!(
            "problem `{}`: found nothing to mutate in its editable Python files ({})",
            problem.name,
            sources.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    let opts = mutation::Options {
        bugs: req.bugs,
        seed: req.seed,
        target_failing: req.target_failing,
        max_tries: req.max_tries,
    };
    let mut failing_of = |files: &Files| -> Result<Option<BTreeSet<String>>> {
        let g = grade_with(&quick, files)?;
        if g.error.is_some() || g.void.is_some() || g.total != total {
            return Ok(None);
        }
        Ok(Some(g.tests.iter().filter(|t| t.outcome != Outcome::Passed).map(|t| t.name.clone()).collect()))
    };
    let selection = mutation::select(&reference, candidates, total as usize, &opts, &mut failing_of)?;
    if selection.chosen.is_empty() {
        return Err(Error::BadInput(format!(
            "problem `{}`: none of the {} mutations tried is caught by the suite without breaking all of it{}; \
             raise --max-tries, or the suite may not test the editable code",
            problem.name,
            selection.tried,
            selection.why_short.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
        ))
        .into());
    }

    // The starter: the reference with the chosen bugs in. Everything is worked out and
    // measured first (the starter graded from a scratch copy, like any trial), then written,
    // so a failure or Ctrl-C before this point leaves the problem as it was.
    let chosen: Vec<&Mutation> = selection.chosen.iter().map(|t| &t.mutation).collect();
    let starter = mutation::apply(&reference, &chosen).map_err(anyhow::Error::msg)?;
    let bugs = bugs_of(&problem, &reference, &selection.chosen);
    let toml_text = toml::to_string(&BugsFile { bugs: bugs.clone() })?;
    let starter_grade = grade_with(grader, &starter)?;
    if starter_grade.error.is_some() || starter_grade.void.is_some() || starter_grade.total != total {
        return Err(anyhow::anyhow!(
            "problem `{}`: the starter with the chosen bugs did not grade cleanly ({}); nothing was written",
            problem.name,
            starter_grade.error.as_deref().or(starter_grade.void.as_deref()).unwrap_or("tests missing")
        ));
    }
    let baseline = starter_grade.passed;
    let mut manifest = problem.manifest.clone();
    manifest.tests = total;
    manifest.baseline = baseline;
    let prompt = draft_prompt(&problem, &starter_grade);
    let prompt_path = problem.dir.join(PROMPT_FILE);
    let existing = std::fs::read_to_string(&prompt_path).unwrap_or_default();
    let ours = existing.is_empty() || existing.starts_with(DRAFT_MARK) || existing.starts_with("# TODO");

    for (rel, text) in &starter {
        crate::store::write_atomic(&problem.dir.join(rel), text.as_bytes())?;
    }
    let notes = problem.reference_dir();
    crate::store::write_atomic(
        &notes.join(BUGS_FILE),
        format!("# Written by `fixbench inject` (seed {}): each bug as reference → starter.\n{toml_text}", req.seed)
            .as_bytes(),
    )?;
    crate::store::write_atomic(&notes.join(FIX_FILE), fix_md(&problem, &bugs).as_bytes())?;
    super::new::write_manifest(&problem.dir, &manifest)?;
    if ours {
        crate::store::write_atomic(&prompt_path, prompt.as_bytes())?;
    }
    Ok(Injected {
        bugs,
        tests: total,
        baseline,
        candidates: found,
        tried: selection.tried,
        kept: selection.kept,
        graded: selection.graded + 2,
        why_short: selection.why_short,
        prompt_written: ours,
        prompt,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The chosen mutations as bugs.toml entries: whole-line snippets unique in their file.
fn bugs_of(problem: &Problem, reference: &Files, chosen: &[mutation::Tried]) -> Vec<Bug> {
    let bugs: Vec<Bug> = chosen
        .iter()
        .map(|t| {
            let m = &t.mutation;
            let (_, fixed, broken) = mutation::snippet(&reference[&m.file], m);
            let stem = Path::new(&m.file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mut tests: Vec<String> =
                t.failing.iter().map(|n| n.rsplit("::").next().unwrap_or(n).to_string()).collect();
            tests.dedup();
            tests.sort();
            tests.dedup();
            Bug {
                id: format!("{}-{stem}-{}", m.kind.as_str().replace('_', "-"), m.line),
                file: problem.layout.reference_path(&m.file),
                summary: m.summary(),
                fixed,
                broken,
                tests,
            }
        })
        .collect();
    // In the order chosen: each snippet was checked to stay unique with those before it in.
    bugs
}

fn fix_md(problem: &Problem, bugs: &[Bug]) -> String {
    let mut out = format!(
        "# The bugs of {}\n\nInjected by `fixbench inject`; `bugs.toml` holds each as a snippet.\n\n",
        problem.name
    );
    for b in bugs {
        out.push_str(&format!("## {}\n\n{}\n\nCaught by: {}\n\n", b.id, b.summary, b.tests.join(", ")));
    }
    out
}

/// A bug report written from the starter's failing tests: their names and what they say,
/// with file names and line numbers taken out (symptoms, not locations).
fn draft_prompt(problem: &Problem, starter: &Grade) -> String {
    let failing: Vec<_> = starter.tests.iter().filter(|t| t.outcome != Outcome::Passed).collect();
    let paths = problem.layout.testpaths().join(" ");
    let mut out = format!(
        "{DRAFT_MARK}\n# {}: {} of {} tests fail\n\n{}\n\nAfter a recent change, part of the test suite fails. Find and fix the bugs in the code \
         so that the whole suite passes again. Do not change the tests.\n\nRun the tests with `python -m pytest {paths}`.\n\n## What fails\n\n",
        problem.name,
        failing.len(),
        starter.total,
        problem.manifest.description
    );
    for t in failing.iter().take(20) {
        let symptom = t.message.as_deref().map(symptom).unwrap_or_default();
        if symptom.is_empty() {
            out.push_str(&format!("- `{}`\n", t.name));
        } else {
            out.push_str(&format!("- `{}`: {symptom}\n", t.name));
        }
    }
    if failing.len() > 20 {
        out.push_str(&format!("- … and {} more\n", failing.len() - 20));
    }
    out
}

/// The first line of a failure message without paths and line numbers, at most 200 chars.
fn symptom(message: &str) -> String {
    let re = regex::Regex::new(r#"File "?[^\s",]+"?, line \d+(?:, in \S+)?,?\s*|[\w./-]+\.py(?::\d+)?:?|\bline \d+,?"#)
        .expect("a valid pattern");
    let line = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let cleaned = re.replace_all(line, "").trim().trim_start_matches(':').trim().to_string();
    crate::text::prefix(&cleaned, 200).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symptoms_keep_the_message_and_drop_locations() {
        assert_eq!(symptom("AssertionError: assert 3 == 4\n  where 3 = f()"), "AssertionError: assert 3 == 4");
        assert_eq!(symptom("src/tool/core.py:42: in get\nKeyError"), "in get");
        assert_eq!(symptom("File \"tool/x.py\", line 7, in f ValueError: bad"), "ValueError: bad");
    }
}
