//! Shared helpers: the binary under test, the grading Python, temp copies of fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder `<prefix>-<our pid>` under the tests' temp folder, for fixtures made once per
/// test process; the folders of earlier test processes that have ended are removed.
pub fn process_dir(prefix: &str) -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&format!("{prefix}-")) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with pytest that grading uses: `FIXBENCH_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("FIXBENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/python");
    assert!(venv.exists(), "no .venv/bin/python: run scripts/setup-python.sh (or set FIXBENCH_PYTHON)");
    venv
}

/// A `fixbench` command run in `cwd`, with the grading Python set and colours off.
pub fn fixbench(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fixbench"));
    c.current_dir(cwd)
        .env("FIXBENCH_PYTHON", python())
        .env("NO_COLOR", "1")
        .env_remove("FIXBENCH_SERVER")
        .env_remove("FIXBENCH_RESULTS");
    c
}

/// Runs and returns the output, panicking with both streams when the exit code differs.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("fixbench runs");
    if out.status.code() != Some(code) {
        panic!(
            "expected exit {code}, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A temp folder holding a copy of the shipped problems (so tests never touch the repo's).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("problems"), &dir.path().join("problems"));
        Sandbox { dir }
    }
    /// One that lies outside /tmp, as a checkout does: the agent sandbox's /tmp is its own, so
    /// an agent's write there would land in its private copy and prove nothing. A checkout
    /// under /tmp (CI may clone there) puts it in /var/tmp instead.
    pub fn outside_tmp() -> Sandbox {
        let base = if repo().starts_with("/tmp") { PathBuf::from("/var/tmp") } else { repo().join("target") };
        let dir = tempfile::tempdir_in(base).unwrap();
        copy_dir(&repo().join("problems"), &dir.path().join("problems"));
        Sandbox { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }
    /// The single run stored under `results/`.
    pub fn only_run(&self) -> serde_json::Value {
        let runs: Vec<PathBuf> = std::fs::read_dir(self.results())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("run.json").is_file())
            .collect();
        assert_eq!(runs.len(), 1, "expected one run in {:?}", runs);
        read_run(&runs[0])
    }
}

/// The finished trials' records of the run in `run_dir` (`trials/<trial>/trial.json`), in the
/// order they started, with the folder each is in.
pub fn trial_files(run_dir: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("trials")) else { return vec![] };
    let mut trials: Vec<(PathBuf, serde_json::Value)> = entries
        .map(|e| e.unwrap().path().join("trial.json"))
        .filter_map(|p| Some((p.clone(), serde_json::from_str(&std::fs::read_to_string(&p).ok()?).unwrap())))
        .collect();
    let started =
        |t: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(t["started_at"].as_str().unwrap()).unwrap();
    trials.sort_by_key(|(_, t)| started(t));
    trials
}

/// A stored run as fixbench reads it: `run.json` (the header) with its trials from their own
/// files; `Null` before the run's first write.
pub fn read_run(run_dir: &Path) -> serde_json::Value {
    let Ok(text) = std::fs::read_to_string(run_dir.join("run.json")) else { return serde_json::Value::Null };
    let mut run: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(run.get("trials").is_none(), "run.json holds no trials: {run:#}");
    run["trials"] = trial_files(run_dir).into_iter().map(|(_, t)| t).collect();
    run
}

/// Makes the run in `run_dir` one that has finished only its first `keep` trials (as after an
/// interruption): the records of the others are removed, and its status is `interrupted`.
pub fn keep_trials(run_dir: &Path, keep: usize) {
    for (file, _) in trial_files(run_dir).into_iter().skip(keep) {
        std::fs::remove_file(file).unwrap();
    }
    set_header(run_dir, |run| run["status"] = "interrupted".into());
}

/// Rewrites a stored run's `run.json` through `edit`.
pub fn set_header(run_dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let file = run_dir.join("run.json");
    let mut run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    edit(&mut run);
    std::fs::write(&file, serde_json::to_string_pretty(&run).unwrap()).unwrap();
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "__pycache__" || name == ".pytest_cache" {
            continue;
        }
        let to = dst.join(&name);
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Runs `cmd` and returns (exit code, stdout, peak RSS in MB of it and of what it waited for).
/// `cmd` is started by a small Python that reads its usage from wait4: a child of the test
/// process itself would report the test process's own peak, since a forked child's peak RSS
/// starts at its parent's and the kernel keeps it through exec, and the tests running beside
/// this one make that large (170 MB was seen).
pub fn run_measuring_rss(cmd: &Command) -> (i32, Vec<u8>, i64) {
    const START: &str = "import os, sys\n\
pid = os.fork()\n\
if pid == 0:\n    os.execvp(sys.argv[2], sys.argv[2:])\n\
_, status, usage = os.wait4(pid, 0)\n\
open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n\
sys.exit(os.waitstatus_to_exitcode(status))\n";
    let rss = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new(python());
    c.arg("-c").arg(START).arg(rss.path()).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    let out = c.stderr(std::process::Stdio::null()).output().unwrap();
    let kb: i64 = std::fs::read_to_string(rss.path()).unwrap().trim().parse().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, kb / 1024)
}

/// The two tests of the `tiny` problem: one passes on its starter, one fails.
pub const TINY_TESTS: &str = "from tiny import add\n\ndef test_add():\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n";

/// A one-problem folder `tiny` whose test file is `tests`, declaring `count` tests.
pub fn tiny_problem(root: &Path, tests: &str, count: u32) {
    let p = root.join("problems/tiny");
    for d in ["tiny", "tiny.reference", "tests"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("PROBLEM.md"), "`tiny.add` subtracts. Make it add.\n").unwrap();
    std::fs::write(
        p.join("problem.toml"),
        format!("difficulty = \"easy\"\ndescription = \"add\"\ntests = {count}\nbaseline = 1\n"),
    )
    .unwrap();
    std::fs::write(p.join("tiny/__init__.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(p.join("tiny.reference/__init__.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(p.join("tiny.reference/FIX.md"), "add subtracted\n").unwrap();
    std::fs::write(
        p.join("tiny.reference/bugs.toml"),
        "[[bug]]\nid = \"sub\"\nfile = \"__init__.py\"\nsummary = \"subtracts\"\nfixed = \"a + b\"\nbroken = \"a - b\"\ntests = [\"test_add\"]\n",
    )
    .unwrap();
    std::fs::write(p.join("tests/test_tiny.py"), tests).unwrap();
}

/// A run's `trials` (a run as `fixbench run --json` prints it, or [`read_run`] reads it).
pub fn trials(run: &serde_json::Value) -> &Vec<serde_json::Value> {
    run["trials"].as_array().unwrap()
}

/// A trial's recorded requests.
pub fn requests(trial: &serde_json::Value) -> &Vec<serde_json::Value> {
    trial["requests"].as_array().unwrap()
}

/// A count in a record.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}
