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
        Ok(m)
    }
}

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
    fn bad_difficulty_lists_choices() {
        let e = load("difficulty = \"tricky\"\ndescription = \"x\"\ntests = 3\nbaseline = 1\n");
        assert!(e.contains("tricky") && e.contains("easy"), "{e}");
    }
}
