//! `fixbench new`: a problem made from a working repository. The copy keeps the repository's
//! files (not its VCS, caches, virtual environments or build output), the layout is detected
//! (a `src/` package, a package, single modules; `tests/`, `test/`, root test modules), and
//! the suite must pass whole: the copy is the reference until `fixbench inject` puts bugs in.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::error::Error;
use crate::grade::Grader;
use crate::problem::layout::REFERENCE_DIR;
use crate::problem::{Manifest, Problem, MANIFEST_FILE, PROMPT_FILE};

/// What the user asked for; empty lists are detected.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: String,
    pub from: PathBuf,
    pub problems_dir: PathBuf,
    pub editable: Vec<String>,
    pub tests: Vec<String>,
    /// `None`: read from pyproject.toml.
    pub requires: Option<Vec<String>>,
    pub pytest_args: Vec<String>,
}

/// What was made.
#[derive(Debug, Clone)]
pub struct Made {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub tests: u32,
    pub suite_s: f64,
    /// Requirements of pyproject.toml left out (pytest itself, which grading brings).
    pub dropped: Vec<String>,
    pub copied_files: usize,
}

/// Folders and files of a repository never copied into a problem: VCS folders, caches and
/// virtual environments anywhere, build output at the top (a subpackage may be named `build`).
fn skipped(name: &str, path: &Path, depth: usize) -> bool {
    const ANYWHERE: &[&str] = &[
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "node_modules",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
        ".eggs",
        ".idea",
        ".vscode",
    ];
    const AT_THE_TOP: &[&str] = &["build", "dist", "venv", "htmlcov", ".coverage"];
    ANYWHERE.contains(&name)
        || (depth == 1 && AT_THE_TOP.contains(&name))
        || name.ends_with(".egg-info")
        || name.ends_with(".pyc")
        || (path.is_dir() && path.join("pyvenv.cfg").is_file())
}

/// Whether `name` is a test module by pytest's default patterns.
fn is_test_module(name: &str) -> bool {
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// Top-level modules that are tooling, not the code under test.
const NOT_CODE: &[&str] = &["setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py", "manage.py"];
/// Top-level folders that are not the package under test.
const NOT_PACKAGES: &[&str] = &["tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "scripts"];

/// The names in `dir` whose path passes `keep` and whose name passes `named`, sorted.
fn names(dir: &Path, keep: impl Fn(&Path) -> bool, named: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| keep(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| named(n))
        .collect();
    out.sort();
    out
}

/// The editable paths of the repository at `root`: the packages under `src/`, else the
/// top-level packages, else the top-level modules.
pub fn detect_editable(root: &Path) -> Vec<String> {
    let packages = |base: &Path| {
        names(base, |p| p.join("__init__.py").is_file(), |n| !NOT_PACKAGES.contains(&n) && !n.starts_with('.'))
    };
    let src = packages(&root.join("src"));
    if !src.is_empty() {
        return src.into_iter().map(|p| format!("src/{p}/")).collect();
    }
    let top = packages(root);
    if !top.is_empty() {
        return top.into_iter().map(|p| format!("{p}/")).collect();
    }
    names(root, Path::is_file, |n| n.ends_with(".py") && !is_test_module(n) && !NOT_CODE.contains(&n))
}

/// The test paths of the repository at `root`: `tests/` or `test/`, and test modules and a
/// `conftest.py` at the root.
pub fn detect_tests(root: &Path) -> Vec<String> {
    let mut out: Vec<String> =
        ["tests", "test"].iter().filter(|d| root.join(d).is_dir()).map(|d| format!("{d}/")).collect();
    out.extend(names(root, Path::is_file, |n| is_test_module(n) || n == "conftest.py"));
    out
}

/// The requirements pyproject.toml declares for the code and its tests: `project.dependencies`,
/// the `test`/`tests`/`testing` extras and dependency groups. pytest itself is returned apart:
/// grading brings its own.
pub fn detect_requires(root: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let path = root.join("pyproject.toml");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok((vec![], vec![])) };
    let doc: toml::Value = toml::from_str(&text)
        .map_err(|e| Error::BadInput(format!("{}: not valid TOML ({e}); pass --requires", path.display())))?;
    let strings = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let project = doc.get("project");
    let mut all = strings(project.and_then(|p| p.get("dependencies")));
    for group in ["test", "tests", "testing"] {
        all.extend(strings(project.and_then(|p| p.get("optional-dependencies")).and_then(|o| o.get(group))));
        all.extend(strings(doc.get("dependency-groups").and_then(|g| g.get(group))));
    }
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for r in all {
        let name: String =
            r.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
        if name.eq_ignore_ascii_case("pytest") {
            dropped.push(r);
        } else if !keep.contains(&r) {
            keep.push(r);
        }
    }
    Ok((keep, dropped))
}

/// Checks a problem name: a folder name that is also a fine run and trial id part.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with(['.', '-']);
    if !ok {
        return Err(Error::BadInput(format!(
            "problem name `{name}`: use letters, digits, `_`, `-` and `.` (it names the problem's folder)"
        ))
        .into());
    }
    Ok(())
}

/// Copies the repository at `from` into `to`, leaving out what [`skipped`] names and links.
fn copy_repository(from: &Path, to: &Path) -> Result<usize> {
    let mut n = 0;
    let mut it = walkdir::WalkDir::new(from).follow_links(false).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.with_context(|| format!("failed to walk {}", from.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name, entry.path(), entry.depth()) {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let target = to.join(entry.path().strip_prefix(from).expect("under its root"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy {} to {}", entry.path().display(), target.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes the problem `req.name` under `req.problems_dir` from the repository `req.from`.
/// On any failure nothing is left behind.
pub fn make(req: &Request, grader: Grader, pytest_version: &str, cancel: &AtomicBool) -> Result<Made> {
    check_name(&req.name)?;
    let from = &req.from;
    if !from.is_dir() {
        return Err(Error::BadInput(format!("--from {}: no such folder", from.display())).into());
    }
    for clash in [MANIFEST_FILE, REFERENCE_DIR, &format!("{}.reference", req.name)] {
        if from.join(clash).exists() {
            return Err(Error::BadInput(format!(
                "--from {}: it already holds `{clash}`, which a problem folder keeps for itself; rename it in a copy",
                from.display()
            ))
            .into());
        }
    }
    let dir = req.problems_dir.join(&req.name);
    if dir.exists() {
        return Err(Error::BadInput(format!(
            "{} already exists: choose another name, or remove it to make it again",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&req.problems_dir)
        .with_context(|| format!("failed to create {}", req.problems_dir.display()))?;
    // Made beside its final place and moved there whole once it is sound.
    let staging = tempfile::Builder::new().prefix(&format!(".{}-", req.name)).tempdir_in(&req.problems_dir)?;
    let work = staging.path().join(&req.name);
    std::fs::create_dir_all(&work)?;
    let copied_files = copy_repository(from, &work)?;

    let editable = if req.editable.is_empty() { detect_editable(&work) } else { req.editable.clone() };
    if editable.is_empty() {
        return Err(Error::BadInput(format!(
            "{}: found no package (a folder with __init__.py, under src/ or at the top) and no module to edit: name what the agent may change with --editable PATH",
            from.display()
        ))
        .into());
    }
    let mut tests = if req.tests.is_empty() { detect_tests(&work) } else { req.tests.clone() };
    if tests.is_empty() {
        // Tests beside the code: `<package>/tests/`.
        tests = editable
            .iter()
            .map(|e| format!("{}/tests/", e.trim_end_matches('/')))
            .filter(|t| work.join(t).is_dir())
            .collect();
    }
    if tests.is_empty() {
        return Err(Error::BadInput(format!(
            "{}: found no tests (tests/, test/ or test_*.py at the top, or tests/ inside the package): name them with --tests PATH",
            from.display()
        ))
        .into());
    }
    for p in editable.iter().chain(&tests) {
        if !work.join(p.trim_end_matches('/')).exists() {
            return Err(Error::BadInput(format!("{}: `{p}` does not exist there", from.display())).into());
        }
    }
    let (requires, dropped) = match &req.requires {
        Some(r) => (r.clone(), vec![]),
        None => detect_requires(&work)?,
    };
    let description = description_of(&work).unwrap_or_else(|| format!("{} (made with fixbench new)", req.name));
    let mut manifest = Manifest {
        difficulty: crate::problem::manifest::Difficulty::Medium,
        description,
        tests: 0,
        baseline: 0,
        editable: Some(editable),
        test_paths: Some(tests),
        requires,
        pytest_args: req.pytest_args.clone(),
        pythonpath: None,
        tags: Vec::new(),
    };
    write_manifest(&work, &manifest)?;
    if !work.join(PROMPT_FILE).exists() {
        std::fs::write(work.join(PROMPT_FILE), PROMPT_TODO)?;
    }
    // The reference: the working code itself, until `inject` makes a starter from it.
    let layout = crate::problem::Layout::of(&req.name, &work, &manifest);
    std::fs::create_dir_all(work.join(REFERENCE_DIR))?;
    crate::files::write_files(&work.join(REFERENCE_DIR), &layout.read_editable(&work)?)?;
    let problem = Problem::load(&work)?;
    let grader =
        grader.with_environments(&[&problem], pytest_version, &crate::grade::cache_root()?, cancel, &mut |n| {
            eprintln!("{n}")
        })?;

    let junit = staging.path().join("junit.xml");
    let g = grader.grade(&problem, &problem.dir, &junit, cancel)?;
    if g.interrupted {
        return Err(Error::Interrupted("fixbench new stopped".into()).into());
    }
    if let Some(e) = g.error.as_ref().or(g.void.as_ref()) {
        return Err(Error::BadInput(format!("{}: its suite did not run: {e}", from.display())).into());
    }
    let failing: Vec<String> = g
        .tests
        .iter()
        .filter(|t| t.outcome != crate::store::Outcome::Passed && t.outcome != crate::store::Outcome::Skipped)
        .map(|t| match &t.message {
            Some(m) => format!("{} ({})", t.name, m.lines().next().unwrap_or_default()),
            None => t.name.clone(),
        })
        .collect();
    if g.total == 0 || !failing.is_empty() {
        let list = if g.total == 0 { "it collects no test".to_string() } else { failing.join("\n  ") };
        return Err(Error::BadInput(format!(
            "{}: a problem starts from a working repository, but {} of {} test(s) do not pass:\n  {list}\n\
             Fix them, leave them out with --pytest-arg=--deselect=TEST, or name other --tests",
            from.display(),
            failing.len(),
            g.total
        ))
        .into());
    }
    manifest.tests = g.total;
    manifest.baseline = g.total;
    write_manifest(&work, &manifest)?;
    std::fs::rename(&work, &dir).with_context(|| format!("failed to move the new problem to {}", dir.display()))?;
    Ok(Made { dir, manifest, tests: g.total, suite_s: g.seconds, dropped, copied_files })
}

const PROMPT_TODO: &str = "# TODO: the bug report the agent gets\n\n\
`fixbench inject` drafts this from the tests its bugs break. Write it like a real report:\n\
what fails and how, never where the bug is.\n";

/// The repository's one-line description: pyproject.toml's `project.description`, else the
/// `Summary:` of an sdist's PKG-INFO.
fn description_of(root: &Path) -> Option<String> {
    let from_pyproject = || -> Option<String> {
        let text = std::fs::read_to_string(root.join("pyproject.toml")).ok()?;
        let doc: toml::Value = toml::from_str(&text).ok()?;
        Some(doc.get("project")?.get("description")?.as_str()?.trim().to_string())
    };
    let from_pkg_info = || -> Option<String> {
        let text = std::fs::read_to_string(root.join("PKG-INFO")).ok()?;
        text.lines().find_map(|l| l.strip_prefix("Summary:")).map(|s| s.trim().to_string())
    };
    from_pyproject().filter(|d| !d.is_empty()).or_else(|| from_pkg_info().filter(|d| !d.is_empty()))
}

/// Writes `problem.toml`, with a header saying what each key is for.
pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let body = toml::to_string(m).context("failed to write problem.toml")?;
    let text = format!(
        "# A fixbench problem (docs/problem-format.md). `tests` and `baseline` are measured by\n\
         # `fixbench new` and `fixbench inject`; `fixbench validate` checks them.\n{body}"
    );
    crate::store::write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn layouts_are_detected_src_package_and_modules() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "src/tool/__init__.py", "");
        touch(r, "src/tool/core.py", "");
        touch(r, "tests/test_core.py", "");
        touch(r, "docs/__init__.py", "");
        assert_eq!(detect_editable(r), ["src/tool/"]);
        assert_eq!(detect_tests(r), ["tests/"]);

        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "pkg/__init__.py", "");
        touch(r, "tests/__init__.py", "");
        assert_eq!(detect_editable(r), ["pkg/"]);

        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "slugs.py", "");
        touch(r, "setup.py", "");
        touch(r, "test_slugs.py", "");
        touch(r, "conftest.py", "");
        assert_eq!(detect_editable(r), ["slugs.py"]);
        assert_eq!(detect_tests(r), ["conftest.py", "test_slugs.py"]);
    }

    #[test]
    fn requirements_come_from_pyproject_without_pytest() {
        let d = tempfile::tempdir().unwrap();
        touch(
            d.path(),
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = [\"attrs==23.2.0\"]\n[project.optional-dependencies]\ntest = [\"pytest>=7\", \"hypothesis==6.100.0\"]\n",
        );
        let (keep, dropped) = detect_requires(d.path()).unwrap();
        assert_eq!(keep, ["attrs==23.2.0", "hypothesis==6.100.0"]);
        assert_eq!(dropped, ["pytest>=7"]);
    }

    #[test]
    fn repository_copies_leave_out_vcs_caches_and_venvs() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("from"), d.path().join("to"));
        touch(&from, "pkg/__init__.py", "x");
        touch(&from, ".git/HEAD", "ref");
        touch(&from, "env2/pyvenv.cfg", "home = /usr");
        touch(&from, "pkg/__pycache__/a.pyc", "b");
        touch(&from, "x.egg-info/PKG-INFO", "b");
        touch(&from, "build/lib/pkg.py", "b");
        touch(&from, "pkg/build/__init__.py", "a subpackage named build");
        assert_eq!(copy_repository(&from, &to).unwrap(), 2);
        assert!(to.join("pkg/build/__init__.py").is_file() && !to.join("build").exists());
        assert!(to.join("pkg/__init__.py").is_file() && !to.join(".git").exists() && !to.join("env2").exists());
        assert!(check_name("../x").is_err() && check_name("ok_name-2").is_ok());
    }
}
