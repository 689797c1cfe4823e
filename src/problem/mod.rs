//! Stage 1: problems. A problem is a folder (see `docs/problem-format.md`): a prompt, a buggy
//! package, a frozen test suite and a reference fix that no agent ever sees.

pub mod bugs;
pub mod layout;
pub mod manifest;
pub mod mutation;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Error;
use crate::files::Files;
pub use layout::Layout;
pub use manifest::Manifest;

pub const PROMPT_FILE: &str = "PROBLEM.md";
pub const MANIFEST_FILE: &str = "problem.toml";
pub const TESTS_DIR: &str = "tests";

#[derive(Debug, Clone)]
pub struct Problem {
    pub name: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub layout: Layout,
}

impl Problem {
    /// The folder holding the reference's files, `FIX.md` and `bugs.toml`.
    pub fn reference_dir(&self) -> PathBuf {
        self.dir.join(&self.layout.reference)
    }
    /// The buggy starter: the editable files as the problem ships them.
    pub fn starter(&self) -> Result<Files> {
        self.layout.read_editable(&self.dir)
    }
    /// The fixed code, keyed like [`Problem::starter`] (relative to the problem folder).
    pub fn reference(&self) -> Result<Files> {
        let mut files = crate::files::read_files(&self.reference_dir())?;
        files.remove(bugs::FIX_FILE);
        files.remove(bugs::BUGS_FILE);
        Ok(files.into_iter().map(|(rel, text)| (self.layout.problem_path(&rel), text)).collect())
    }
    /// The bugs of `bugs.toml`, their `file` relative to the problem folder.
    pub fn bugs(&self) -> Result<Vec<bugs::Bug>> {
        let mut list = bugs::load(&self.reference_dir().join(bugs::BUGS_FILE))?;
        for b in &mut list {
            b.file = self.layout.problem_path(&b.file);
        }
        Ok(list)
    }
    /// The problem's requirements, as an environment is keyed by them.
    pub fn requires(&self) -> &[String] {
        &self.manifest.requires
    }
    pub fn prompt_path(&self) -> PathBuf {
        self.dir.join(PROMPT_FILE)
    }
    pub fn prompt(&self) -> Result<String> {
        let p = self.prompt_path();
        std::fs::read_to_string(&p).with_context(|| format!("failed to read {}", p.display()))
    }

    /// A hash of every file in the problem folder (prompt, starter, tests, reference), to
    /// notice an agent outside the sandbox writing into it.
    pub fn fingerprint(&self) -> Result<String> {
        crate::files::tree_hash(&self.dir)
    }

    /// Checks that grading collected as many tests as `problem.toml`'s `tests` says; `why` is
    /// pytest's complaint, when it had one. A bad-input error naming the folder and the field.
    pub fn check_collected(&self, collected: u32, why: Option<&str>) -> Result<()> {
        let declared = self.manifest.tests;
        if collected == declared {
            return Ok(());
        }
        let why = why
            .and_then(|w| w.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        Err(Error::BadInput(format!(
            "problem `{}` ({}): its tests collect {collected} test(s){why}, but {MANIFEST_FILE} says `tests = {declared}`: \
             a test file that does not parse or import counts as one error. Fix the tests, or `tests` in {}; \
             `fixbench validate --problem {}` shows pytest's output",
            self.name,
            self.dir.display(),
            self.dir.join(MANIFEST_FILE).display(),
            self.name
        ))
        .into())
    }

    /// Loads one problem folder, checking its layout.
    pub fn load(dir: &Path) -> Result<Problem> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::BadInput(format!("{} is not a problem folder", dir.display())))?;
        let label = name.clone();
        let missing = move |what: &str, p: PathBuf| -> anyhow::Error {
            Error::BadInput(format!(
                "problem `{label}`: {what} {} is missing (see docs/problem-format.md)",
                p.display()
            ))
            .into()
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        if !manifest_path.is_file() {
            return Err(missing("metadata file", manifest_path));
        }
        let manifest = Manifest::load(&manifest_path)?;
        let layout = Layout::of(&name, dir, &manifest);
        let problem = Problem { name, dir: dir.to_path_buf(), manifest, layout };
        if !problem.prompt_path().is_file() {
            return Err(missing("prompt", problem.prompt_path()));
        }
        let declared = problem.manifest.editable.is_some();
        for (what, field, entries) in [
            ("package folder", "editable", &problem.layout.editable),
            ("test folder", "test_paths", &problem.layout.tests),
        ] {
            for e in entries {
                let p = problem.dir.join(&e.path);
                if !p.exists() {
                    let what = if declared || field == "test_paths" && problem.manifest.test_paths.is_some() {
                        format!("`{field}` path")
                    } else {
                        what.to_string()
                    };
                    return Err(missing(&what, p));
                }
            }
        }
        let reserved = |path: &str| {
            let top = path.split('/').next().unwrap_or_default();
            problem.layout.hidden(top) || top == PROMPT_FILE
        };
        for (field, e) in problem
            .layout
            .editable
            .iter()
            .map(|e| ("editable", e))
            .chain(problem.layout.tests.iter().map(|e| ("test_paths", e)))
        {
            if reserved(&e.path) {
                return Err(Error::BadInput(format!(
                    "problem `{}`: {}: `{field}` lists `{}`, which is the problem's own (the prompt, problem.toml or the reference): remove it",
                    problem.name,
                    manifest_path.display(),
                    e.path
                ))
                .into());
            }
        }
        if let Some(e) = problem.layout.editable.iter().find(|e| problem.layout.is_test(&e.path)) {
            return Err(Error::BadInput(format!(
                "problem `{}`: {}: `editable` lists `{}`, which lies inside `test_paths`: the frozen tests are never the agent's to change",
                problem.name,
                manifest_path.display(),
                e.path
            ))
            .into());
        }
        if !problem.reference_dir().is_dir() {
            return Err(missing("reference folder", problem.reference_dir()));
        }
        Ok(problem)
    }
}

/// Every problem folder (one holding `problem.toml`) directly under `dir`, sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<Problem>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::BadInput(format!("cannot read the problems folder {}: {e} (pass --problems-dir)", dir.display()))
    })?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(MANIFEST_FILE).is_file()).collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::BadInput(format!(
            "no problems in {}: each problem is a folder with a {MANIFEST_FILE}",
            dir.display()
        ))
        .into());
    }
    dirs.iter().map(|d| Problem::load(d)).collect()
}

/// The problems named in `names` (all when empty), with an error listing the known names.
pub fn select(dir: &Path, names: &[String]) -> Result<Vec<Problem>> {
    let all = discover(dir)?;
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|p| &p.name == n)
                .cloned()
                .ok_or_else(|| unknown(n, dir, all.iter().map(|p| &p.name)).into())
        })
        .collect()
}

/// The bad-input error for a problem `name` that `dir` does not hold, listing those it does.
pub fn unknown(name: &str, dir: &Path, known: impl IntoIterator<Item = impl AsRef<str>>) -> Error {
    let known: Vec<String> = known.into_iter().map(|k| k.as_ref().to_string()).collect();
    Error::BadInput(format!("unknown problem `{name}` in {}: known problems are {}", dir.display(), known.join(", ")))
}
