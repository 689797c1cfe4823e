//! The results store: `results/<run_id>/run.json`, the run's header, plus a folder per trial
//! holding its record (`trial.json`), logs, diff and JUnit report. Each finished trial is
//! written on its own, so saving one costs the same however many the run holds, and every
//! write is atomic (temp file + rename): a crash never leaves a torn record. A run that
//! finishes also gets `trials.json`, all its trials in one file, written once, so that
//! reading it costs one file rather than one per trial.

pub mod schema;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::model::TrialKey;
use schema::RunHeader;
pub use schema::*;

pub const RUN_FILE: &str = "run.json";
/// The folder of a run's trials, each in `<problem>__<agent>__<repeat>/`.
pub const TRIALS_DIR: &str = "trials";
/// A finished trial's record, in its folder.
pub const TRIAL_FILE: &str = "trial.json";
/// A finished run's trials, all in one file beside its header.
pub const TRIALS_FILE: &str = "trials.json";
/// A run folder's lock, held by the fixbench running it (see [`Store::lock`]).
pub const LOCK_FILE: &str = ".lock";

/// A run's lock: while it lives, no other fixbench runs or resumes that run.
pub struct RunLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Writes `bytes` to `path` atomically: a sibling temp file, fsync, rename. The file gets the
/// mode `fs::write` would give it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// [`write_atomic`] of what `write` writes, streamed (a large list is never held as bytes).
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    // The mode every other file gets (0666 less the umask), not a temp file's 0600.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
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

    /// Creates the folder of a new run named by its user (`--run-id`): exactly `run_id`. A
    /// folder of that name left without a `run.json` (a run that died before its header was
    /// written, or a merge cut short) is taken over.
    pub fn create_named_run_dir(&self, run_id: &str) -> Result<()> {
        let dir = self.run_dir(run_id);
        if dir.join(RUN_FILE).exists() {
            return Err(crate::error::Error::BadInput(format!(
                "run {run_id} was started in {} by another fixbench just now: run this command again once it ends (or fails) to continue it",
                self.root.display()
            ))
            .into());
        }
        if let Some(name) = not_a_runs(&dir) {
            return Err(crate::error::Error::BadInput(format!(
                "{} exists and is not a fixbench run (it holds `{name}`): give another --run-id",
                dir.display()
            ))
            .into());
        }
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))
    }

    /// Whether run `run_id`'s folder is what a run or a merge left before its header was
    /// written: no `run.json`, and nothing but a run's own files. Such a folder may be taken
    /// over; any other folder is someone's, and never written into.
    pub fn is_leftover(&self, run_id: &str) -> bool {
        let dir = self.run_dir(run_id);
        dir.is_dir() && !dir.join(RUN_FILE).exists() && not_a_runs(&dir).is_none()
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

    /// A trial's folder, relative to its run's folder (`trials/expr_calc__null__0`).
    pub fn trial_dir(key: &TrialKey) -> String {
        format!("{TRIALS_DIR}/{}", key.dir_name())
    }

    /// Writes the header of a run (`run.json`): when it starts and when its status changes.
    /// Its finished trials must be on disk already, each by [`Store::save_trial`], and a
    /// finished run's by [`Store::seal`] too; a run not finished has no `trials.json`.
    pub fn save_header(&self, run: &RunRecord) -> Result<()> {
        let dir = self.run_dir(&run.run_id);
        if run.status != RunStatus::Finished {
            remove_if_there(&dir.join(TRIALS_FILE))?;
        }
        let json = serde_json::to_vec_pretty(&RunHeader::from(run))?;
        write_atomic(&dir.join(RUN_FILE), &json)
    }

    /// Writes `trials.json`, every trial of `run` in one file, before the header that says the
    /// run finished: what reading a finished run reads instead of one file per trial.
    pub fn seal(&self, run: &RunRecord) -> Result<()> {
        let mut trials: Vec<&TrialRecord> = run.trials.iter().collect();
        let order = run_order(&run.config);
        trials.sort_by(|a, b| order(a, b));
        write_atomic_with(&self.run_dir(&run.run_id).join(TRIALS_FILE), |w| Ok(serde_json::to_writer(w, &trials)?))
    }

    /// Writes one finished trial's record into its folder, touching nothing else of the run.
    pub fn save_trial(&self, run_id: &str, trial: &TrialRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(trial)?;
        let path = self.run_dir(run_id).join(Self::trial_dir(&trial.key())).join(TRIAL_FILE);
        write_atomic(&path, &json)
    }

    /// Writes one trial's record into its folder with a temp file and a rename, without the
    /// sync of [`Store::save_trial`]: for a run whose records [`Store::seal`] then writes, and
    /// syncs, into `trials.json` before its header (a merge, whose sources stay where they
    /// are: a crash costs it nothing but a re-run).
    pub fn save_trial_unsynced(&self, run_id: &str, t: &TrialRecord) -> Result<()> {
        let dir = self.run_dir(run_id).join(Self::trial_dir(&t.key()));
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let (path, tmp) = (dir.join(TRIAL_FILE), dir.join(format!(".{TRIAL_FILE}.tmp")));
        fs::write(&tmp, serde_json::to_vec_pretty(t)?).with_context(|| format!("failed to write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("failed to write {}", path.display()))
    }

    /// Writes the header of a run being resumed. One stored by an older fixbench (schema 1,
    /// every trial inside `run.json`) first has each of its trials, `run.trials`, written to
    /// its own file, so that none is lost when the header replaces it.
    pub fn save_resumed(&self, run: &RunRecord) -> Result<()> {
        if self.load_header(&run.run_id)?.schema_version < 2 {
            for t in &run.trials {
                self.save_trial(&run.run_id, t)?;
            }
        }
        self.save_header(run)
    }

    /// Writes a whole run: every trial's record, then the header. A run read from an older
    /// schema is written in this one, its trials first so that none is ever lost.
    pub fn save(&self, run: &RunRecord) -> Result<()> {
        for t in &run.trials {
            self.save_trial(&run.run_id, t)?;
        }
        if run.status == RunStatus::Finished {
            self.seal(run)?;
        }
        self.save_header(run)
    }

    /// Reads `run.json` alone: the run without its trials, unless it is of schema 1.
    pub fn load_header(&self, run_id: &str) -> Result<RunRecord> {
        let mut run = read_run_file(&self.run_dir(run_id).join(RUN_FILE))?;
        // A run is named by its folder: one copied or renamed reads as what it is called here.
        run.run_id = run_id.to_string();
        Ok(run)
    }

    /// Reads a run with its finished trials, in the order they started: a finished run's from
    /// its `trials.json`, any other's from its trial files. A run stored by an older fixbench
    /// (schema 1: every trial inside `run.json`) reads as well, upgraded.
    pub fn load(&self, run_id: &str) -> Result<RunRecord> {
        let dir = self.run_dir(run_id);
        let mut run = self.load_header(run_id)?;
        if run.schema_version >= 2 {
            let sealed = match run.status {
                RunStatus::Finished => read_sealed(&dir.join(TRIALS_FILE))?,
                _ => None,
            };
            run.trials = match sealed {
                Some(trials) => trials,
                None => load_trials(&dir, &run.config)?,
            };
        }
        run.upgrade();
        Ok(run)
    }

    /// Every run id in the store (its folders holding a `run.json`, hidden ones left out),
    /// oldest first. A generated id starts with its start time, so those sort by name; a run
    /// named with `--run-id` is placed by the `started_at` in its header.
    pub fn run_ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<(String, String)> = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", self.root.display())),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().join(RUN_FILE).is_file() {
                continue;
            }
            let key = match generated_id_time(&name) {
                Some(t) => t,
                None => started_at(&entry.path().join(RUN_FILE))
                    .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
                    .unwrap_or_default(),
            };
            ids.push((key, name));
        }
        ids.sort();
        // Runs started in the same second: their records' start times (to the nanosecond)
        // order them, not the ids' random suffixes.
        let mut i = 0;
        while i < ids.len() {
            let j = i + ids[i..].iter().take_while(|(k, _)| *k == ids[i].0).count();
            if j - i > 1 {
                ids[i..j]
                    .sort_by_cached_key(|(_, name)| (started_at(&self.run_dir(name).join(RUN_FILE)), name.clone()));
            }
            i = j;
        }
        Ok(ids.into_iter().map(|(_, id)| id).collect())
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

/// The first entry of `dir` that no run writes (`None`: all are a run's, or it is empty).
fn not_a_runs(dir: &Path) -> Option<String> {
    let ours = |name: &str| [TRIALS_DIR, LOCK_FILE, "server.log"].contains(&name) || name.starts_with(".tmp");
    fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| !ours(n))
}

/// The start time a generated run id begins with (`20261123-091204` of `20261123-091204-3fa1`);
/// `None` for a run named otherwise (`--run-id`).
pub fn generated_id_time(id: &str) -> Option<String> {
    let b = id.as_bytes();
    let ok = b.len() >= 15
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit);
    ok.then(|| id[..15].to_string())
}

/// A run header's `started_at`, read without the rest of it.
fn started_at(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    struct Start {
        started_at: chrono::DateTime<chrono::Utc>,
    }
    let file = fs::File::open(path).ok()?;
    serde_json::from_reader::<_, Start>(std::io::BufReader::new(file)).ok().map(|s| s.started_at)
}

/// `run.json` as it is: the header alone (schema 2), or the whole run (schema 1).
fn read_run_file(path: &Path) -> Result<RunRecord> {
    let text = fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let run: RunRecord = serde_json::from_slice(&text)
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

/// A finished run's `trials.json`; `None` when it has none (then its trial files are read).
fn read_sealed(path: &Path) -> Result<Option<Vec<TrialRecord>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let trials = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a list of fixbench trial records (corrupt?)", path.display()))?;
    Ok(Some(trials))
}

fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The order a run's trials are read in: by start, then as the run plans them (repeats,
/// problems, agents), so that it never depends on a folder listing.
pub fn run_order(config: &RunConfig) -> impl Fn(&TrialRecord, &TrialRecord) -> std::cmp::Ordering + '_ {
    let planned = plan_order(config);
    move |a, b| a.started_at.cmp(&b.started_at).then_with(|| planned(a, b))
}

/// The order the run plans its trials in (repeats, problems, agents), whenever they ran: what
/// reports list groups in, so that a merged run's or an overlapping run's read like any other.
pub fn plan_order(config: &RunConfig) -> impl Fn(&TrialRecord, &TrialRecord) -> std::cmp::Ordering + '_ {
    let planned = |t: &TrialRecord| {
        let problem = config.problems.iter().position(|p| *p == t.problem);
        let agent = config.agents.iter().position(|a| a.name == t.agent);
        (t.repeat, problem.unwrap_or(usize::MAX), agent.unwrap_or(usize::MAX))
    };
    move |a, b| planned(a).cmp(&planned(b)).then_with(|| a.id.cmp(&b.id))
}

/// Every finished trial of the run in `dir`, in [`run_order`]: the trial folders holding a
/// `trial.json` (one without it was cut short, and is run again on resume).
fn load_trials(dir: &Path, config: &RunConfig) -> Result<Vec<TrialRecord>> {
    let trials_dir = dir.join(TRIALS_DIR);
    let entries = match fs::read_dir(&trials_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", trials_dir.display())),
    };
    let mut trials = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read {}", trials_dir.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path().join(TRIAL_FILE);
        if fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
            continue; // not a record fixbench wrote (a FIFO would block the read)
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        let trial: TrialRecord = serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a fixbench trial record (corrupt or from another tool)", path.display())
        })?;
        trials.push(trial);
    }
    trials.sort_by(run_order(config));
    Ok(trials)
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
    fn latest_of_runs_started_in_the_same_second_is_the_one_started_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("results"));
        // The id's random suffix sorts the other way round from the start times.
        for (id, at) in
            [("20260101-000000-ffff", "2026-01-01T00:00:00.100Z"), ("20260101-000000-0000", "2026-01-01T00:00:00.900Z")]
        {
            std::fs::create_dir_all(store.run_dir(id)).unwrap();
            std::fs::write(store.run_dir(id).join(RUN_FILE), format!("{{\"started_at\": \"{at}\"}}")).unwrap();
        }
        assert_eq!(store.resolve("latest").unwrap(), "20260101-000000-0000");
        assert_eq!(store.resolve("latest~1").unwrap(), "20260101-000000-ffff");
    }

    /// A record stored by fixbench before schema 2 (tests/integration/fixtures).
    const V1_RUN: &str = include_str!("../../tests/integration/fixtures/v1-store/20261201-142718-f2dd/run.json");

    /// A run of `null` and `oracle` whose three trials were saved in the order b/0, a/1, a/0
    /// of the plan, a second apart.
    fn run_with_trials() -> RunRecord {
        let mut run: RunRecord = serde_json::from_str(V1_RUN).unwrap();
        run.upgrade();
        run.run_id = "20260101-000000-0002".into();
        let template = run.trials.remove(0);
        run.trials.clear();
        for (i, (agent, repeat)) in [("oracle", 0), ("null", 1), ("null", 0)].into_iter().enumerate() {
            let key = TrialKey { problem: "expr_calc".into(), agent: agent.into(), repeat };
            let mut t = template.clone();
            (t.id, t.agent, t.repeat) = (key.id(), key.agent.clone(), repeat);
            let dir = Store::trial_dir(&key);
            t.paths = TrialPaths {
                stdout: format!("{dir}/stdout.log"),
                stderr: format!("{dir}/stderr.log"),
                diff: format!("{dir}/diff.patch"),
                junit: format!("{dir}/junit.xml"),
                transcript: None,
                dir,
            };
            t.started_at = run.started_at + chrono::Duration::seconds(i as i64);
            run.trials.push(t);
        }
        run
    }

    #[test]
    fn a_run_reads_back_as_saved_its_header_holding_no_trials() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let run = run_with_trials();
        store.save(&run).unwrap();
        assert_eq!(store.load(&run.run_id).unwrap(), run, "in the order they started");
        let header: serde_json::Value =
            serde_json::from_slice(&fs::read(store.run_dir(&run.run_id).join(RUN_FILE)).unwrap()).unwrap();
        assert_eq!(header["schema_version"], SCHEMA_VERSION);
        assert!(header.get("trials").is_none(), "{header}");
    }

    #[test]
    fn trials_that_started_together_read_in_the_order_the_run_plans_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut run = run_with_trials();
        let at = run.trials[0].started_at;
        for t in &mut run.trials {
            t.started_at = at;
        }
        store.save(&run).unwrap();
        let ids: Vec<String> = store.load(&run.run_id).unwrap().trials.into_iter().map(|t| t.id).collect();
        assert_eq!(ids, ["expr_calc/null/0", "expr_calc/oracle/0", "expr_calc/null/1"], "repeats, then agents");
    }

    #[test]
    fn a_finished_run_reads_its_trials_json_and_any_other_its_trial_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut run = run_with_trials();
        assert_eq!(run.status, RunStatus::Finished);
        store.save(&run).unwrap();
        let run_dir = store.run_dir(&run.run_id);
        let sealed: Vec<TrialRecord> = serde_json::from_slice(&fs::read(run_dir.join(TRIALS_FILE)).unwrap()).unwrap();
        assert_eq!(sealed, run.trials);
        // Each trial's file is the same record; without trials.json they are read instead.
        fs::remove_file(run_dir.join(TRIALS_FILE)).unwrap();
        assert_eq!(store.load(&run.run_id).unwrap(), run);
        store.seal(&run).unwrap();
        // A run resumed is no longer finished: its trials.json goes, and its trial files count.
        run.status = RunStatus::Running;
        run.trials.pop();
        store.save_header(&run).unwrap();
        assert!(!run_dir.join(TRIALS_FILE).exists());
        assert_eq!(store.load(&run.run_id).unwrap().trials.len(), 3);
    }

    #[test]
    fn saving_a_trial_writes_its_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut run = run_with_trials();
        let trials = std::mem::take(&mut run.trials);
        store.save_header(&run).unwrap();
        let header = fs::read(store.run_dir(&run.run_id).join(RUN_FILE)).unwrap();
        store.save_trial(&run.run_id, &trials[0]).unwrap();
        assert_eq!(fs::read(store.run_dir(&run.run_id).join(RUN_FILE)).unwrap(), header);
        let file = store.run_dir(&run.run_id).join("trials/expr_calc__oracle__0").join(TRIAL_FILE);
        let saved: TrialRecord = serde_json::from_slice(&fs::read(file).unwrap()).unwrap();
        assert_eq!(saved, trials[0]);
        assert_eq!(store.load(&run.run_id).unwrap().trials, trials[..1]);
    }

    #[test]
    fn a_trial_folder_without_its_record_is_a_trial_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let run = run_with_trials();
        store.save(&run).unwrap();
        // Its logs, and the temp file of a record whose rename never happened.
        let cut = store.run_dir(&run.run_id).join("trials/expr_calc__oracle__1");
        fs::create_dir_all(&cut).unwrap();
        fs::write(cut.join("stdout.log"), "working…").unwrap();
        fs::write(cut.join(".tmpAbC123"), "{\"id\": \"expr_calc/oracle/1\", \"probl").unwrap();
        assert_eq!(store.load(&run.run_id).unwrap(), run);
    }

    #[test]
    fn a_corrupt_trial_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut run = run_with_trials();
        run.status = RunStatus::Interrupted;
        store.save(&run).unwrap();
        let file = store.run_dir(&run.run_id).join("trials/expr_calc__null__0").join(TRIAL_FILE);
        fs::write(&file, "{ not json").unwrap();
        let err = format!("{:#}", store.load(&run.run_id).unwrap_err());
        assert!(err.contains(&file.display().to_string()) && err.contains("not a fixbench trial record"), "{err}");
    }

    #[test]
    fn a_schema_1_record_reads_upgraded_and_saves_as_schema_2() {
        use crate::model::{BuiltinAgent, GradeIsolation, Isolation};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = "20261201-142718-f2dd";
        write_atomic(&store.run_dir(id).join(RUN_FILE), V1_RUN.as_bytes()).unwrap();
        let run = store.load(id).unwrap();
        assert_eq!(run.schema_version, SCHEMA_VERSION);
        let programs: Vec<&AgentProgram> = run.config.agents.iter().map(|a| &a.program).collect();
        assert_eq!(
            programs,
            [&AgentProgram::Builtin(BuiltinAgent::Null), &AgentProgram::Builtin(BuiltinAgent::Oracle)]
        );
        assert_eq!((run.config.isolation, run.config.grade_isolation), (Isolation::None, Some(GradeIsolation::None)));
        assert_eq!(run.trials.len(), 2);
        assert!(run.trials.iter().all(|t| t.command.is_empty() && t.isolation == Isolation::None));
        assert_eq!((run.trials[1].grade.passed, run.trials[1].grade.resolved), (15, true));

        store.save(&run).unwrap();
        assert_eq!(store.load(id).unwrap(), run, "nothing lost rewriting it as schema 2");
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
