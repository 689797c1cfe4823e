//! The grading Python, checked to start and import pytest. The check costs an interpreter
//! start and `import pytest` (~0.15 s, as much as grading a small problem), so its answer is
//! kept under `<results>/.cache/` and reused while nothing it depends on has changed: the
//! interpreter, every folder on its `sys.path` (installing or removing a package changes the
//! folder) and pytest's own files (an upgrade in place rewrites them).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exec;

/// Prints pytest's version, then the paths whose change would change the answer. `-I` as in
/// grading: no user site, no PYTHON* variables, no cwd on `sys.path`.
const PROBE: &str = "import os, sys, pytest\n\
print(pytest.__version__)\n\
print(os.path.realpath(sys.executable))\n\
print(os.path.dirname(pytest.__file__))\n\
print(pytest.__file__)\n\
for p in sys.path:\n    print(p)\n";

/// What the check found, with the stamps that say whether it still holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Checked {
    pytest_version: String,
    stamps: BTreeMap<PathBuf, Option<Stamp>>,
}

/// A file's identity and last change; `None` for a path that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
    })
}

/// pytest's version under `python`, from the cache in `cache_dir` when it still holds, else by
/// starting `python` (and then caching). `None`: `python` does not start or has no pytest.
pub fn pytest_version(python: &Path, cache_dir: Option<&Path>) -> Option<String> {
    let file = cache_dir.map(|d| {
        d.join(format!("python-{}.json", &hex::encode(Sha256::digest(python.as_os_str().as_encoded_bytes()))[..16]))
    });
    if let Some(f) = &file {
        if let Some(c) = std::fs::read(f).ok().and_then(|b| serde_json::from_slice::<Checked>(&b).ok()) {
            if still_holds(python, &c) {
                return Some(c.pytest_version);
            }
        }
    }
    let checked = probe(python)?;
    if let Some(f) = &file {
        if let Ok(bytes) = serde_json::to_vec_pretty(&checked) {
            let _ = crate::store::write_atomic(f, &bytes);
        }
    }
    Some(checked.pytest_version)
}

fn still_holds(python: &Path, c: &Checked) -> bool {
    c.stamps.get(python).is_some_and(|s| s.is_some()) && c.stamps.iter().all(|(p, s)| stamp(p) == *s)
}

fn probe(python: &Path) -> Option<Checked> {
    // Stamped before the probe runs: a change made while it runs shows at the next check.
    let before = stamp(python)?;
    let dir = tempfile::tempdir().ok()?;
    let argv = vec![python.to_string_lossy().into_owned(), "-I".into(), "-c".into(), PROBE.into()];
    let text = exec::probe_output(&argv, &BTreeMap::new(), dir.path(), Duration::from_secs(60))?;
    let mut lines = text.lines().map(str::trim_end);
    let pytest_version = lines.next().filter(|v| !v.is_empty())?.to_string();
    let mut stamps = BTreeMap::from([(python.to_path_buf(), Some(before))]);
    for p in lines.filter(|l| !l.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            stamps.insert(p.clone(), stamp(&p));
        }
    }
    Some(Checked { pytest_version, stamps })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake interpreter: prints what the probe would, for the paths it is given.
    fn fake_python(dir: &Path, version: &str, site: &Path) -> PathBuf {
        let py = dir.join("python");
        let count = dir.join("starts");
        std::fs::write(
            &py,
            format!(
                "#!/bin/sh\necho x >> {count}\necho {version}\necho {py}\necho {site}/pytest\necho {site}/pytest/__init__.py\necho {site}\n",
                count = count.display(),
                py = py.display(),
                site = site.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&py).status().unwrap();
        py
    }

    fn starts(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("starts")).map(|s| s.lines().count()).unwrap_or(0)
    }

    #[test]
    fn the_check_is_cached_until_a_package_or_the_interpreter_changes() {
        let _serial = crate::exec::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let (bin, site, cache) = (d.path().join("bin"), d.path().join("site"), d.path().join("cache"));
        std::fs::create_dir_all(site.join("pytest")).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(site.join("pytest/__init__.py"), "v1").unwrap();
        let py = fake_python(&bin, "8.3.4", &site);

        assert_eq!(pytest_version(&py, Some(&cache)).as_deref(), Some("8.3.4"));
        assert_eq!(pytest_version(&py, Some(&cache)).as_deref(), Some("8.3.4"));
        assert_eq!(starts(&bin), 1, "the second check came from the cache");

        // A package installed next to pytest changes the folder.
        std::fs::create_dir(site.join("newpkg")).unwrap();
        assert_eq!(pytest_version(&py, Some(&cache)).as_deref(), Some("8.3.4"));
        assert_eq!(starts(&bin), 2);

        // pytest upgraded in place.
        std::fs::write(site.join("pytest/__init__.py"), "v2 longer").unwrap();
        pytest_version(&py, Some(&cache));
        assert_eq!(starts(&bin), 3);

        // Another interpreter at the same path.
        std::fs::remove_file(&py).unwrap();
        let py = fake_python(&bin, "9.0.0", &site);
        assert_eq!(pytest_version(&py, Some(&cache)).as_deref(), Some("9.0.0"));
        assert_eq!(starts(&bin), 4);
        assert_eq!(pytest_version(&py, Some(&cache)).as_deref(), Some("9.0.0"));
        assert_eq!(starts(&bin), 4);

        // Without a cache folder, every check starts the interpreter.
        pytest_version(&py, None);
        assert_eq!(starts(&bin), 5);
    }

    #[test]
    fn a_python_without_pytest_is_never_cached() {
        let _serial = crate::exec::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let py = d.path().join("python");
        std::fs::write(&py, "#!/bin/sh\necho 'No module named pytest' >&2\nexit 1\n").unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&py).status().unwrap();
        assert_eq!(pytest_version(&py, Some(&d.path().join("cache"))), None);
        assert!(!d.path().join("cache").exists());
    }
}
