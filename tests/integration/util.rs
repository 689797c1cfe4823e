//! Shared helpers: the binary under test, the grading Python, temp copies of fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    c.current_dir(cwd).env("FIXBENCH_PYTHON", python()).env("NO_COLOR", "1").env_remove("FIXBENCH_SERVER");
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
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("run.json")).unwrap()).unwrap()
    }
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
