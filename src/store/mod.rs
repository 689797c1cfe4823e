//! The results store: `results/<run_id>/run.json` plus per-trial folders.
//! Every write is atomic (temp file + rename), so a crash never leaves a torn record.

pub mod schema;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use schema::*;

pub const RUN_FILE: &str = "run.json";

/// Writes `bytes` to `path` atomically: a sibling temp file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("failed to create a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// A results folder holding one folder per run.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(run_id)
    }

    pub fn save(&self, run: &RunRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(run)?;
        write_atomic(&self.run_dir(&run.run_id).join(RUN_FILE), &json)
    }

    pub fn load(&self, run_id: &str) -> Result<RunRecord> {
        let path = self.run_dir(run_id).join(RUN_FILE);
        load_file(&path)
    }

    /// Every run id in the store, oldest first (run ids sort by start time).
    pub fn run_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read {}", self.root.display()))
            }
        };
        for entry in entries {
            let entry = entry?;
            if entry.path().join(RUN_FILE).is_file() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Resolves `latest`, `latest~N` or a literal run id to a stored run id.
    pub fn resolve(&self, name: &str) -> Result<String> {
        if let Some(rest) = name.strip_prefix("latest") {
            let back: usize = match rest.strip_prefix('~') {
                None if rest.is_empty() => 0,
                Some(n) => n.parse().with_context(|| {
                    format!("`{name}` is not a run name: use `latest`, `latest~N` or a run id")
                })?,
                None => bail!("`{name}` is not a run name: use `latest`, `latest~N` or a run id"),
            };
            let ids = self.run_ids()?;
            if back >= ids.len() {
                bail!(
                    "`{name}` names no run: {} holds {} run(s)",
                    self.root.display(),
                    ids.len()
                );
            }
            return Ok(ids[ids.len() - 1 - back].clone());
        }
        if !self.run_dir(name).join(RUN_FILE).is_file() {
            bail!(
                "no run `{name}` in {} (see `fixbench history` for the stored runs)",
                self.root.display()
            );
        }
        Ok(name.to_string())
    }
}

pub fn load_file(path: &Path) -> Result<RunRecord> {
    let text =
        fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let run: RunRecord = serde_json::from_str(&text).with_context(|| {
        format!("{} is not a fixbench run record (corrupt or from another tool)", path.display())
    })?;
    if run.schema_version > SCHEMA_VERSION {
        bail!(
            "{} has schema_version {}, newer than this fixbench understands ({SCHEMA_VERSION}): upgrade fixbench",
            path.display(),
            run.schema_version
        );
    }
    Ok(run)
}

/// A new run id: UTC start time plus a short random suffix, so ids sort by time.
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let suffix: u16 = rand::random();
    format!("{}-{:04x}", now.format("%Y%m%d-%H%M%S"), suffix)
}
