//! The runner: plans the trials of a run (agents × problems × repeats), runs each through the
//! pipeline (workdir → agent → grade → telemetry) and saves each trial as it finishes.

pub mod options;
pub mod trial;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use chrono::Utc;

use crate::exec;
use crate::grade::Grade;
use crate::progress::Progress;
use crate::store::{self, RunRecord, RunStatus, TrialRecord};
use crate::telemetry::RunTelemetry;
pub use options::{Plan, RunArgs, RunDir};

/// Runs every trial of `plan` that `plan.record` has not finished, saving each one.
/// `telemetry` may be handed in by a caller that already started it (sweeps).
pub fn execute(plan: &Plan, telemetry: Option<RunTelemetry>) -> Result<RunRecord> {
    exec::become_subreaper();
    let cancel = crate::interrupt::cancel_flag();
    if nothing_to_resume(plan, &plan.record) {
        return Ok(plan.record.clone());
    }
    let grader = plan.grader();
    let pytest_version = grader.check(Some(&plan.store.root.join(".cache")))?;

    let mut run = plan.record.clone();
    let telemetry = match (telemetry, &plan.server_url) {
        (Some(t), _) => Some(t),
        (None, Some(url)) => Some(RunTelemetry::start(url, plan.cache_state)?),
        (None, None) => None,
    };
    if let Some(t) = &telemetry {
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

    // The run's folder is this process's alone while it runs: created exclusively when new,
    // and locked (a second `--resume` of it is refused, naming the holder).
    if plan.run_dir == RunDir::New {
        run.run_id = plan.store.create_run_dir(&run.run_id)?;
    }
    let _lock = plan.store.lock(&run.run_id)?;
    if plan.run_dir == RunDir::Resumed {
        // What a fixbench that held the lock before this one saved.
        let saved = plan.store.load(&run.run_id)?;
        if nothing_to_resume(plan, &saved) {
            return Ok(saved);
        }
        run.trials = saved.trials;
    }

    run.status = RunStatus::Running;
    run.ended_at = None;
    if plan.run_dir == RunDir::Resumed {
        plan.store.save_resumed(&run)?;
    } else {
        plan.store.save_header(&run)?;
    }
    // From here on the run is on disk: any error or panic leaves it `interrupted`, not `running`.
    let mut guard = InterruptOnDrop { store: &plan.store, run_id: run.run_id.clone(), armed: true };
    let run = run_trials(plan, run, telemetry, &grader, &pytest_version, &cancel)?;
    guard.armed = false;
    Ok(run)
}

/// A resumed run that finished already: it is left as it is, `ended_at` included.
fn nothing_to_resume(plan: &Plan, run: &RunRecord) -> bool {
    let finished = plan.run_dir == RunDir::Resumed && run.status == RunStatus::Finished && plan.pending(run).is_empty();
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

fn run_trials(
    plan: &Plan,
    mut run: RunRecord,
    mut telemetry: Option<RunTelemetry>,
    grader: &crate::grade::Grader,
    pytest_version: &str,
    cancel: &AtomicBool,
) -> Result<RunRecord> {
    let base_url = telemetry.as_ref().map(|t| t.base_url()).unwrap_or_default();

    // The starter's outcomes, once per problem: every trial's flips are measured against them.
    let mut starters: BTreeMap<String, Grade> = BTreeMap::new();
    // Each problem folder's hash: grading reads the frozen tests from it, so a change during a
    // trial (an agent outside the sandbox writing into it) voids that trial and stops the run.
    let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
    let todo = plan.pending(&run);
    let mut progress = Progress::new(todo.len(), run.trials.len());
    for key in todo {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let problem = plan.problem(&key.problem);
        if !starters.contains_key(&problem.name) {
            progress.note(&format!("grading the starter of {}", problem.name));
            let g = crate::grade::starter::outcomes(
                grader,
                pytest_version,
                problem,
                &plan.store.root.join(".cache"),
                cancel,
            )?;
            if g.interrupted {
                break;
            }
            // A test file that does not parse, or tests that cannot import the package, collect
            // as fewer tests (one error each) than the suite has: every trial would be wrong.
            let first_error =
                g.tests.iter().find(|t| t.outcome == crate::store::Outcome::Error).and_then(|t| t.message.as_deref());
            problem.check_collected(g.total, g.error.as_deref().or(first_error))?;
            starters.insert(problem.name.clone(), g);
            fingerprints.insert(problem.name.clone(), problem.fingerprint()?);
        }
        progress.start(&key);
        let ctx = trial::Context {
            plan,
            problem,
            starter: &starters[&problem.name],
            grader,
            base_url: &base_url,
            run_dir: plan.store.run_dir(&run.run_id),
            cancel,
        };
        let record: Option<TrialRecord> = trial::run(&ctx, &key, telemetry.as_mut())?;
        match record {
            Some(mut r) => {
                let tampered = problem.fingerprint()? != fingerprints[&problem.name];
                if tampered {
                    let msg = format!(
                        "the problem folder {} changed during this trial, so its grade is void",
                        problem.dir.display()
                    );
                    r.grade.resolved = false;
                    r.error = Some(match r.error.take() {
                        Some(e) => format!("{e}; {msg}"),
                        None => msg,
                    });
                }
                progress.finish(&r);
                plan.store.save_trial(&run.run_id, &r)?;
                run.trials.push(r);
                if tampered {
                    anyhow::bail!(
                        "the problem folder {} changed during trial {} (an agent wrote outside its workdir): \
                         restore it (e.g. `git checkout -- {}`) and run agents with --isolation sandbox",
                        problem.dir.display(),
                        key.id(),
                        problem.dir.display()
                    );
                }
            }
            None => break, // interrupted mid-trial: nothing of it is kept; resume re-runs it
        }
    }
    progress.done();
    run.ended_at = Some(Utc::now());
    run.status = if cancel.load(Ordering::SeqCst) || !plan.pending(&run).is_empty() {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    if run.status == RunStatus::Finished {
        plan.store.seal(&run)?;
    }
    plan.store.save_header(&run)?;
    Ok(run)
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
