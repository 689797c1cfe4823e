//! A package as text: its files by relative path, read from and written to a folder.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Package files by relative path.
pub type Files = std::collections::BTreeMap<String, String>;

/// Names never copied anywhere: caches that could carry stale or forged bytecode.
pub fn is_cache(name: &str) -> bool {
    name == "__pycache__" || name == ".pytest_cache" || name.ends_with(".pyc")
}

/// Reads the text files of a package (relative path → content); caches are left out.
pub fn read_files(dir: &Path) -> Result<Files> {
    let mut files = Files::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    let mut it = walkdir::WalkDir::new(dir).follow_links(false).min_depth(1).into_iter();
    while let Some(entry) = it.next() {
        let entry = entry?;
        if is_cache(&entry.file_name().to_string_lossy()) {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let bytes = fs::read(entry.path())?;
            files.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(files)
}

/// Writes `files` under `dir` (created fresh).
pub fn write_files(dir: &Path, files: &Files) -> Result<()> {
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, text).with_context(|| format!("failed to write {}", p.display()))?;
    }
    Ok(())
}
