//! `problem.toml`: a problem's metadata.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub difficulty: Difficulty,
    pub description: String,
    /// How many tests the frozen suite has.
    pub tests: u32,
    /// How many of them the buggy starter passes.
    pub baseline: u32,
    /// What the agent is asked to change, relative to the problem folder (`src/tool/` a
    /// folder, `cli.py` a file); only these are graded as its work. Default: `<name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editable: Option<Vec<String>>,
    /// The frozen tests with their helpers and `conftest.py`. Default: `tests/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_paths: Option<Vec<String>>,
    /// PyPI requirements of the code and its tests, installed once into an environment of
    /// their own before any trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Extra arguments for pytest (`["-p", "no:randomly"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pytest_args: Vec<String>,
    /// Folders put on `sys.path` for the tests, relative to the problem folder. Default: the
    /// folder itself, and `src` when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pythonpath: Option<Vec<String>>,
    /// Words a report pools problems by (`["refactor"]`): `fixbench route` answers per tag too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
        let m: Manifest = crate::config::parse(&text, path)?;
        if m.baseline > m.tests {
            return Err(Error::BadInput(format!(
                "{}: `baseline` ({}) is larger than `tests` ({}): fix one of them",
                path.display(),
                m.baseline,
                m.tests
            ))
            .into());
        }
        let field = |name: &str, list: &[String]| -> Result<()> {
            for p in list {
                let parts = p.split('/').filter(|c| !c.is_empty() && *c != ".").count();
                if parts == 0 && name != "pythonpath" {
                    return Err(Error::BadInput(format!(
                        "{}: `{name}` lists `{p}`, the problem folder itself: name the folders or files inside it",
                        path.display()
                    ))
                    .into());
                }
                if let Err(why) = crate::config::check_relative_path(p.trim_end_matches('/')) {
                    return Err(Error::BadInput(format!(
                        "{}: `{name}` lists `{p}`, which {why}: give paths relative to the problem folder",
                        path.display()
                    ))
                    .into());
                }
            }
            if let Some(dup) = crate::config::first_repeated(list) {
                return Err(Error::BadInput(format!("{}: `{name}` lists `{dup}` twice", path.display())).into());
            }
            Ok(())
        };
        for (name, list) in [("editable", &m.editable), ("test_paths", &m.test_paths), ("pythonpath", &m.pythonpath)] {
            if let Some(list) = list {
                if list.is_empty() && name != "pythonpath" {
                    return Err(Error::BadInput(format!(
                        "{}: `{name}` is empty: list at least one path, or leave the key out for the default",
                        path.display()
                    ))
                    .into());
                }
                field(name, list)?;
            }
        }
        for arg in &m.pytest_args {
            let flag = arg.split('=').next().unwrap_or(arg);
            if REFUSED_PYTEST_ARGS.contains(&flag) {
                return Err(Error::BadInput(format!(
                    "{}: `pytest_args` holds `{arg}`, which grading cannot take (it sets the configuration, the report \
                     and the tests run itself, and every test must run): remove it",
                    path.display()
                ))
                .into());
            }
        }
        for r in &m.requires {
            if r.trim().is_empty() || r.trim_start().starts_with('-') {
                return Err(Error::BadInput(format!(
                    "{}: `requires` holds `{r}`: list PyPI requirements such as `attrs==23.2.0`, not installer options",
                    path.display()
                ))
                .into());
            }
        }
        Ok(m)
    }
}

/// pytest options that would change what grading reads or which tests run at all.
const REFUSED_PYTEST_ARGS: &[&str] = &[
    "-c",
    "--config-file",
    "--rootdir",
    "--junitxml",
    "--junit-xml",
    "--junit-prefix",
    "-x",
    "--exitfirst",
    "--maxfail",
    "--co",
    "--collect-only",
    "--lf",
    "--last-failed",
    "--ff",
    "--failed-first",
    "--sw",
    "--stepwise",
    "--pdb",
    "--trace",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("problem.toml");
        std::fs::write(&p, text).unwrap();
        Manifest::load(&p).map(|m| format!("{m:?}")).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn missing_key_is_named() {
        let e = load("difficulty = \"easy\"\ndescription = \"x\"\ntests = 3\n");
        assert!(e.contains("problem.toml") && e.contains("missing field `baseline`"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load("difficulty = \"easy\"\ndescription = \"x\"\ntests = 3\nbaseline = 1\nauthor = \"me\"\n");
        assert!(e.contains("unknown field `author`") && e.contains("line 5"), "{e}");
    }

    #[test]
    fn layout_paths_and_pytest_args_are_checked() {
        let base = "difficulty = \"easy\"\ndescription = \"x\"\ntests = 3\nbaseline = 1\n";
        let e = load(&format!("{base}editable = [\"../up\"]\n"));
        assert!(e.contains("`editable` lists `../up`") && e.contains("leaves the folder"), "{e}");
        let e = load(&format!("{base}editable = [\"./\"]\n"));
        assert!(e.contains("`editable` lists `./`, the problem folder itself"), "{e}");
        let e = load(&format!("{base}test_paths = []\n"));
        assert!(e.contains("`test_paths` is empty"), "{e}");
        let e = load(&format!("{base}pytest_args = [\"-x\"]\n"));
        assert!(e.contains("`pytest_args` holds `-x`"), "{e}");
        let e = load(&format!("{base}requires = [\"--index-url=http://x\"]\n"));
        assert!(e.contains("`requires` holds"), "{e}");
        let ok = load(&format!(
            "{base}editable = [\"src/tool/\", \"cli.py\"]\ntest_paths = [\"tests/\"]\nrequires = [\"attrs==23.2.0\"]\npytest_args = [\"-p\", \"no:randomly\"]\n"
        ));
        assert!(ok.contains("src/tool/") && ok.contains("attrs==23.2.0"), "{ok}");
    }

    #[test]
    fn bad_difficulty_lists_choices() {
        let e = load("difficulty = \"tricky\"\ndescription = \"x\"\ntests = 3\nbaseline = 1\n");
        assert!(e.contains("tricky") && e.contains("easy"), "{e}");
    }
}
