//! The model file's size and sha256, when the file is readable here. Hashes are cached by
//! path, size and mtime in `hashes.json` of fixbench's cache folder (`$FIXBENCH_CACHE`, else
//! `$XDG_CACHE_HOME/fixbench`, else `~/.cache/fixbench`): a 20 GB file is hashed once, not
//! every run.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Default, Serialize, Deserialize)]
struct HashCache {
    #[serde(default)]
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

/// The default cache file, in the same folder setup caches llama-server and the model in.
pub fn cache_file() -> Option<PathBuf> {
    Some(crate::host::cache_dir()?.join("hashes.json"))
}

/// Size and sha256 of `model`; `None` when the file is not readable from here (a server on
/// another machine, or a path this user cannot read).
pub fn model_file(model: &Path, cache: Option<&Path>) -> Option<(u64, String)> {
    let meta = std::fs::metadata(model).ok().filter(|m| m.is_file())?;
    let size = meta.len();
    let mtime_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    let key = std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf()).to_string_lossy().into_owned();
    let mut store: HashCache = cache
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(e) = store.files.get(&key) {
        if e.size == size && e.mtime_ns == mtime_ns {
            return Some((size, e.sha256.clone()));
        }
    }
    let started = Instant::now();
    if size > 1 << 30 {
        eprintln!(
            "hashing the model file {} ({:.1} GB) once; later runs reuse the hash",
            model.display(),
            size as f64 / 1e9
        );
    }
    let sha = sha256_file(model).ok()?;
    if size > 1 << 30 {
        eprintln!("hashed in {:.0} s", started.elapsed().as_secs_f64());
    }
    if let Some(c) = cache {
        store.files.insert(key, Entry { size, mtime_ns, sha256: sha.clone() });
        // A cache that cannot be written only costs a hash next time.
        let _ = crate::store::write_atomic(c, &serde_json::to_vec_pretty(&store).unwrap_or_default());
    }
    Some((size, sha))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("failed to read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_cache_lives_in_fixbench_cache_when_it_is_set() {
        let before = std::env::var_os("FIXBENCH_CACHE");
        std::env::set_var("FIXBENCH_CACHE", "/srv/fb-cache");
        let with = cache_file();
        std::env::remove_var("FIXBENCH_CACHE");
        let without = cache_file();
        if let Some(b) = before {
            std::env::set_var("FIXBENCH_CACHE", b);
        }
        assert_eq!(with, Some(PathBuf::from("/srv/fb-cache/hashes.json")));
        assert!(without.is_some_and(|p| p.ends_with("fixbench/hashes.json")));
    }

    #[test]
    fn hashes_once_then_reads_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"abc").unwrap();
        let cache = dir.path().join("cache/hashes.json");
        let (size, sha) = model_file(&model, Some(&cache)).unwrap();
        assert_eq!(size, 3);
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // A cached entry is trusted while size and mtime match: poison it to prove it is read.
        let text = std::fs::read_to_string(&cache).unwrap().replace(&sha, "cached");
        std::fs::write(&cache, text).unwrap();
        assert_eq!(model_file(&model, Some(&cache)).unwrap().1, "cached");
        // A changed file (new size) is hashed again.
        std::fs::write(&model, b"abcd").unwrap();
        let (size, sha2) = model_file(&model, Some(&cache)).unwrap();
        assert_eq!(size, 4);
        assert_ne!(sha2, "cached");
    }

    #[test]
    fn unreadable_model_gives_none() {
        assert!(model_file(Path::new("/nonexistent/model.gguf"), None).is_none());
    }
}
