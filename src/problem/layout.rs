//! Where a problem's parts lie: what the agent may change (`editable`), the frozen tests
//! (`test_paths`), the reference and the folders on `sys.path`. A problem.toml that declares
//! none of them gets the layout of the hand-made problems: `<name>/`, `tests/` and
//! `<name>.reference/`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files::{is_cache, Files};

/// The reference of a declared layout: each editable path at the same relative path.
pub const REFERENCE_DIR: &str = "reference";

/// `p` without `.` parts, empty parts and a trailing `/`: `./src//tool/` is `src/tool`.
fn normal(p: &str) -> String {
    p.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// A path of the layout, relative to the problem folder, `/`-separated, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub dir: bool,
}

impl Entry {
    /// Whether `rel` (relative to the problem folder) is this entry or lies inside it.
    pub fn holds(&self, rel: &str) -> bool {
        rel == self.path || (self.dir && rel.starts_with(&self.path) && rel[self.path.len()..].starts_with('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub editable: Vec<Entry>,
    pub tests: Vec<Entry>,
    /// Folders put on `sys.path` for the tests, relative to the problem folder (`.` itself).
    pub pythonpath: Vec<String>,
    /// The folder holding the reference's files, `FIX.md` and `bugs.toml`.
    pub reference: String,
    /// Set for `<name>.reference/`: its files and `bugs.toml`'s `file` are relative to the
    /// package folder `<name>/`, not to the problem folder.
    pub package_relative: Option<String>,
    /// `<name>.reference`, hidden from the agent whichever layout the problem has.
    legacy_reference: String,
}

impl Layout {
    /// The layout `dir` declares in `manifest` (paths resolved against what is there: a path
    /// naming a folder is a folder whether or not it ends in `/`).
    pub fn of(name: &str, dir: &Path, manifest: &super::Manifest) -> Layout {
        let entries = |list: &Option<Vec<String>>, default: &str| -> Vec<Entry> {
            let list = list.clone().unwrap_or_else(|| vec![format!("{default}/")]);
            list.iter()
                .map(|p| {
                    let path = normal(p);
                    Entry { dir: p.ends_with('/') || dir.join(&path).is_dir(), path }
                })
                .collect()
        };
        let editable = entries(&manifest.editable, name);
        let tests = entries(&manifest.test_paths, super::TESTS_DIR);
        let pythonpath = manifest
            .pythonpath
            .as_ref()
            .map(|l| {
                l.iter()
                    .map(|p| match normal(p) {
                        n if n.is_empty() => ".".to_string(),
                        n => n,
                    })
                    .collect()
            })
            .unwrap_or_else(|| {
                let mut p = vec![".".to_string()];
                if dir.join("src").is_dir() {
                    p.push("src".into());
                }
                p
            });
        let legacy = format!("{name}.reference");
        let default_layout = manifest.editable.is_none();
        let (reference, package_relative) =
            if default_layout && (dir.join(&legacy).is_dir() || !dir.join(REFERENCE_DIR).is_dir()) {
                (legacy.clone(), Some(name.to_string()))
            } else {
                (REFERENCE_DIR.to_string(), None)
            };
        Layout { editable, tests, pythonpath, reference, package_relative, legacy_reference: legacy }
    }

    /// Whether `rel` is a frozen test path or lies inside one.
    pub fn is_test(&self, rel: &str) -> bool {
        self.tests.iter().any(|t| t.holds(rel))
    }

    /// Whether `rel` is the agent's to change: inside an editable path and not a frozen test
    /// path; a `conftest.py` never is (pytest would load the agent's own).
    pub fn is_editable(&self, rel: &str) -> bool {
        self.editable.iter().any(|e| e.holds(rel))
            && !self.is_test(rel)
            && Path::new(rel).file_name() != Some(std::ffi::OsStr::new("conftest.py"))
    }

    /// The editable files found under `root` (a problem folder, a trial's workdir), keyed by
    /// their path relative to it; links, caches and frozen test files are left out.
    pub fn read_editable(&self, root: &Path) -> Result<Files> {
        let mut out = Files::new();
        for e in &self.editable {
            if crate::files::through_link(root, &e.path) {
                continue;
            }
            let p = root.join(&e.path);
            if e.dir {
                for (rel, text) in crate::files::read_files(&p)? {
                    let key = format!("{}/{rel}", e.path);
                    if self.is_editable(&key) {
                        out.insert(key, text);
                    }
                }
            } else if p.is_file() && self.is_editable(&e.path) {
                out.insert(e.path.clone(), String::from_utf8_lossy(&std::fs::read(&p)?).into_owned());
            }
        }
        Ok(out)
    }

    /// Whether any editable path exists under `root` (the agent may have deleted them).
    pub fn any_editable_in(&self, root: &Path) -> bool {
        self.editable.iter().any(|e| root.join(&e.path).exists())
    }

    /// A reference file's key (relative to the reference folder) as a path relative to the
    /// problem folder.
    pub fn problem_path(&self, rel: &str) -> String {
        match &self.package_relative {
            Some(pkg) => format!("{pkg}/{rel}"),
            None => rel.to_string(),
        }
    }

    /// A path relative to the problem folder as the reference keys it (the inverse of
    /// [`Layout::problem_path`]).
    pub fn reference_path(&self, rel: &str) -> String {
        match &self.package_relative {
            Some(pkg) => rel.strip_prefix(pkg.as_str()).and_then(|r| r.strip_prefix('/')).unwrap_or(rel).to_string(),
            None => rel.to_string(),
        }
    }

    /// The top-level names of the problem folder the agent never sees: `problem.toml` and
    /// the reference (both `reference/` and `<name>.reference/`, whichever is in use).
    pub fn hidden(&self, top: &str) -> bool {
        top == super::MANIFEST_FILE || top == REFERENCE_DIR || top == self.legacy_reference
    }

    /// The paths of the problem folder (relative, regular files) that grading takes from the
    /// problem itself: everything but the prompt, the manifest, the reference and the
    /// editable files; the frozen tests and every `conftest.py` among them.
    pub fn frozen_files(&self, problem_dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut it =
            walkdir::WalkDir::new(problem_dir).follow_links(false).min_depth(1).sort_by_file_name().into_iter();
        while let Some(entry) = it.next() {
            let entry = entry?;
            let rel = entry.path().strip_prefix(problem_dir).expect("under its root").to_string_lossy().into_owned();
            let top = rel.split('/').next().unwrap_or_default();
            let skip_dir = is_cache(&entry.file_name().to_string_lossy())
                || (entry.depth() == 1 && (self.hidden(top) || top == super::PROMPT_FILE));
            if skip_dir {
                if entry.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if entry.file_type().is_file() && !self.is_editable(&rel) {
                out.push(PathBuf::from(rel));
            }
        }
        Ok(out)
    }

    /// The test paths as pytest's `testpaths`: folders and test modules (a `conftest.py` or
    /// helper listed among them is not collected as tests).
    pub fn testpaths(&self) -> Vec<&str> {
        self.tests
            .iter()
            .filter(|t| {
                let name = t.path.rsplit('/').next().unwrap_or(&t.path);
                t.dir || (name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py")))
            })
            .map(|t| t.path.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Manifest;

    fn manifest(extra: &str) -> Manifest {
        toml::from_str(&format!("difficulty = \"easy\"\ndescription = \"x\"\ntests = 1\nbaseline = 0\n{extra}"))
            .unwrap()
    }

    fn touch(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    }

    #[test]
    fn the_default_layout_is_the_package_the_tests_and_the_legacy_reference() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::of("calc", d.path(), &manifest(""));
        assert_eq!(l.editable, [Entry { path: "calc".into(), dir: true }]);
        assert_eq!(l.tests, [Entry { path: "tests".into(), dir: true }]);
        assert_eq!((l.reference.as_str(), l.package_relative.as_deref()), ("calc.reference", Some("calc")));
        assert_eq!(l.problem_path("parser.py"), "calc/parser.py");
        assert_eq!(l.reference_path("calc/parser.py"), "parser.py");
        assert_eq!(l.pythonpath, ["."]);
        // Both reference folders stay hidden, whichever is in use.
        std::fs::create_dir_all(d.path().join("calc.reference")).unwrap();
        std::fs::create_dir_all(d.path().join("reference")).unwrap();
        let l = Layout::of("calc", d.path(), &manifest(""));
        assert_eq!(l.reference, "calc.reference");
        assert!(l.hidden("reference") && l.hidden("calc.reference") && l.hidden("problem.toml") && !l.hidden("calc"));
    }

    #[test]
    fn a_declared_layout_keeps_tests_and_conftest_out_of_the_agents_part() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "src/tool/__init__.py",
            "src/tool/conftest.py",
            "src/tool/tests/test_a.py",
            "cli.py",
            "test_cli.py",
            "conftest.py",
            "pyproject.toml",
            "PROBLEM.md",
            "problem.toml",
            "reference/cli.py",
            "src/tool/__pycache__/x.pyc",
        ] {
            touch(d.path(), f);
        }
        let m = manifest(
            "editable = [\"src/tool/\", \"cli.py\"]\ntest_paths = [\"src/tool/tests/\", \"test_cli.py\", \"conftest.py\"]\n",
        );
        let l = Layout::of("tool", d.path(), &m);
        assert_eq!(l.reference, "reference");
        assert_eq!(l.pythonpath, [".", "src"]);
        assert!(l.is_editable("src/tool/__init__.py") && l.is_editable("cli.py"));
        assert!(!l.is_editable("src/tool/conftest.py") && !l.is_editable("src/tool/tests/test_a.py"));
        assert!(!l.is_editable("src/toolbox.py") && !l.is_editable("cli.pyc"));
        let editable: Vec<String> = l.read_editable(d.path()).unwrap().into_keys().collect();
        assert_eq!(editable, ["cli.py", "src/tool/__init__.py"]);
        let frozen: Vec<String> =
            l.frozen_files(d.path()).unwrap().iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(
            frozen,
            ["conftest.py", "pyproject.toml", "src/tool/conftest.py", "src/tool/tests/test_a.py", "test_cli.py"]
        );
        assert_eq!(l.testpaths(), ["src/tool/tests", "test_cli.py"]);
    }
}
