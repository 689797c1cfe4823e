//! The runner: plans the trials of a run (agents × problems × repeats), runs each through the
//! pipeline (workdir → agent → grade → telemetry) and saves the run after every trial.

pub mod options;
pub mod trial;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use anyhow::Result;
use chrono::Utc;

use crate::agent::exec;
use crate::error::Error;
use crate::grade::Grade;
use crate::progress::Progress;
use crate::store::{self, RunRecord, RunStatus, TrialRecord};
use crate::telemetry::RunTelemetry;
pub use options::{Plan, RunArgs};

pub fn command(args: RunArgs) -> Result<i32> {
    let json = args.json;
    let junit = args.junit.clone();
    if args.dry_run {
        let plan = Plan::from_args(args)?;
        trial::print_dry_run(&plan)?;
        return Ok(crate::exit_codes::OK);
    }
    let plan = Plan::from_args(args)?;
    let run = execute(&plan, None)?;
    if let Some(path) = junit {
        crate::report::junit::write_file(&run, &plan.store.run_dir(&run.run_id), &path)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{}", crate::report::table::run_table(&run));
        eprintln!("results: {}", plan.store.run_dir(&run.run_id).join(store::RUN_FILE).display());
    }
    if run.status == RunStatus::Interrupted {
        return Err(Error::Interrupted(format!(
            "finished trials are saved; continue with `fixbench run --resume {}`",
            run.run_id
        ))
        .into());
    }
    Ok(crate::exit_codes::OK)
}

/// Runs every trial of `plan` that `plan.record` has not finished, saving after each one.
/// `telemetry` may be handed in by a caller that already started it (sweeps).
pub fn execute(plan: &Plan, telemetry: Option<RunTelemetry>) -> Result<RunRecord> {
    exec::become_subreaper();
    let cancel = crate::interrupt::cancel_flag();
    let grader = plan.grader();
    let pytest_version = grader.check(Some(&plan.store.root.join(".cache")))?;

    let mut run = plan.record.clone();
    let mut telemetry = match (telemetry, &plan.server_url) {
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
    let base_url = telemetry.as_ref().map(|t| t.base_url()).unwrap_or_default();

    run.status = RunStatus::Running;
    run.ended_at = None;
    plan.store.save(&run)?;

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
            let g = crate::grade::starter::outcomes(&grader, &pytest_version, problem, &plan.store.root.join(".cache"), &cancel)?;
            if g.interrupted {
                break;
            }
            if g.total == 0 {
                return Err(Error::BadInput(format!(
                    "problem `{}`: the starter's tests did not run ({}): check it with `fixbench validate --problem {}`",
                    problem.name,
                    g.error.as_deref().unwrap_or("no tests collected"),
                    problem.name
                ))
                .into());
            }
            starters.insert(problem.name.clone(), g);
            fingerprints.insert(problem.name.clone(), problem.fingerprint()?);
        }
        progress.start(&key);
        let ctx = trial::Context {
            plan,
            problem,
            starter: &starters[&problem.name],
            grader: &grader,
            base_url: &base_url,
            run_dir: plan.store.run_dir(&run.run_id),
            cancel: &cancel,
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
                    r.resolved = false;
                    r.error = Some(match r.error.take() {
                        Some(e) => format!("{e}; {msg}"),
                        None => msg,
                    });
                }
                progress.finish(&r);
                run.trials.push(r);
                plan.store.save(&run)?;
                if tampered {
                    run.status = RunStatus::Interrupted;
                    plan.store.save(&run)?;
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
    plan.store.save(&run)?;
    Ok(run)
}
