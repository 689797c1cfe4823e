//! The runner: plans the trials of a run (agents × problems × repeats), runs each through the
//! pipeline (workdir → agent → grade → telemetry), up to `--jobs` at once over the servers'
//! pool, and saves each trial as it finishes.
//!
//! `options` builds the plan, `schedule` starts trials as servers and jobs allow, `trial` runs
//! one, `pool` tracks the servers' load, `limit` bounds the gradings at once.

mod decides;
mod limit;
pub mod options;
mod pool;
mod schedule;
pub mod trial;

use anyhow::Result;
use chrono::Utc;

use crate::exec;
use crate::model::Jobs;
use crate::store::{self, RunRecord, RunStatus};
use crate::telemetry::RunTelemetry;
pub use options::{check_run_id, Plan, RunArgs, RunDir};

/// Runs every trial of `plan` that `plan.record` has not finished, up to `plan.jobs` at
/// once, saving each one as it finishes.
pub fn execute(plan: &Plan) -> Result<RunRecord> {
    exec::become_subreaper();
    let cancel = crate::interrupt::cancel_flag();
    if nothing_to_resume(plan, &plan.record) {
        return Ok(plan.record.clone());
    }
    let grader = plan.grader();
    let pytest_version = grader.check(Some(&plan.store.root.join(".cache")))?;
    // Every problem's environment is made (or found) before any server or trial starts:
    // nothing is installed during a trial.
    let pending = plan.pending(&plan.record);
    let needed: Vec<&crate::problem::Problem> =
        plan.problems.iter().filter(|p| pending.iter().any(|k| k.problem == p.name)).collect();
    let grader =
        grader.with_environments(&needed, &pytest_version, &crate::grade::cache_root()?, &cancel, &mut |n| {
            eprintln!("{n}")
        })?;

    let mut run = plan.record.clone();
    let servers: Vec<RunTelemetry> = plan
        .servers
        .iter()
        .map(|url| RunTelemetry::start(url, plan.cache_state, plan.server_kind))
        .collect::<Result<_>>()?;
    pool::check_same_model(&servers.iter().map(|t| t.info()).collect::<Vec<_>>())?;
    for t in &servers {
        let info = t.info();
        if t.kind() != crate::model::ServerKind::LlamaServer {
            eprintln!(
                "server {}: {}{} ({})",
                t.url(),
                t.kind(),
                info.version.map(|v| format!(" {v}")).unwrap_or_default(),
                info.kind_evidence.unwrap_or_default()
            );
        }
    }
    if let Some(t) = servers.first() {
        let mut info = t.info();
        info.label = plan.server_label.clone();
        // Labels override what was read from the model file's name.
        for (key, field) in [("model", &mut info.model), ("quant", &mut info.quant)] {
            if let Some(v) = plan.labels().get(key) {
                *field = Some(v.clone());
            }
        }
        if plan.server_flags.is_some() {
            info.flags = plan.server_flags.clone();
        }
        if let Some(old) = &run.server {
            trial::check_fingerprint(old, &info)?;
        }
        run.server = Some(info);
    }
    let slots: usize = servers.iter().map(|t| pool::slots_of(t) as usize).sum();
    let mut jobs = match plan.jobs {
        Jobs::Count(n) => n.get(),
        Jobs::Auto if servers.is_empty() => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Jobs::Auto => slots,
    };
    // Under `cold` or `warm` with trials at once, each trial owns a slot: its cache is then
    // prepared without touching a neighbour's.
    let own_slots = jobs > 1 && plan.cache_state != crate::model::CacheState::Shared && !servers.is_empty();
    if own_slots && jobs > slots {
        eprintln!(
            "--cache-state {}: with trials at once each trial owns one of the pool's {slots} slot(s), so {slots} run at once, not {jobs}",
            plan.cache_state.as_str()
        );
        jobs = slots;
    }
    run.config.jobs = Some(jobs as u32);
    check_plan(plan, &mut run)?;

    // The run's folder is this process's alone while it runs: created exclusively when new,
    // and locked (a second `--resume` of it is refused, naming the holder).
    match plan.run_dir {
        RunDir::New => run.run_id = plan.store.create_run_dir(&run.run_id)?,
        RunDir::Named => plan.store.create_named_run_dir(&run.run_id)?,
        RunDir::Claimed | RunDir::Resumed | RunDir::Continued => {}
    }
    let _lock = plan.store.lock(&run.run_id)?;
    if plan.run_dir.continues() {
        // What a fixbench that held the lock before this one saved.
        let saved = plan.store.load(&run.run_id)?;
        if nothing_to_resume(plan, &saved) {
            return Ok(saved);
        }
        run.trials = saved.trials;
    }

    run.status = RunStatus::Running;
    run.ended_at = None;
    if plan.run_dir.continues() {
        let left = plan.pending(&run).len();
        let own = run.plan.as_ref().map_or(left + run.trials.len(), |p| p.own_trials().count());
        let shard = plan.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
        eprintln!("continuing run {}{shard}: {left} of its {own} trial(s) left, {} kept", run.run_id, run.trials.len());
        plan.store.save_resumed(&run)?;
    } else {
        plan.store.save_header(&run)?;
    }
    // From here on the run is on disk: any error or panic leaves it `interrupted`, not `running`.
    let mut guard = InterruptOnDrop { store: &plan.store, run_id: run.run_id.clone(), armed: true };
    let shared = Shared {
        plan,
        grader: &grader,
        pytest_version: &pytest_version,
        cancel: &cancel,
        servers: &servers,
        jobs,
        own_slots,
    };
    let run = schedule::run_trials(&shared, run)?;
    guard.armed = false;
    Ok(run)
}

/// Records the run's plan (every trial, what decides their results, its shard), now that the
/// server is known. A run continued by `--run-id` must have been planned the same way, server
/// included; one continued by `--resume` keeps its record (or gains one, if it had none).
fn check_plan(plan: &Plan, run: &mut RunRecord) -> Result<()> {
    let now = decides::plan_record(plan, run.server.as_ref())?;
    match &run.plan {
        Some(old) if plan.run_dir == RunDir::Continued && old.config_sha256 != now.config_sha256 => {
            let diff =
                store::first_difference(&old.decides, &now.decides, ("the stored run", "this one")).unwrap_or_default();
            Err(crate::error::Error::BadInput(format!(
                "--run-id {}: the stored run was planned otherwise: {diff}. Continue it with its own server and configuration, or give another --run-id",
                run.run_id
            ))
            .into())
        }
        Some(_) => Ok(()),
        None => {
            run.plan = Some(now);
            Ok(())
        }
    }
}

/// What every trial of a run shares.
pub(crate) struct Shared<'a> {
    pub plan: &'a Plan,
    pub grader: &'a crate::grade::Grader,
    pub pytest_version: &'a str,
    pub cancel: &'a std::sync::atomic::AtomicBool,
    /// The pool's servers, in `plan.servers`' order.
    pub servers: &'a [RunTelemetry],
    /// Agents at once (`--jobs`, `auto` resolved).
    pub jobs: usize,
    /// Each trial owns a slot (pinned), so that `cold`/`warm` touch no neighbour's cache.
    pub own_slots: bool,
}

/// A resumed run that finished already: it is left as it is, `ended_at` included.
fn nothing_to_resume(plan: &Plan, run: &RunRecord) -> bool {
    let finished = plan.run_dir.continues() && run.status == RunStatus::Finished && plan.pending(run).is_empty();
    if finished {
        eprintln!("run {} is finished: nothing to resume", run.run_id);
    }
    finished
}

/// Marks a run saved as `running` as `interrupted` when dropped while armed: the trial loop's
/// errors and panics leave a record that `--resume` continues, with every trial saved so far.
struct InterruptOnDrop<'a> {
    store: &'a store::Store,
    run_id: String,
    armed: bool,
}

impl Drop for InterruptOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The header alone: the trials are in their own files (a schema-1 record, whose
        // trials are in it, is never rewritten here: it was saved as schema 2 first).
        if let Ok(mut run) = self.store.load_header(&self.run_id) {
            if run.status == RunStatus::Running && run.schema_version == store::SCHEMA_VERSION {
                run.status = RunStatus::Interrupted;
                run.ended_at = Some(Utc::now());
                let _ = self.store.save_header(&run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_run(store: &store::Store) -> RunRecord {
        let mut run = crate::report::synth::run_record("20260101-000000-0001", Utc::now(), &["null".into()]);
        run.status = RunStatus::Running;
        run.ended_at = None;
        run.trials.push(crate::report::synth::trial("expr_calc", "null", 0, 11, 15, 11));
        store.save(&run).unwrap();
        run
    }

    #[test]
    fn a_panic_after_the_run_is_saved_leaves_it_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::new(dir.path());
        let run = saved_run(&store);
        let id = run.run_id.clone();
        let result = std::panic::catch_unwind(|| {
            let _guard = InterruptOnDrop { store: &store, run_id: id.clone(), armed: true };
            panic!("a bug in the trial loop");
        });
        assert!(result.is_err());
        let after = store.load(&run.run_id).unwrap();
        assert_eq!(after.status, RunStatus::Interrupted);
        assert!(after.ended_at.is_some());
        assert_eq!(after.trials, run.trials, "the saved trials are kept");
    }

    #[test]
    fn a_disarmed_guard_leaves_the_record_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::new(dir.path());
        let run = saved_run(&store);
        drop(InterruptOnDrop { store: &store, run_id: run.run_id.clone(), armed: false });
        assert_eq!(store.load(&run.run_id).unwrap(), run);
    }
}
