//! The results store: `results/<run_id>/run.json` plus per-trial folders.
//! Every write is atomic (temp file + rename), so a crash never leaves a torn record.

pub mod schema;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use schema::*;

pub const RUN_FILE: &str = "run.json";
/// A run folder's lock, held by the fixbench running it (see [`Store::lock`]).
pub const LOCK_FILE: &str = ".lock";

/// A run's lock: while it lives, no other fixbench runs or resumes that run.
pub struct RunLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Writes `bytes` to `path` atomically: a sibling temp file, fsync, rename. The file gets the
/// mode `fs::write` would give it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    // The mode every other file gets (0666 less the umask), not a temp file's 0600.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("failed to write {}", path.display()))?;
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

    /// Creates the folder of a new run, exclusively: when `run_id` is taken (two runs started
    /// in the same second drew the same suffix), another id is drawn. Returns the id used.
    pub fn create_run_dir(&self, run_id: &str) -> Result<String> {
        fs::create_dir_all(&self.root).with_context(|| format!("failed to create {}", self.root.display()))?;
        let mut id = run_id.to_string();
        for _ in 0..100 {
            let dir = self.run_dir(&id);
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(id),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => id = new_run_id(chrono::Utc::now()),
                Err(e) => return Err(e).with_context(|| format!("failed to create {}", dir.display())),
            }
        }
        bail!("failed to find a free run id in {}: 100 tries were taken", self.root.display())
    }

    /// Takes the lock of run `run_id` (its folder must exist) for as long as the returned
    /// value lives, writing this process's id into the lock file. A run another fixbench holds
    /// is a bad-input error naming that process.
    pub fn lock(&self, run_id: &str) -> Result<RunLock> {
        use nix::fcntl::{Flock, FlockArg};
        let path = self.run_dir(run_id).join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)?;
                write!(lock, "{}", std::process::id())?;
                Ok(RunLock { _lock: lock })
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    pid => format!("process {pid}"),
                };
                Err(crate::error::Error::BadInput(format!(
                    "run {run_id} is being run by another fixbench ({holder} holds {}): wait for it to end, or stop it and resume",
                    path.display()
                ))
                .into())
            }
            Err((_, e)) => Err(anyhow::Error::new(e).context(format!("failed to lock {}", path.display()))),
        }
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
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", self.root.display())),
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
                Some(n) => n
                    .parse()
                    .with_context(|| format!("`{name}` is not a run name: use `latest`, `latest~N` or a run id"))?,
                None => bail!("`{name}` is not a run name: use `latest`, `latest~N` or a run id"),
            };
            let ids = self.run_ids()?;
            if back >= ids.len() {
                bail!("`{name}` names no run: {} holds {} run(s)", self.root.display(), ids.len());
            }
            return Ok(ids[ids.len() - 1 - back].clone());
        }
        if !self.run_dir(name).join(RUN_FILE).is_file() {
            bail!("no run `{name}` in {} (see `fixbench history` for the stored runs)", self.root.display());
        }
        Ok(name.to_string())
    }
}

pub fn load_file(path: &Path) -> Result<RunRecord> {
    let text = fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let run: RunRecord = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fixbench run record (corrupt or from another tool)", path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_run_id_is_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("results"));
        let first = store.create_run_dir("20260101-000000-abcd").unwrap();
        assert_eq!(first, "20260101-000000-abcd");
        std::fs::write(store.run_dir(&first).join(RUN_FILE), "{}").unwrap();
        let second = store.create_run_dir("20260101-000000-abcd").unwrap();
        assert_ne!(second, first, "a collision draws another id");
        assert!(store.run_dir(&second).is_dir());
        assert_eq!(
            std::fs::read_to_string(store.run_dir(&first).join(RUN_FILE)).unwrap(),
            "{}",
            "the first run is untouched"
        );
    }

    #[test]
    fn a_locked_run_names_the_process_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = store.create_run_dir("20260101-000000-0001").unwrap();
        let held = store.lock(&id).unwrap();
        let err = store.lock(&id).err().expect("a second lock is refused");
        assert_eq!(crate::error::exit_code_for(&err), crate::exit_codes::BAD_INPUT);
        assert!(err.to_string().contains(&format!("process {}", std::process::id())), "{err}");
        drop(held);
        store.lock(&id).expect("free again once the holder is gone");
    }
}
