//! `fixbench merge`: the runs of one plan's slices (`--shard K/N`, run on other machines and
//! copied here) made one run in the store, which every report then reads like any other.
//!
//! Nothing is coordinated: a run records its whole plan and a hash of what decides its
//! results, so merging only has to check that the runs agree, take each trial once, and say
//! what no run finished.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;

use crate::error::Error;
use crate::store::{
    first_difference, MergeRecord, MergedRun, RunRecord, RunStatus, Store, TrialRecord, RUN_FILE, SCHEMA_VERSION,
};

/// A run to merge: where it lies, and how the user named it.
#[derive(Debug, Clone)]
pub struct Source {
    pub store: Store,
    pub run_id: String,
    pub given: String,
}

impl Source {
    fn dir(&self) -> PathBuf {
        self.store.run_dir(&self.run_id)
    }
}

/// The runs `names` name: each a run folder (holding `run.json`), a folder of run folders
/// (a copied results folder), or a run of `store` (`latest`, a run id). Each run once.
pub fn find(names: &[String], store: &Store) -> Result<Vec<Source>> {
    let mut out: Vec<Source> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        let path = Path::new(name);
        let found: Vec<(PathBuf, String)> = if path.join(RUN_FILE).is_file() {
            vec![split_run_dir(path)?]
        } else if path.is_dir() {
            let runs = runs_under(path)?;
            if runs.is_empty() {
                return Err(Error::BadInput(format!(
                    "{name} is a folder without runs: no folder under it holds a {RUN_FILE}"
                ))
                .into());
            }
            runs
        } else {
            let id = store.resolve(name).map_err(|e| {
                Error::BadInput(format!(
                    "`{name}` is neither a run folder nor a run of {}: {e:#}",
                    store.root.display()
                ))
            })?;
            vec![(store.root.clone(), id)]
        };
        for (root, run_id) in found {
            let key = fs::canonicalize(root.join(&run_id)).unwrap_or_else(|_| root.join(&run_id));
            if seen.insert(key) {
                out.push(Source { store: Store::new(root), run_id, given: name.clone() });
            }
        }
    }
    Ok(out)
}

/// The run folders under `dir`, at any depth (downloaded artifacts nest them:
/// `shards/<artifact>/<run_id>/`), sorted; a run folder's own folders are not searched.
fn runs_under(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut runs = Vec::new();
    let mut it =
        walkdir::WalkDir::new(dir).follow_links(false).min_depth(1).max_depth(8).sort_by_file_name().into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        if !entry.file_type().is_dir() {
            continue;
        }
        if entry.file_name().to_string_lossy().starts_with('.') {
            it.skip_current_dir(); // never a run: a merge being built, a hidden copy
            continue;
        }
        if entry.path().join(RUN_FILE).is_file() {
            runs.push(split_run_dir(entry.path())?);
            it.skip_current_dir();
        }
    }
    Ok(runs)
}

fn split_run_dir(dir: &Path) -> Result<(PathBuf, String)> {
    let dir = std::path::absolute(dir)?;
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    match (dir.parent(), id) {
        (Some(parent), Some(id)) => Ok((parent.to_path_buf(), id)),
        _ => Err(Error::BadInput(format!("{} is not a run folder", dir.display())).into()),
    }
}

/// Reads every source, on all cores, in order; an unreadable run is bad input naming it.
pub fn load(sources: &[Source]) -> Result<Vec<RunRecord>> {
    for src in sources {
        for file in [RUN_FILE, crate::store::TRIALS_FILE] {
            let path = src.dir().join(file);
            if fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
                return Err(Error::BadInput(format!(
                    "{} is not a regular file (a run tampered with?)",
                    path.display()
                ))
                .into());
            }
        }
    }
    let pairs: Vec<(&Store, &str)> = sources.iter().map(|src| (&src.store, src.run_id.as_str())).collect();
    let loaded = crate::report::runs::load_in_parallel(&pairs);
    sources
        .iter()
        .zip(loaded)
        .map(|(src, r)| r.map_err(|e| Error::BadInput(format!("run {}: {e:#}", src.dir().display())).into()))
        .collect()
}

/// A merge, not yet written: the run, and for each of its trials the source it came from.
pub struct Merged {
    pub run: RunRecord,
    origin: Vec<usize>,
}

/// Merges `runs` (read from `sources`, in the same order) into one run named `run_id`. Runs
/// planned otherwise, or one trial with two different records, are bad input naming the
/// difference; trials of the plan that no run finished are an error unless `partial`.
pub fn merge(sources: &[Source], mut runs: Vec<RunRecord>, run_id: String, partial: bool) -> Result<Merged> {
    // Each run's trials are moved out, and then into the merged run: never two copies.
    let lists: Vec<Vec<TrialRecord>> = runs.iter_mut().map(|r| std::mem::take(&mut r.trials)).collect();
    let Some(first) = runs.first() else {
        return Err(Error::BadInput("nothing to merge: name the runs, run folders or results folders".into()).into());
    };
    let name = |i: usize| describe(&sources[i], &runs[i]);
    let plan_of = |i: usize| {
        runs[i].plan.as_ref().ok_or_else(|| {
            Error::BadInput(format!(
                "{} records no plan (it was made by a fixbench from before sharding): only runs that record their plan can be merged",
                name(i)
            ))
        })
    };
    let plan = plan_of(0)?.clone();
    for i in 1..runs.len() {
        let other = plan_of(i)?;
        if other.config_sha256 != plan.config_sha256 {
            let (a, b) = (format!("run {}", runs[0].run_id), format!("run {}", runs[i].run_id));
            let diff =
                first_difference(&plan.decides, &other.decides, (&a, &b)).unwrap_or_else(|| "their plans".into());
            return Err(Error::BadInput(format!(
                "{} and {} were planned differently: {diff}. Merge only the shards of one plan (same problems, agents, repeats, limits, isolation, cache state and server)",
                name(0),
                name(i)
            ))
            .into());
        }
    }

    let planned: std::collections::HashSet<&str> = plan.trials.iter().map(String::as_str).collect();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut trials: Vec<TrialRecord> = Vec::new();
    let mut origin: Vec<usize> = Vec::new();
    let mut per_run = vec![0u32; runs.len()];
    let mut duplicates = 0u32;
    for (i, (run, list)) in runs.iter().zip(lists).enumerate() {
        for mut t in list {
            if !planned.contains(t.id.as_str()) {
                return Err(Error::BadInput(format!(
                    "{}: trial {} is not in the plan it records (a run edited by hand?)",
                    name(i),
                    t.id
                ))
                .into());
            }
            check_paths(&t, &sources[i])?;
            if t.host.is_none() {
                t.host = run.host.hostname.clone();
            }
            match taken.get(&t.id) {
                Some(&at) if trials[at] == t => duplicates += 1,
                Some(&at) => {
                    let j = origin[at];
                    return Err(Error::BadInput(format!(
                        "trial {} has two different results: {} in {} and {} in {}: merge one of them",
                        t.id,
                        outcome(&trials[at]),
                        name(j),
                        outcome(&t),
                        name(i)
                    ))
                    .into());
                }
                None => {
                    taken.insert(t.id.clone(), trials.len());
                    trials.push(t);
                    origin.push(i);
                    per_run[i] += 1;
                }
            }
        }
    }
    let missing: Vec<String> = plan.trials.iter().filter(|id| !taken.contains_key(id.as_str())).cloned().collect();
    if !missing.is_empty() && !partial {
        let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
        let more = if missing.len() > 10 { ", …" } else { "" };
        return Err(Error::BadInput(format!(
            "{} of the plan's {} trials are in none of the {} run(s): {}{more}. Run their shards (or `--resume` them), or pass --partial to merge what there is",
            missing.len(),
            plan.trials.len(),
            runs.len(),
            shown.join(", ")
        ))
        .into());
    }

    // Labels every run agrees on; servers kept per machine, never summed.
    let mut labels = first.labels.clone();
    labels.retain(|k, v| runs.iter().all(|r| r.labels.get(k) == Some(v)));
    let mut servers = Vec::new();
    for r in &runs {
        for s in &r.servers {
            let mut s = s.clone();
            s.host = s.host.or_else(|| r.host.hostname.clone());
            servers.push(s);
        }
    }
    let jobs: Vec<u32> = runs.iter().filter_map(|r| r.config.jobs).collect();
    let mut config = first.config.clone();
    config.jobs = jobs.iter().copied().max();
    let merged_runs = runs
        .iter()
        .zip(&per_run)
        .map(|(r, &n)| MergedRun {
            run_id: r.run_id.clone(),
            shard: r.plan.as_ref().and_then(|p| p.shard),
            host: r.host.clone(),
            started_at: Some(r.started_at),
            ended_at: r.ended_at,
            status: Some(r.status),
            fixbench_version: r.fixbench_version.clone(),
            git_commit: r.git_commit.clone(),
            labels: r.labels.clone(),
            jobs: r.config.jobs,
            trials: n,
        })
        .collect();
    let started_at = runs.iter().map(|r| r.started_at).min().unwrap_or_else(Utc::now);
    let ended_at = runs.iter().filter_map(|r| r.ended_at).max();
    let mut run = RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id,
        started_at,
        ended_at,
        status: RunStatus::Finished,
        fixbench_version: first.fixbench_version.clone(),
        git_commit: first.git_commit.clone(),
        host: first.host.clone(),
        labels,
        config,
        server: first.server.clone(),
        servers,
        plan: Some(crate::store::PlanRecord { shard: None, ..plan }),
        merged: Some(MergeRecord { merged_at: Some(Utc::now()), runs: merged_runs, missing, duplicates }),
        trials: Vec::new(),
    };
    // The trials in the run's order, each with its source.
    let mut order: Vec<usize> = (0..trials.len()).collect();
    {
        let by = crate::store::run_order(&run.config);
        order.sort_by(|&a, &b| by(&trials[a], &trials[b]));
    }
    let mut slots: Vec<Option<TrialRecord>> = trials.into_iter().map(Some).collect();
    run.trials = order.iter().map(|&i| slots[i].take().expect("each trial once")).collect();
    let origin = order.iter().map(|&i| origin[i]).collect();
    Ok(Merged { run, origin })
}

/// Writes a merge into `store`: the whole run is built in a hidden folder beside the others
/// (each trial's folder with its logs, diff and JUnit report, hard links where the filesystem
/// allows; then its records, `trials.json` and the header), and only then put in place. A merge
/// cut short leaves no run and touches no source; a run of the same id that an earlier merge of
/// this plan wrote, even one of the sources, is replaced only once the new one is whole.
pub fn write(store: &Store, merged: &Merged, sources: &[Source]) -> Result<PathBuf> {
    let run = &merged.run;
    let dir = store.run_dir(&run.run_id);
    let root = fs::canonicalize(&store.root).unwrap_or_else(|_| store.root.clone());
    for src in sources {
        if fs::canonicalize(src.dir()).is_ok_and(|d| root.starts_with(&d)) {
            return Err(Error::BadInput(format!(
                "the results folder {} is inside run {}, which is being merged: write the merge elsewhere (--results)",
                store.root.display(),
                src.dir().display()
            ))
            .into());
        }
    }
    replaceable(store, run)?;
    fs::create_dir_all(&store.root).with_context(|| format!("failed to create {}", store.root.display()))?;
    clear_leftovers(&store.root);
    // Named for this host and process, and drawn at random: merges on other machines may share
    // the results folder (and pod pids repeat).
    let name = format!(".merging~{}~{}~{:08x}", build_host(), std::process::id(), rand::random::<u32>());
    let building = Store::new(store.root.join(name));
    let result = build(&building, merged, sources).and_then(|()| put_in_place(store, run, &building));
    let _ = remove_if_there(&building.root);
    result?;
    Ok(dir.join(RUN_FILE))
}

/// Whether run `run.run_id` may be written: free, a folder a run or merge left before its
/// header, or an earlier merge of the same plan (which is then replaced).
fn replaceable(store: &Store, run: &RunRecord) -> Result<()> {
    let dir = store.run_dir(&run.run_id);
    if !dir.exists() || store.is_leftover(&run.run_id) {
        return Ok(());
    }
    let old = store.load_header(&run.run_id).ok();
    let same_plan = old.as_ref().is_some_and(|o| {
        o.merged.is_some() && o.plan.as_ref().map(|p| &p.config_sha256) == run.plan.as_ref().map(|p| &p.config_sha256)
    });
    if same_plan {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "{} exists already and is not a merge of this plan: give another --run-id",
        dir.display()
    ))
    .into())
}

/// Moves the built run to its place in one step: into a free name (never over a folder that
/// appeared meanwhile), or exchanged with the earlier merge it replaces, which is checked again
/// once swapped out (and swapped back if it is not one), then removed.
fn put_in_place(store: &Store, run: &RunRecord, building: &Store) -> Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    let (from, dir) = (building.run_dir(&run.run_id), store.run_dir(&run.run_id));
    let moved = |flags| renameat2(None, &from, None, &dir, flags);
    match moved(RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("failed to put the merged run in {}", dir.display())))
        }
    }
    moved(RenameFlags::RENAME_EXCHANGE)
        .with_context(|| format!("failed to put the merged run in {}", dir.display()))?;
    // `from` now holds what was at `dir`.
    let aside = Store::new(&building.root);
    if replaceable(&aside, run).is_err() {
        let _ = moved(RenameFlags::RENAME_EXCHANGE);
        return Err(Error::BadInput(format!(
            "{} changed while the merge was written and is not a merge of this plan: give another --run-id",
            dir.display()
        ))
        .into());
    }
    remove_if_there(&from)
}

fn remove_if_there(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// This host's name as a build folder holds it (`~` separates the name's parts).
fn build_host() -> String {
    crate::host::hostname().unwrap_or_else(|| "host".into()).replace('~', "-")
}

/// The hidden folders of this host's merges whose process is gone (killed while building).
/// Another host's are never touched: its processes cannot be seen from here.
fn clear_leftovers(root: &Path) {
    let host = build_host();
    for e in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.split('~').collect();
        if let [".merging", h, pid, _] = parts.as_slice() {
            if *h == host && pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The merged run, whole, in `store` (a hidden folder of its own).
fn build(store: &Store, merged: &Merged, sources: &[Source]) -> Result<()> {
    let run = &merged.run;
    let dir = store.run_dir(&run.run_id);
    fs::create_dir_all(dir.join(crate::store::TRIALS_DIR))
        .with_context(|| format!("failed to create {}", dir.display()))?;
    // Each trial's folder, then its record, on a few threads (the work is the filesystem's:
    // links, folders, small files); then `trials.json`, synced, which is what a finished run
    // is read from, and last the header that makes it a run.
    let work: Vec<(&TrialRecord, &usize)> = run.trials.iter().zip(&merged.origin).collect();
    let threads = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = work.len().div_ceil(threads).max(1);
    let dir = &dir;
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<()> {
                    for &(t, &i) in part {
                        copy_trial(&sources[i], &t.paths.dir, &dir.join(&t.paths.dir))?;
                        store.save_trial_unsynced(&run.run_id, t)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("merge writer thread"))
    })?;
    store.seal(run)?;
    store.save_header(run)
}

/// Copies the regular files of the trial folder `rel` of `src` to `to` (hard links when
/// possible), never following a link: a trial folder that is a link, or lies outside its run
/// by one, is refused, and links inside it are left behind, so a run copied from elsewhere
/// cannot make the merge take files from this machine. `to` is new, so nothing is written
/// through an existing file.
fn copy_trial(src: &Source, rel: &str, to: &Path) -> Result<()> {
    let run_dir = src.dir();
    let from = run_dir.join(rel);
    let mut at = run_dir.clone();
    for part in Path::new(rel).components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::BadInput(format!(
                    "{} is a link: a run's trial folders are its own (a run tampered with?)",
                    at.display()
                ))
                .into())
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()), // a record without files
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", at.display())),
        }
    }
    fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    // Folders come before what they hold, so each is made once.
    for entry in walkdir::WalkDir::new(&from).follow_links(false).follow_root_links(false).min_depth(1) {
        let entry = entry.with_context(|| format!("failed to read {}", from.display()))?;
        let rel = entry.path().strip_prefix(&from).expect("under from");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir(&dest).with_context(|| format!("failed to create {}", dest.display()))?;
        } else if entry.file_type().is_file() {
            if rel == Path::new(crate::store::TRIAL_FILE) {
                continue; // written anew, with its host
            }
            link_or_copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// `dest` (which must not exist: nothing is ever written through a file there) as a hard
/// link to `from`, or a copy where the filesystem cannot link.
fn link_or_copy(from: &Path, dest: &Path) -> Result<()> {
    let what = || format!("failed to copy {} to {}", from.display(), dest.display());
    match fs::hard_link(from, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e).with_context(what),
        Err(_) => {
            let mut out = fs::OpenOptions::new().write(true).create_new(true).open(dest).with_context(what)?;
            std::io::copy(&mut fs::File::open(from).with_context(what)?, &mut out).with_context(what)?;
            Ok(())
        }
    }
}

/// A trial's paths must be its own: its folder the one its key names
/// (`trials/<problem>__<agent>__<repeat>`), its files inside it (relative, without `..`).
fn check_paths(t: &TrialRecord, src: &Source) -> Result<()> {
    let p = &t.paths;
    let key = t.key();
    let plain = |name: &str| !name.is_empty() && !name.contains('/') && name != "." && name != "..";
    if t.id != key.id() || !plain(&t.problem) || !plain(&t.agent) {
        return Err(Error::BadInput(format!(
            "{}: a trial record's id `{}` is not its problem/agent/repeat `{}` (a run tampered with?)",
            src.dir().display(),
            t.id,
            key.id()
        ))
        .into());
    }
    let own = Store::trial_dir(&key);
    if p.dir != own {
        return Err(Error::BadInput(format!(
            "{}: trial {}'s `paths.dir` is `{}`, not its own folder `{own}` (a run tampered with?)",
            src.dir().display(),
            t.id,
            p.dir
        ))
        .into());
    }
    for (field, path) in [("stdout", &p.stdout), ("stderr", &p.stderr), ("diff", &p.diff), ("junit", &p.junit)] {
        let inside = Path::new(path).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && Path::new(path).starts_with(&own);
        if !inside {
            return Err(Error::BadInput(format!(
                "{}: trial {}'s `paths.{field}` is `{path}`, outside its folder `{own}`: a trial's files are in its own folder",
                src.dir().display(),
                t.id
            ))
            .into());
        }
    }
    Ok(())
}

/// `run 2026… (shard 2/3, host gpu-2, from shards/shard-2)`.
fn describe(src: &Source, run: &RunRecord) -> String {
    let shard = run.plan.as_ref().and_then(|p| p.shard).map(|s| format!("shard {s}, ")).unwrap_or_default();
    format!("run {} ({shard}host {}, from {})", run.run_id, run.host.hostname.as_deref().unwrap_or("?"), src.given)
}

/// `11/15 passed, started 2026-12-01 10:00:00 UTC`.
fn outcome(t: &TrialRecord) -> String {
    format!(
        "{}/{} passed{}, started {}",
        t.grade.passed,
        t.grade.total,
        if t.grade.resolved { " (resolved)" } else { "" },
        t.started_at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged_run(id: &str, sha: &str) -> RunRecord {
        let mut run = crate::report::synth::run_record(id, Utc::now(), &["a".into()]);
        run.plan = Some(crate::store::PlanRecord {
            config_sha256: sha.into(),
            decides: serde_json::json!({}),
            trials: vec![],
            shard: None,
        });
        run.merged = Some(MergeRecord::default());
        run
    }

    /// What sits at the run's name when the merge is put in place decides: an earlier merge
    /// of the plan is exchanged out and removed; anything else (a run started meanwhile) is
    /// swapped back untouched, and the merge fails.
    #[test]
    fn a_merge_replaces_only_an_earlier_merge_of_its_plan() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("results"));
        let build = |sha: &str| {
            let b = Store::new(tmp.path().join(format!("results/.merging~t~1~{sha}")));
            b.save(&merged_run("m", sha)).unwrap();
            b
        };
        // Free: moved in.
        let b = build("aa");
        put_in_place(&store, &merged_run("m", "aa"), &b).unwrap();
        assert!(store.run_dir("m").join(RUN_FILE).is_file());
        // An earlier merge of the plan: replaced.
        let b = build("aa");
        std::fs::write(store.run_dir("m").join("old-marker"), "old").unwrap();
        put_in_place(&store, &merged_run("m", "aa"), &b).unwrap();
        assert!(!store.run_dir("m").join("old-marker").exists(), "the old merge is gone");
        assert!(!b.run_dir("m").exists());
        // A plain run that took the name meanwhile: kept, and the merge refused.
        std::fs::remove_dir_all(store.run_dir("m")).unwrap();
        let plain = crate::report::synth::run_record("m", Utc::now(), &["a".into()]);
        store.save(&plain).unwrap();
        let b = build("aa");
        let err = put_in_place(&store, &merged_run("m", "aa"), &b).unwrap_err();
        assert!(err.to_string().contains("changed while the merge was written"), "{err}");
        assert_eq!(store.load("m").unwrap().merged, None, "the plain run is back in place");
        assert!(b.run_dir("m").join(RUN_FILE).is_file(), "the built merge is back where it was");
    }
}
