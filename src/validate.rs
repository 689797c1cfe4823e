//! Validation (`fixbench validate`): proves each problem sound. The starter passes exactly `baseline` of
//! `tests`, the reference passes all, the bugs of `bugs.toml` turn the reference into the
//! starter exactly, and each bug alone makes at least one test fail.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use serde::Serialize;

use crate::error::Error;
use crate::grade::{Grade, Grader};
use crate::problem::bugs::{self, BUGS_FILE, FIX_FILE};
use crate::problem::Problem;
use crate::store::Outcome;
use crate::workdir;

#[derive(Debug, Serialize)]
pub struct ProblemReport {
    pub problem: String,
    pub ok: bool,
    pub difficulty: Option<String>,
    pub tests: Option<u32>,
    pub baseline: Option<u32>,
    pub starter_passed: Option<u32>,
    pub reference_passed: Option<u32>,
    pub bugs: Vec<BugReport>,
    /// Whether `bugs` were checked: only a suite that collects all its tests can say.
    pub bugs_checked: bool,
    /// How long the reference's suite took, pytest's start and the sandbox's included.
    pub suite_s: Option<f64>,
    pub reasons: Vec<String>,
    /// What does not make the problem unsound but costs its users (a slow suite).
    pub warnings: Vec<String>,
}

/// A suite slower than this is flagged: the point of a problem is a loop of minutes.
pub const SLOW_SUITE_S: f64 = 10.0;

#[derive(Debug, Serialize)]
pub struct BugReport {
    pub id: String,
    pub file: String,
    pub caught_by: Vec<String>,
}

/// Checks the problems `names` (all when empty) of `problems_dir`, one report per problem
/// folder; a folder whose layout is broken is reported, not skipped.
pub fn validate(
    problems_dir: &Path,
    names: &[String],
    grader: &Grader,
    cancel: &AtomicBool,
) -> Result<Vec<ProblemReport>> {
    problem_dirs(problems_dir, names)?.iter().map(|d| validate_dir(d, grader, cancel)).collect()
}

/// The problems of `problems_dir` named in `names` (all when empty) that load; those that do
/// not are reported by [`validate`].
pub fn loadable(problems_dir: &Path, names: &[String]) -> Result<Vec<Problem>> {
    Ok(problem_dirs(problems_dir, names)?.iter().filter_map(|d| Problem::load(d).ok()).collect())
}

/// Problem folders to check; a folder whose layout is broken is still reported, not skipped.
fn problem_dirs(root: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| {
            Error::BadInput(format!("cannot read the problems folder {}: {e} (pass --problems-dir)", root.display()))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    dirs.sort();
    if names.is_empty() {
        return Ok(dirs);
    }
    names
        .iter()
        .map(|n| {
            dirs.iter().find(|d| d.file_name().is_some_and(|f| f == n.as_str())).cloned().ok_or_else(|| {
                let known = dirs.iter().filter_map(|d| d.file_name()).map(|f| f.to_string_lossy());
                crate::problem::unknown(n, root, known).into()
            })
        })
        .collect()
}

fn validate_dir(dir: &Path, grader: &Grader, cancel: &AtomicBool) -> Result<ProblemReport> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut report = ProblemReport {
        problem: name,
        ok: false,
        difficulty: None,
        tests: None,
        baseline: None,
        starter_passed: None,
        reference_passed: None,
        bugs: vec![],
        bugs_checked: false,
        suite_s: None,
        reasons: vec![],
        warnings: vec![],
    };
    let problem = match Problem::load(dir) {
        Ok(p) => p,
        Err(e) => {
            report.reasons.push(e.to_string());
            return Ok(report);
        }
    };
    let m = &problem.manifest;
    report.difficulty = Some(format!("{:?}", m.difficulty).to_lowercase());
    report.tests = Some(m.tests);
    report.baseline = Some(m.baseline);
    let r = &mut report.reasons;

    let fix_md = problem.reference_dir().join(FIX_FILE);
    if !fix_md.is_file() {
        r.push(format!("{} is missing: list every bug there", fix_md.display()));
    }
    let bug_list = match problem.bugs() {
        Ok(b) => b,
        Err(e) => {
            r.push(e.to_string());
            vec![]
        }
    };

    let scratch = tempfile::tempdir()?;
    // Trials and grading copy regular files only: a link in the problem would silently vanish.
    let layout = &problem.layout;
    let dirs = layout.editable.iter().chain(&layout.tests).filter(|e| e.dir).map(|e| problem.dir.join(&e.path));
    for (i, dir) in dirs.chain([problem.reference_dir()]).enumerate() {
        let left_out = workdir::copy_tree(&dir, &scratch.path().join(format!("probe-{i}")))?.paths;
        if !left_out.is_empty() {
            r.push(format!(
                "{} holds symbolic links or special files, which trials and grading leave out: {}; put the files themselves there",
                dir.display(),
                left_out.join(", ")
            ));
        }
    }
    let junit = scratch.path().join("junit.xml");
    let starter = finished(grader.grade(&problem, &problem.dir, &junit, cancel)?)?;
    report.starter_passed = Some(starter.passed);

    let reference = problem.reference()?;
    let graded = finished(grader.grade_files(&problem, &reference, &junit, cancel)?)?;
    report.reference_passed = Some(graded.passed);
    report.suite_s = Some(graded.seconds);
    // An editable folder that is itself on sys.path lets the agent add top-level modules
    // that shadow what the tests import (a requirement, a helper).
    for e in problem.layout.editable.iter().filter(|e| e.dir && problem.layout.pythonpath.contains(&e.path)) {
        report.warnings.push(format!(
            "`editable` lists `{}/`, which is also on `pythonpath`: the agent may add modules there that shadow what the tests import; list the package inside it instead",
            e.path
        ));
    }
    if graded.seconds > SLOW_SUITE_S {
        report.warnings.push(format!(
            "its suite takes {:.1} s (over {SLOW_SUITE_S:.0} s): every trial pays it; trim slow tests or mark them out with `pytest_args`",
            graded.seconds
        ));
    }
    // The suite's size once, then what each side passes; only a suite that runs whole can say
    // which test catches a bug.
    let runs_whole =
        starter.error.is_none() && graded.error.is_none() && starter.total == m.tests && graded.total == m.tests;
    if starter.total != m.tests || graded.total != m.tests {
        let collected = if starter.total == graded.total {
            format!("{}", starter.total)
        } else {
            format!("{} (starter) and {} (reference)", starter.total, graded.total)
        };
        r.push(format!(
            "the suite collects {collected} test(s) but problem.toml says `tests = {}` (a test file that does not parse or import counts as one error)",
            m.tests
        ));
    }
    check_counts("starter", &starter, m.baseline, r);
    check_counts("reference", &graded, m.tests, r);
    report.bugs_checked = runs_whole;
    if !runs_whole && !bug_list.is_empty() {
        r.push(format!("the bugs of {BUGS_FILE} were not checked: the suite does not run whole"));
    }

    if runs_whole && !bug_list.is_empty() {
        let all: Vec<&bugs::Bug> = bug_list.iter().collect();
        match bugs::apply(&reference, &all) {
            Err(e) => r.push(e),
            Ok(rebuilt) => {
                let starter_files = problem.starter()?;
                if rebuilt != starter_files {
                    let differing: Vec<&String> = rebuilt
                        .keys()
                        .chain(starter_files.keys())
                        .filter(|k| rebuilt.get(*k) != starter_files.get(*k))
                        .collect();
                    r.push(format!(
                        "the reference with every bug of {BUGS_FILE} put back differs from the starter in {:?}: some difference is not listed as a bug",
                        differing
                    ));
                }
            }
        }
        for bug in &bug_list {
            let files = match bugs::apply(&reference, &[bug]) {
                Ok(f) => f,
                Err(e) => {
                    r.push(e);
                    continue;
                }
            };
            let g = finished(grader.grade_files(&problem, &files, &junit, cancel)?)?;
            let caught_by: Vec<String> = g
                .tests
                .iter()
                .filter(|t| t.outcome != Outcome::Passed)
                .map(|t| t.name.rsplit("::").next().unwrap_or(&t.name).to_string())
                .collect();
            if caught_by.is_empty() {
                r.push(format!(
                    "bug `{}` ({}) is caught by no test: putting it back leaves every test passing",
                    bug.id, bug.file
                ));
            }
            for listed in &bug.tests {
                if !caught_by.contains(listed) {
                    r.push(format!("bug `{}` lists test `{listed}`, which does not fail with that bug", bug.id));
                }
            }
            report.bugs.push(BugReport { id: bug.id.clone(), file: bug.file.clone(), caught_by });
        }
    }
    report.ok = report.reasons.is_empty();
    Ok(report)
}

fn check_counts(what: &str, g: &Grade, expect_passed: u32, reasons: &mut Vec<String>) {
    if let Some(e) = &g.error {
        reasons.push(format!("the {what}'s tests did not run: {e}"));
        return;
    }
    if let Some(v) = &g.void {
        reasons.push(format!("the {what}'s grading is not believed: {v}"));
        return;
    }
    if g.passed != expect_passed {
        reasons.push(format!("the {what} passes {} of {} tests; expected {expect_passed}", g.passed, g.total));
    }
}

/// A grade, unless Ctrl-C stopped it (then validation stops, exit 130).
fn finished(g: Grade) -> Result<Grade> {
    if g.interrupted {
        return Err(Error::Interrupted("validation stopped".into()).into());
    }
    Ok(g)
}
