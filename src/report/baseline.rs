//! `fixbench baseline save NAME RUN_ID`: keeps a copy of a run for `fixbench gate` to judge
//! against, as criterion keeps a saved baseline; `list` and `remove` manage them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::runs;
use crate::error::Error;
use crate::store::{RunRecord, Store};

/// Where saved baselines live inside a results folder (not a run: it holds no `run.json`).
pub const BASELINES_DIR: &str = "baselines";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedBaseline {
    pub name: String,
    pub saved_at: DateTime<Utc>,
    pub run: RunRecord,
}

pub fn baseline_path(store: &Store, name: &str) -> PathBuf {
    store.root.join(BASELINES_DIR).join(format!("{name}.json"))
}

pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.')
        && !name.starts_with("latest");
    if !ok {
        return Err(Error::BadInput(format!(
            "`{name}` is not a baseline name: use letters, digits, `.`, `_` and `-`, not starting with `.` or `latest`"
        ))
        .into());
    }
    Ok(())
}

/// A saved baseline by name, else a run by name; returns the run and how to call it.
pub fn load_baseline(store: &Store, name: &str) -> Result<(RunRecord, String)> {
    let path = baseline_path(store, name);
    if check_name(name).is_ok() && path.is_file() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
        let mut saved: SavedBaseline = serde_json::from_str(&text).map_err(|e| {
            Error::BadInput(format!("saved baseline {} is corrupt ({e}): save it again", path.display()))
        })?;
        saved.run.upgrade();
        let label =
            format!("`{name}` (run {}, saved {})", saved.run.run_id, saved.saved_at.format("%Y-%m-%d %H:%M UTC"));
        return Ok((saved.run, label));
    }
    let run = runs::load_one(store, name).map_err(|e| {
        Error::BadInput(format!("{e} (nor is there a saved baseline `{name}`: see `fixbench baseline list`)"))
    })?;
    let label = format!("run {}", run.run_id);
    Ok((run, label))
}
