//! Problems' Python environments, made with real uv from the grading Python against PyPI: made
//! once and reused, the same Python and pytest as grading's, a requirement that cannot be
//! installed named with its problem, and makers at once ending with one environment.
//!
//! `environment::ensure` runs uv through fixbench's `exec`, which kills every unmarked child of
//! its process that starts while uv runs, as it would an escaped agent's. Run in this test
//! binary's process it would kill other tests' commands, so every ensure runs in a process of
//! its own: this binary again, running only [`maker`], which does the work when told to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use serde_json::{json, Value};

use fixbench::environment::{self, Spec};
use fixbench::error::Error;

use crate::util;

/// Tells [`maker`] what to make: a JSON request.
const MAKER: &str = "FIXBENCH_TEST_ENV_MAKER";

/// Does nothing in the suite. Started by [`make`] with a request, ensures it on `threads`
/// threads at once and writes what each got to the request's `out` file.
#[test]
fn maker() {
    let Some(request) = std::env::var_os(MAKER) else { return };
    let r: Value = serde_json::from_str(&request.to_string_lossy()).unwrap();
    let requires: Vec<String> = serde_json::from_value(r["requires"].clone()).unwrap();
    let (python, cache) = (PathBuf::from(r["python"].as_str().unwrap()), PathBuf::from(r["cache"].as_str().unwrap()));
    let spec = Spec { requires: &requires, base_python: &python, pytest_version: r["pytest"].as_str().unwrap() };
    let ensure = || match environment::ensure(&spec, &cache, Path::new("problems/ledger"), &AtomicBool::new(false)) {
        Ok(e) => json!({"python": e.python, "dir": e.dir, "key": e.key, "made": e.made, "seconds": e.seconds}),
        Err(e) => {
            let kind = match e.downcast_ref::<Error>() {
                Some(Error::BadInput(_)) => "bad input",
                Some(Error::Environment(_)) => "environment",
                _ => "other",
            };
            json!({"error": format!("{e:#}"), "kind": kind})
        }
    };
    let got: Vec<Value> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..r["threads"].as_u64().unwrap()).map(|_| s.spawn(ensure)).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    std::fs::write(r["out"].as_str().unwrap(), serde_json::to_vec(&got).unwrap()).unwrap();
}

/// The grading Python and its pytest version; panics, saying the fix, without it or uv.
fn base() -> (PathBuf, String) {
    let python = util::python();
    let pytest = run_python(&python, "import pytest; print(pytest.__version__)");
    if let Err(e) = environment::uv(&python) {
        panic!("{e}");
    }
    (python, pytest)
}

/// Starts a [`maker`] process ensuring `requires` on `threads` threads.
fn start_maker(
    base: &(PathBuf, String),
    requires: &[&str],
    cache: &Path,
    threads: u32,
) -> (std::process::Child, PathBuf) {
    let out = cache.join(format!("made-{}.json", next_out()));
    let request = json!({
        "python": base.0, "pytest": base.1, "requires": requires, "cache": cache, "threads": threads, "out": out,
    });
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "environments::maker", "--test-threads", "1", "--quiet"])
        .env(MAKER, request.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, out)
}

fn finish_maker((mut child, out): (std::process::Child, PathBuf)) -> Vec<Value> {
    assert!(child.wait().unwrap().success(), "the maker process failed");
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// What one ensure of `requires` in a process of its own got.
fn make(base: &(PathBuf, String), requires: &[&str], cache: &Path) -> Value {
    finish_maker(start_maker(base, requires, cache, 1)).remove(0)
}

/// A number no other maker of this process has had, naming its output file.
fn next_out() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What `python -I -c code` prints, trimmed; panics with its stderr when it fails.
fn run_python(python: &Path, code: &str) -> String {
    let out = Command::new(python).args(["-I", "-c", code]).output().expect("python starts");
    assert!(out.status.success(), "{} -c {code:?} failed: {}", python.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn made_python(env: &Value) -> PathBuf {
    assert!(env["error"].is_null(), "{env}");
    PathBuf::from(env["python"].as_str().unwrap())
}

#[test]
fn an_env_is_made_once_with_its_requirement_and_graders_pytest_then_reused() {
    let base = base();
    let cache = tempfile::tempdir().unwrap();
    let made = make(&base, &["attrs==23.2.0"], cache.path());
    let python = made_python(&made);
    eprintln!("made env {} in {:.2} s", made["key"].as_str().unwrap(), made["seconds"].as_f64().unwrap());
    assert_eq!(made["made"], true);
    let dir = PathBuf::from(made["dir"].as_str().unwrap());
    assert!(dir.starts_with(cache.path().join("envs")) && dir.join("fixbench-env.json").is_file());
    assert_eq!(run_python(&python, "import attrs; print(attrs.__version__)"), "23.2.0");
    assert_eq!(run_python(&python, "import pytest; print(pytest.__version__)"), base.1);
    let version = "import sys; print(sys.version)";
    assert_eq!(run_python(&python, version), run_python(&base.0, version), "the base's interpreter");

    let again = make(&base, &["attrs==23.2.0"], cache.path());
    eprintln!("reused env {} in {:.2} s", again["key"].as_str().unwrap(), again["seconds"].as_f64().unwrap());
    assert_eq!(again["made"], false, "{again}");
    assert_eq!((&again["dir"], &again["key"]), (&made["dir"], &made["key"]));
    let seconds = again["seconds"].as_f64().unwrap();
    assert!(seconds < 5.0, "a reuse costs three interpreter starts, took {seconds:.2} s");
}

#[test]
fn a_requirement_that_cannot_be_installed_names_the_problem_and_itself() {
    let base = base();
    let cache = tempfile::tempdir().unwrap();
    for (requires, culprit) in [
        (&["attrs==0.0.0-nope"][..], "attrs==0.0.0-nope"),
        (&["attrs==23.2.0", "no-such-package-fixbench-xyz==1.0"][..], "no-such-package-fixbench-xyz==1.0"),
    ] {
        let got = make(&base, requires, cache.path());
        let msg = got["error"].as_str().unwrap_or_else(|| panic!("{requires:?} was installed: {got}"));
        assert_eq!(got["kind"], "bad input", "{msg}");
        assert!(msg.starts_with(&format!("problem `ledger`: requirement `{culprit}` cannot be installed: ")), "{msg}");
        assert!(msg.ends_with("Fix `requires` in problems/ledger/problem.toml"), "{msg}");
        assert!(!msg.contains("requirement `attrs==23.2.0`"), "only the culprit is named: {msg}");
    }
    let left: Vec<_> = std::fs::read_dir(cache.path().join("envs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "no half-made env is left: {left:?}");
}

#[test]
fn makers_at_once_end_with_one_env_made_once() {
    let base = base();
    let cache = tempfile::tempdir().unwrap();
    // Two processes of two threads each.
    let (a, b) = (
        start_maker(&base, &["attrs==23.2.0"], cache.path(), 2),
        start_maker(&base, &["attrs==23.2.0"], cache.path(), 2),
    );
    let got: Vec<Value> = finish_maker(a).into_iter().chain(finish_maker(b)).collect();
    for g in &got {
        made_python(g);
        assert_eq!(g["dir"], got[0]["dir"]);
    }
    assert_eq!(got.iter().filter(|g| g["made"] == true).count(), 1, "{got:?}");
    assert_eq!(run_python(&made_python(&got[0]), "import attrs; print(attrs.__version__)"), "23.2.0");
}
