//! `<name>.reference/bugs.toml`: every bug as a (fixed → broken) snippet, so that
//! `validate` can put each bug back into the reference mechanically.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;

pub const BUGS_FILE: &str = "bugs.toml";
pub const FIX_FILE: &str = "FIX.md";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BugsFile {
    #[serde(rename = "bug", default)]
    pub bugs: Vec<Bug>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bug {
    pub id: String,
    /// Relative to the package folder (`<name>.reference/`), or to the problem folder (a
    /// declared layout's `reference/`). [`crate::problem::Problem::bugs`] makes it the latter.
    pub file: String,
    /// For the problem's author and reader; fixbench checks only that it is there.
    pub summary: String,
    pub fixed: String,
    pub broken: String,
    #[serde(default)]
    pub tests: Vec<String>,
}

pub fn load(path: &Path) -> Result<Vec<Bug>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let file: BugsFile = crate::config::parse(&text, path)?;
    if file.bugs.is_empty() {
        return Err(Error::BadInput(format!(
            "{}: lists no [[bug]]: every bug of the starter must be listed",
            path.display()
        ))
        .into());
    }
    Ok(file.bugs)
}

use crate::files::Files;

/// Puts `bugs` into `files` (a copy of the reference); each `fixed` snippet must occur
/// exactly once in its file.
pub fn apply(files: &Files, bugs: &[&Bug]) -> Result<Files, String> {
    let mut out = files.clone();
    for bug in bugs {
        let text = out
            .get_mut(&bug.file)
            .ok_or_else(|| format!("bug `{}` names file `{}`, which the reference lacks", bug.id, bug.file))?;
        match text.matches(&bug.fixed).count() {
            1 => *text = text.replacen(&bug.fixed, &bug.broken, 1),
            0 => return Err(format!("bug `{}`: its `fixed` snippet is not in {}", bug.id, bug.file)),
            n => {
                return Err(format!(
                    "bug `{}`: its `fixed` snippet occurs {n} times in {}; make it unique",
                    bug.id, bug.file
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bug(fixed: &str, broken: &str) -> Bug {
        Bug {
            id: "b".into(),
            file: "a.py".into(),
            summary: String::new(),
            fixed: fixed.into(),
            broken: broken.into(),
            tests: vec![],
        }
    }

    #[test]
    fn applies_unique_snippets_and_rejects_ambiguous_ones() {
        let files: Files = [("a.py".to_string(), "x = 1\ny = 2\n".to_string())].into();
        let out = apply(&files, &[&bug("y = 2", "y = 3")]).unwrap();
        assert_eq!(out["a.py"], "x = 1\ny = 3\n");
        assert!(apply(&files, &[&bug(" = ", "=")]).unwrap_err().contains("2 times"));
        assert!(apply(&files, &[&bug("z", "w")]).unwrap_err().contains("not in a.py"));
    }
}
