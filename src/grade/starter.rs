//! The starter's outcomes, against which every trial's flips are measured. Computed once per
//! problem and cached on disk under `<results>/.cache/`, keyed by a hash of everything that
//! decides them (tests, package, grading config, Python and pytest version), so re-running
//! the suite does not grade an unchanged starter again.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::{Grade, Grader};
use crate::problem::Problem;
use crate::store::TestResult;
use crate::workdir;

pub fn outcomes(
    grader: &Grader,
    pytest_version: &str,
    problem: &Problem,
    cache_dir: &Path,
    cancel: &AtomicBool,
) -> Result<Grade> {
    let key = cache_key(grader, pytest_version, problem)?;
    let path = cache_dir.join(format!("starter-{}-{}.json", problem.name, &key[..16]));
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(tests) = serde_json::from_str::<Vec<TestResult>>(&text) {
            return Ok(Grade::from_tests(tests));
        }
    }
    let junit = tempfile::NamedTempFile::new()?;
    let grade = grader.grade(problem, &problem.dir, junit.path(), cancel)?;
    if grade.error.is_none() && grade.void.is_none() && !grade.interrupted && grade.total > 0 {
        crate::store::write_atomic(&path, &serde_json::to_vec(&grade.tests)?)?;
    }
    Ok(grade)
}

fn cache_key(grader: &Grader, pytest_version: &str, problem: &Problem) -> Result<String> {
    let mut h = Sha256::new();
    h.update(grader.python_for(problem).to_string_lossy().as_bytes());
    h.update([0]);
    h.update(pytest_version.as_bytes());
    h.update([0]);
    h.update(workdir::grade_ini(&problem.layout).as_bytes());
    h.update(super::channel::ENTRY.as_bytes());
    h.update(grader.isolation().as_str().as_bytes());
    for arg in &problem.manifest.pytest_args {
        h.update(arg.as_bytes());
        h.update([0]);
    }
    // Everything grading reads from the problem folder: tests, starter, the rest of the
    // repository (the prompt and reference too, which costs nothing but a regrade).
    h.update(crate::files::tree_hash(&problem.dir)?.as_bytes());
    Ok(hex::encode(h.finalize()))
}
