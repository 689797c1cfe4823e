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

/// The sha256 (hex) of the files `read_files` reads from `dir`: each relative path, then its
/// length and content, in path order. Equal for equal trees, wherever they lie.
pub fn tree_hash(dir: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (rel, text) in read_files(dir)? {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(text.len().to_le_bytes());
        h.update(text.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether `root`, or any folder or file on the way from it to `root/rel`, is a symbolic link.
pub fn through_link(root: &Path, rel: &str) -> bool {
    let mut p = root.to_path_buf();
    let is_link = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    if is_link(&p) {
        return true;
    }
    for part in rel.split('/').filter(|s| !s.is_empty()) {
        p.push(part);
        if is_link(&p) {
            return true;
        }
    }
    false
}

/// The sha256 (hex) of every entry under `dir` byte for byte (binary files too): each
/// relative path with its kind and content, a link's target in place of content; the
/// top-level names in `leave_out` are not part of it.
pub fn bytes_hash(dir: &Path, leave_out: &[&str]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut it = walkdir::WalkDir::new(dir).follow_links(false).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = it.next() {
        let entry = entry?;
        let rel = entry.path().strip_prefix(dir).expect("under its root").to_string_lossy().into_owned();
        if entry.depth() == 1 && leave_out.contains(&rel.as_str()) {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        h.update(rel.as_bytes());
        let ft = entry.file_type();
        if ft.is_symlink() {
            h.update(b"\0l\0");
            h.update(fs::read_link(entry.path())?.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            let bytes = fs::read(entry.path())?;
            h.update(b"\0f\0");
            h.update(bytes.len().to_le_bytes());
            h.update(&bytes);
        } else {
            h.update(if ft.is_dir() { b"\0d\0" } else { b"\0o\0" });
        }
    }
    Ok(hex::encode(h.finalize()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_hashes_follow_names_and_contents_not_the_folder_or_caches() {
        let t = tempfile::tempdir().unwrap();
        let files = Files::from([("a.py".to_string(), "x = 1\n".to_string()), ("sub/b.py".to_string(), String::new())]);
        let (one, two) = (t.path().join("one"), t.path().join("two"));
        write_files(&one, &files).unwrap();
        write_files(&two, &files).unwrap();
        fs::create_dir_all(two.join("__pycache__")).unwrap();
        fs::write(two.join("__pycache__/a.pyc"), "stale").unwrap();
        assert_eq!(tree_hash(&one).unwrap(), tree_hash(&two).unwrap());
        fs::rename(two.join("sub/b.py"), two.join("sub/c.py")).unwrap();
        assert_ne!(tree_hash(&one).unwrap(), tree_hash(&two).unwrap());
    }
}
