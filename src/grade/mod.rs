//! Stage 4: grading. pytest runs in a clean folder holding the frozen tests, our own
//! `pytest.ini` and only the agent's package; outcomes come from pytest's JUnit XML.
//! Nothing else the agent wrote (tests, conftest.py, ini files, .pth, sitecustomize) takes part.

pub mod junit;
pub mod python_env;
pub mod starter;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::agent::exec::{self, ExecSpec};
use crate::error::Error;
use crate::problem::Problem;
use crate::store::{Outcome, TestResult};
use crate::workdir;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grade {
    pub tests: Vec<TestResult>,
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    pub total: u32,
    /// Set when pytest could not grade normally (no report, timeout).
    pub error: Option<String>,
    pub seconds: f64,
}

impl Grade {
    fn count(tests: Vec<TestResult>, error: Option<String>, seconds: f64) -> Grade {
        let n = |o| tests.iter().filter(|t| t.outcome == o).count() as u32;
        Grade {
            passed: n(Outcome::Passed),
            failed: n(Outcome::Failed),
            errors: n(Outcome::Error),
            skipped: n(Outcome::Skipped),
            total: tests.len() as u32,
            tests,
            error,
            seconds,
        }
    }

    pub fn from_tests(tests: Vec<TestResult>) -> Grade {
        Grade::count(tests, None, 0.0)
    }

    pub fn resolved(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }

    pub fn passing(&self) -> BTreeSet<&str> {
        self.tests.iter().filter(|t| t.outcome == Outcome::Passed).map(|t| t.name.as_str()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Grader {
    pub python: PathBuf,
    pub timeout: Duration,
}

impl Grader {
    /// A grader for `python`. A relative path with a folder in it (`.venv/bin/python`) is made
    /// absolute here, since pytest runs with the grading folder as its cwd; a bare name
    /// (`python3`) is looked up on PATH.
    pub fn new(python: PathBuf, timeout: Duration) -> Grader {
        let python = if python.is_relative() && python.components().count() > 1 {
            std::env::current_dir().map(|d| d.join(&python)).unwrap_or(python)
        } else {
            python
        };
        Grader { python, timeout }
    }

    /// Checks that the Python exists and has pytest; returns pytest's version. With `cache_dir`, the
    /// answer is reused while the Python and its packages are unchanged (see [`python_env`]).
    pub fn check(&self, cache_dir: Option<&Path>) -> Result<String> {
        let setup = "run `scripts/setup.sh` (it creates .venv with pytest), or pass --python / set FIXBENCH_PYTHON";
        if self.python.components().count() > 1 && !self.python.exists() {
            return Err(Error::Environment(format!("no Python at {}: {setup}", self.python.display())).into());
        }
        python_env::pytest_version(&self.python, cache_dir).ok_or_else(|| {
            Error::Environment(format!(
                "{} cannot import pytest (or does not run): {setup}",
                self.python.display()
            ))
            .into()
        })
    }

    /// Grades `package_src` (a package folder, possibly missing) against the problem's frozen
    /// tests. The JUnit report is written to `junit_out`.
    pub fn grade(&self, problem: &Problem, package_src: &Path, junit_out: &Path) -> Result<Grade> {
        let start = std::time::Instant::now();
        let dir = tempfile::Builder::new().prefix("fixbench-grade-").tempdir()?;
        let grade_dir = dir.path().join("g");
        workdir::prepare_grade(problem, package_src, &grade_dir)?;
        let report = dir.path().join("junit.xml");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
        env.insert("HOME".into(), home.to_string_lossy().into_owned());
        env.insert("LANG".into(), "C.UTF-8".into());
        env.insert("PYTEST_DISABLE_PLUGIN_AUTOLOAD".into(), "1".into());
        env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
        env.insert("PYTHONHASHSEED".into(), "0".into());
        let spec = ExecSpec {
            argv: vec![
                self.python.to_string_lossy().into_owned(),
                "-I".into(),
                "-B".into(),
                "-m".into(),
                "pytest".into(),
                "-p".into(),
                "no:cacheprovider".into(),
                "-q".into(),
                "--color=no".into(),
                format!("--junitxml={}", report.display()),
                "-o".into(),
                "junit_family=xunit1".into(),
            ],
            cwd: grade_dir.clone(),
            env,
            env_remove: vec![],
            env_clear: true,
            timeout: self.timeout,
            stdout: dir.path().join("pytest.out"),
            stderr: dir.path().join("pytest.err"),
            log_cap: 1024 * 1024,
        };
        let run = exec::run(&spec, &AtomicBool::new(false));
        let seconds = start.elapsed().as_secs_f64();
        if let Some(e) = run.spawn_error {
            return Err(Error::Environment(format!("{e}: check --python / FIXBENCH_PYTHON")).into());
        }
        if run.timed_out {
            return Ok(Grade::count(vec![], Some(format!("pytest ran past {:.0} s and was killed", self.timeout.as_secs_f64())), seconds));
        }
        let xml = match std::fs::read_to_string(&report) {
            Ok(x) => x,
            Err(_) => {
                let tail = tail_of(&dir.path().join("pytest.out"));
                return Ok(Grade::count(vec![], Some(format!("pytest wrote no report (exit {:?}): {tail}", run.exit_code)), seconds));
            }
        };
        let _ = std::fs::write(junit_out, &xml);
        match junit::parse(&xml) {
            Ok(tests) => Ok(Grade::count(tests, None, seconds)),
            Err(e) => Ok(Grade::count(vec![], Some(format!("pytest's report does not parse: {e}")), seconds)),
        }
    }
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Lines a graded run up against the starter's outcomes: every starter test appears exactly
/// once (a test missing from the run, e.g. after an import error, counts as an error), and
/// names that are not frozen tests (collection errors) are dropped.
pub fn align(starter: &Grade, mut graded: Grade) -> Grade {
    let collection_error = graded
        .tests
        .iter()
        .find(|t| !starter.tests.iter().any(|s| s.name == t.name) && t.outcome != Outcome::Passed)
        .and_then(|t| t.message.clone());
    let by_name: BTreeMap<&str, &TestResult> = graded.tests.iter().map(|t| (t.name.as_str(), t)).collect();
    let tests: Vec<TestResult> = starter
        .tests
        .iter()
        .map(|s| match by_name.get(s.name.as_str()) {
            Some(t) => (*t).clone(),
            None => TestResult {
                name: s.name.clone(),
                outcome: Outcome::Error,
                message: Some(match &collection_error {
                    Some(m) => format!("not run: {m}"),
                    None => graded.error.clone().map(|e| format!("not run: {e}")).unwrap_or_else(|| "not run".into()),
                }),
            },
        })
        .collect();
    graded.tests = vec![];
    Grade::count(tests, graded.error.take(), graded.seconds)
}

/// Tests that flipped: (fixed: fail → pass, broken: pass → fail).
pub fn flips(starter: &Grade, now: &Grade) -> (Vec<String>, Vec<String>) {
    let before = starter.passing();
    let after = now.passing();
    let fixed = after.difference(&before).map(|s| s.to_string()).collect();
    let broken = before.difference(&after).map(|s| s.to_string()).collect();
    (fixed, broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, outcome: Outcome) -> TestResult {
        TestResult { name: name.into(), outcome, message: None }
    }

    #[test]
    fn missing_tests_count_as_errors_and_flips_are_named() {
        let starter = Grade::count(vec![t("a", Outcome::Passed), t("b", Outcome::Failed), t("c", Outcome::Passed)], None, 0.0);
        let mut collect = t("tests.test_x", Outcome::Error);
        collect.message = Some("ImportError: boom".into());
        let now = align(&starter, Grade::count(vec![t("b", Outcome::Passed), t("a", Outcome::Failed), collect], None, 0.0));
        assert_eq!((now.passed, now.failed, now.errors, now.total), (1, 1, 1, 3));
        assert_eq!(now.tests[2].message.as_deref(), Some("not run: ImportError: boom"));
        let (fixed, broken) = flips(&starter, &now);
        assert_eq!(fixed, ["b"]);
        assert_eq!(broken, ["a", "c"]);
    }
}
