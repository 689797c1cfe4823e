//! Stage 4: grading. pytest runs in a clean folder holding the frozen tests, our own
//! `pytest.ini` and only the agent's package. Nothing else the agent wrote (tests, conftest.py,
//! ini files, .pth, sitecustomize) takes part. The agent's package is untrusted code that runs
//! inside the pytest process, so grading is contained as the agent was (bubblewrap: the
//! grading folder read-only, a separate folder for the JUnit file the only one writable), and
//! the outcome is believed only when the JUnit file, fixbench's own report channel and
//! pytest's summary line agree ([`crosscheck`]).

pub mod channel;
pub mod crosscheck;
pub mod environment;
pub mod junit;
pub mod python_env;
pub mod starter;
pub mod suspicious;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::error::Error;
use crate::exec::{self, ExecOutcome, ExecSpec};
use crate::files::Files;
use crate::model::GradeIsolation;
use crate::problem::Problem;
use crate::sandbox::Sandbox;
use crate::store::{Outcome, TestResult, TrialGrade};
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
    /// Set when the accounts of the session disagree (see [`crosscheck`]): the grade is not
    /// believed, and the outcomes are those of fixbench's own channel.
    pub void: Option<String>,
    /// Ctrl-C stopped the grading: nothing of it counts.
    pub interrupted: bool,
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
            void: None,
            interrupted: false,
            seconds,
        }
    }

    pub fn from_tests(tests: Vec<TestResult>) -> Grade {
        Grade::count(tests, None, 0.0)
    }

    pub fn resolved(&self) -> bool {
        self.total > 0 && self.passed == self.total && self.void.is_none()
    }

    pub fn passing(&self) -> BTreeSet<&str> {
        self.tests.iter().filter(|t| t.outcome == Outcome::Passed).map(|t| t.name.as_str()).collect()
    }

    /// What a trial's record keeps of this grade (lined up by [`align`]): the counts against
    /// the starter's, the tests that flipped, and `suspicious`, the lines of the agent's
    /// change that reach for the grader ([`suspicious::scan`]).
    pub fn into_record(self, starter: &Grade, suspicious: Vec<String>) -> TrialGrade {
        let (fixed, broken) = flips(starter, &self);
        TrialGrade {
            resolved: self.resolved(),
            passed: self.passed,
            failed: self.failed,
            errors: self.errors,
            skipped: self.skipped,
            total: self.total,
            baseline: starter.passed,
            fixed,
            broken,
            tests: self.tests,
            void: self.void,
            suspicious,
            grade_s: self.seconds,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Grader {
    pub python: PathBuf,
    pub timeout: Duration,
    /// The sandbox pytest runs in; `None` under `--grade-isolation none`.
    pub sandbox: Option<Sandbox>,
    /// The environment of each problem that declares `requires` (made by
    /// [`Grader::with_environments`]); the others are graded with `python`.
    pub environments: BTreeMap<String, environment::Env>,
}

/// How long a process that inherited the report channel may keep it open after pytest ended.
const CHANNEL_GRACE: Duration = Duration::from_secs(5);

impl Grader {
    /// A grader for `python`. A relative path with a folder in it (`.venv/bin/python`) is made
    /// absolute here, since pytest runs with the grading folder as its cwd; a bare name
    /// (`python3`) is looked up on PATH.
    pub fn new(python: PathBuf, timeout: Duration, sandbox: Option<Sandbox>) -> Grader {
        let python = if python.is_relative() && python.components().count() > 1 {
            std::env::current_dir().map(|d| d.join(&python)).unwrap_or(python)
        } else {
            python
        };
        Grader { python, timeout, sandbox, environments: BTreeMap::new() }
    }

    /// The Python `problem`'s tests run under: its environment's, else the grading Python.
    pub fn python_for(&self, problem: &Problem) -> PathBuf {
        self.environments.get(&problem.name).map(|e| e.python.clone()).unwrap_or_else(|| self.resolved_python())
    }

    /// Whether `problem`'s environment is no longer as it was made (an agent run outside the
    /// sandbox wrote into it): the trial's grade is void then, and the next run makes it again.
    pub fn environment_changed(&self, problem: &Problem) -> Result<bool> {
        match self.environments.get(&problem.name) {
            Some(env) => Ok(environment::tree_of(&env.dir)? != env.tree),
            None => Ok(false),
        }
    }

    /// Makes (or finds, cached under `cache_root`) the environment of each problem that declares
    /// `requires`, one per distinct requirement set, before anything runs; `note` hears of each
    /// one made. A requirement that cannot be installed is an error naming the problem.
    pub fn with_environments(
        mut self,
        problems: &[&Problem],
        pytest_version: &str,
        cache_root: &Path,
        cancel: &AtomicBool,
        note: &mut dyn FnMut(&str),
    ) -> Result<Grader> {
        let base = self.resolved_python();
        // Problems with the same requirements share one environment, checked once.
        let mut found: BTreeMap<BTreeSet<&str>, environment::Env> = BTreeMap::new();
        for p in problems.iter().filter(|p| !p.requires().is_empty()) {
            let set: BTreeSet<&str> = p.requires().iter().map(|r| r.trim()).collect();
            if let Some(env) = found.get(&set) {
                self.environments.insert(p.name.clone(), env.clone());
                continue;
            }
            let spec = environment::Spec { requires: p.requires(), base_python: &base, pytest_version };
            let env = environment::ensure(&spec, cache_root, &p.dir, cancel)?;
            if env.made {
                note(&format!(
                    "made the environment of {} ({}) in {:.1} s",
                    p.name,
                    p.requires().join(", "),
                    env.seconds
                ));
            }
            found.insert(set, env.clone());
            self.environments.insert(p.name.clone(), env);
        }
        Ok(self)
    }

    /// Checks that the Python exists and has pytest; returns pytest's version. With `cache_dir`, the
    /// answer is reused while the Python and its packages are unchanged (see [`python_env`]).
    pub fn check(&self, cache_dir: Option<&Path>) -> Result<String> {
        let setup = "run `scripts/setup.sh` (it creates .venv with pytest), or pass --python / set FIXBENCH_PYTHON";
        if self.python.components().count() > 1 && !self.python.exists() {
            return Err(Error::Environment(format!("no Python at {}: {setup}", self.python.display())).into());
        }
        python_env::pytest_version(&self.python, cache_dir).ok_or_else(|| {
            Error::Environment(format!("{} cannot import pytest (or does not run): {setup}", self.python.display()))
                .into()
        })
    }

    /// The isolation pytest runs under.
    pub fn isolation(&self) -> GradeIsolation {
        if self.sandbox.is_some() {
            GradeIsolation::Sandbox
        } else {
            GradeIsolation::None
        }
    }

    /// Grades the editable files under `src_root` (a trial's workdir, the problem folder for
    /// its starter, any folder laid out like it; missing files stay missing) against the
    /// problem's frozen tests. The JUnit report is copied to `junit_out`. `cancel` (Ctrl-C)
    /// stops it at once.
    pub fn grade(&self, problem: &Problem, src_root: &Path, junit_out: &Path, cancel: &AtomicBool) -> Result<Grade> {
        let start = std::time::Instant::now();
        let dir = tempfile::Builder::new().prefix("fixbench-grade-").tempdir()?;
        // Shown read-only: the tests, our pytest.ini and the package. Written: `out/` alone.
        let grade_dir = dir.path().join("g");
        let out_dir = dir.path().join("out");
        workdir::prepare_grade(problem, src_root, &grade_dir)?;
        std::fs::create_dir_all(&out_dir)?;
        let report = out_dir.join("junit.xml");
        let python = self.python_for(problem);
        let plugins = self.environments.get(&problem.name).map(|e| e.plugins.as_slice()).unwrap_or_default();
        let mut path = vec!["/usr/local/bin".to_string(), "/usr/bin".into(), "/bin".into()];
        if let Some(bin) = python.parent() {
            path.insert(0, bin.to_string_lossy().into_owned());
        }
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), path.join(":"));
        env.insert("HOME".into(), out_dir.to_string_lossy().into_owned());
        env.insert("LANG".into(), "C.UTF-8".into());
        // No plugin loads by itself: those a problem's environment was made with (what
        // `requires` installed) are named with `-p` below, so nothing that lands in it later,
        // nor the grading Python's own plugins, takes part.
        env.insert("PYTEST_DISABLE_PLUGIN_AUTOLOAD".into(), "1".into());
        env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
        env.insert("PYTHONHASHSEED".into(), "0".into());
        // The entry point lies beside the grading folder, shown read-only; `-I` keeps its
        // folder off sys.path.
        let entry_dir = dir.path().join("entry");
        let entry = entry_dir.join(channel::ENTRY_FILE);
        std::fs::create_dir_all(&entry_dir)?;
        std::fs::write(&entry, channel::ENTRY)?;
        let channel = channel::Channel::open()?;
        let spec = ExecSpec {
            argv: vec![
                python.to_string_lossy().into_owned(),
                "-I".into(),
                "-B".into(),
                entry.to_string_lossy().into_owned(),
                channel.child_fd().to_string(),
                "-p".into(),
                "no:cacheprovider".into(),
                "-q".into(),
                "--color=no".into(),
                format!("--junitxml={}", report.display()),
                "-o".into(),
                "junit_family=xunit1".into(),
            ]
            .into_iter()
            .chain(plugins.iter().flat_map(|p| ["-p".to_string(), p.clone()]))
            .chain(problem.manifest.pytest_args.iter().cloned())
            .collect(),
            cwd: grade_dir.clone(),
            env,
            env_clear: true,
            timeout: self.timeout,
            stdout: dir.path().join("pytest.out"),
            stderr: dir.path().join("pytest.err"),
            log_cap: 1024 * 1024,
            inherit_fd: Some(channel.child_fd()),
        };
        let run = match &self.sandbox {
            Some(sb) => sb.run_in(spec, &[grade_dir.clone(), entry_dir], std::slice::from_ref(&out_dir), cancel),
            None => exec::run(&spec, cancel),
        };
        let reports = channel.finish(CHANNEL_GRACE);
        let seconds = start.elapsed().as_secs_f64();
        if run.interrupted {
            return Ok(Grade { interrupted: true, seconds, ..Default::default() });
        }
        if let Some(e) = run.spawn_error {
            return Err(Error::Environment(format!("{e}: check --python / FIXBENCH_PYTHON")).into());
        }
        if run.timed_out {
            let why = format!(
                "pytest ran past its {:.0} s limit (--grade-timeout) and was killed",
                self.timeout.as_secs_f64()
            );
            return Ok(Grade::count(vec![], Some(why), seconds));
        }
        let stdout = std::fs::read_to_string(dir.path().join("pytest.out")).unwrap_or_default();
        let xml = std::fs::read_to_string(&report).ok();
        if xml.is_none() && reports.end.is_none() && reports.reports.is_empty() {
            let why = format!("pytest wrote no report ({}): {}", ended(&run), tail_of(&stdout));
            return Ok(Grade::count(vec![], Some(why), seconds));
        }
        let parsed = match &xml {
            None => Err("is missing".to_string()),
            Some(x) => junit::parse(x).map_err(|e| format!("does not parse ({e})")),
        };
        if let Some(x) = &xml {
            let _ = std::fs::write(junit_out, x);
        }
        let accounts = crosscheck::Accounts {
            junit: parsed.as_deref().map_err(String::as_str),
            channel: &reports,
            summary: channel::summary_counts(&stdout),
            exit_code: run.exit_code,
        };
        let why = crosscheck::disagreements(&accounts);
        if why.is_empty() {
            let tests = parsed.expect("agreeing accounts include a parsed JUnit report");
            return Ok(Grade::count(tests, None, seconds));
        }
        // Not believed: the channel's outcomes, with JUnit's messages where the two agree.
        let messages: BTreeMap<&str, &TestResult> =
            parsed.as_deref().unwrap_or_default().iter().map(|t| (t.name.as_str(), t)).collect();
        let tests = reports
            .tests()
            .into_iter()
            .map(|mut t| {
                if let Some(j) = messages.get(t.name.as_str()).filter(|j| j.outcome == t.outcome) {
                    t.message = j.message.clone();
                }
                t
            })
            .collect();
        let mut grade = Grade::count(tests, None, seconds);
        grade.void = Some(format!("the grade is void: {}", why.join("; ")));
        Ok(grade)
    }

    /// Grades `files` (editable files keyed relative to the problem folder, as
    /// [`Problem::starter`] and [`Problem::reference`] give them), laid out in a scratch
    /// folder of their own, as [`Grader::grade`] grades a workdir.
    pub fn grade_files(
        &self,
        problem: &Problem,
        files: &Files,
        junit_out: &Path,
        cancel: &AtomicBool,
    ) -> Result<Grade> {
        let tree = tempfile::Builder::new().prefix("fixbench-files-").tempdir()?;
        crate::files::write_files(tree.path(), files)?;
        self.grade(problem, tree.path(), junit_out, cancel)
    }

    /// The Python as an absolute path (a bare name looked up on our PATH), so that the
    /// sandbox shows its installation and grading's own PATH need not hold it.
    fn resolved_python(&self) -> PathBuf {
        if self.python.is_absolute() {
            return self.python.clone();
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        crate::sandbox::resolve_program(&self.python.to_string_lossy(), Path::new("/"), &path)
            .unwrap_or_else(|| self.python.clone())
    }
}

/// The folder problems' environments are cached under (fixbench's cache folder, see
/// [`crate::host::cache_dir`]).
pub fn cache_root() -> Result<PathBuf> {
    crate::host::cache_dir().ok_or_else(|| {
        Error::Environment(
            "no cache folder for the problems' environments: set FIXBENCH_CACHE (or HOME) and re-run".into(),
        )
        .into()
    })
}

/// The sandbox grading runs in under `isolation` (hiding the problems, `results` and your files
/// as the agent's does; harness.toml's `sandbox.ro` shown read-only), or `None` under `none`.
/// `start` checks that it starts here; where it cannot there is no silent fallback.
pub fn sandbox_for(
    isolation: GradeIsolation,
    problems_dir: &Path,
    results: &Path,
    harness: &crate::config::Harness,
    start: bool,
) -> Result<Option<Sandbox>> {
    if isolation == GradeIsolation::None {
        return Ok(None);
    }
    if start {
        if let Err(why) = crate::sandbox::available() {
            return Err(Error::Environment(format!(
                "cannot start the grading sandbox: {why}. The agent's package runs inside pytest, so fixbench grades it \
                 in bubblewrap: install it with scripts/setup.sh (`apt-get install bubblewrap`; \
                 `sysctl kernel.unprivileged_userns_clone=1` where it is 0), or grade unsandboxed with \
                 `--grade-isolation none` (the agent's code then runs as you: it can read the answers and rewrite results)"
            ))
            .into());
        }
    }
    crate::sandbox::for_harness(crate::model::Isolation::Sandbox, problems_dir, results, harness, start)
}

/// How pytest's process ended: `exit 0`, `killed by SIGKILL`.
fn ended(run: &ExecOutcome) -> String {
    match (run.exit_code, run.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => match nix::sys::signal::Signal::try_from(s) {
            Ok(sig) => format!("killed by {}", sig.as_str()),
            Err(_) => format!("killed by signal {s}"),
        },
        (None, None) => "no exit status".into(),
    }
}

fn tail_of(text: &str) -> String {
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
    let mut aligned = Grade::count(tests, graded.error.take(), graded.seconds);
    aligned.void = graded.void;
    aligned.interrupted = graded.interrupted;
    aligned
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
        let starter =
            Grade::count(vec![t("a", Outcome::Passed), t("b", Outcome::Failed), t("c", Outcome::Passed)], None, 0.0);
        let mut collect = t("tests.test_x", Outcome::Error);
        collect.message = Some("ImportError: boom".into());
        let now =
            align(&starter, Grade::count(vec![t("b", Outcome::Passed), t("a", Outcome::Failed), collect], None, 0.0));
        assert_eq!((now.passed, now.failed, now.errors, now.total), (1, 1, 1, 3));
        assert_eq!(now.tests[2].message.as_deref(), Some("not run: ImportError: boom"));
        let (fixed, broken) = flips(&starter, &now);
        assert_eq!(fixed, ["b"]);
        assert_eq!(broken, ["a", "c"]);
    }
}
