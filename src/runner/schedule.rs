//! Starting trials as the jobs and the servers allow: up to `jobs` at once, each on the server
//! with the most free slots, each saved the moment it finishes. A Ctrl-C stops the agents of
//! every trial in flight (they are not kept; `--resume` runs them again), a server that stops
//! answering leaves the pool, and an error in one trial lets the others finish first.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;

use super::limit::Limit;
use super::pool::{Assignment, Pool};
use super::{trial, Shared};
use crate::error::Error;
use crate::grade::Grade;
use crate::model::{CacheState, TrialKey};
use crate::progress::{LineId, Progress};
use crate::store::{RunRecord, RunStatus, TrialRecord};

/// What a trial's thread tells the scheduler.
enum Msg<'k> {
    /// The agent ended: its job and its server's slot are free; grading is still to come.
    AgentDone(Assignment),
    Done(Box<Done<'k>>),
}

/// A trial that ended, as its thread hands it back.
struct Done<'k> {
    key: &'k TrialKey,
    assignment: Assignment,
    line: LineId,
    result: Result<Option<TrialRecord>>,
    /// Whether `AgentDone` was sent (not when the trial stopped before its agent ended).
    released: bool,
}

/// How often the lines of the trials in flight are refreshed.
const TICK: Duration = Duration::from_millis(500);

pub(super) fn run_trials(sh: &Shared, mut run: RunRecord) -> Result<RunRecord> {
    let plan = sh.plan;
    let jobs = sh.jobs;
    let cancel = sh.cancel;
    let todo = plan.pending(&run);
    let progress = Progress::new(todo.len(), run.trials.len());

    // The starter's outcomes, once per problem, before any trial: every trial's flips are
    // measured against them. Each problem folder's hash, too: grading reads the frozen tests
    // from it, so a change during a trial (an agent outside the sandbox writing into it) voids
    // that trial and stops the run.
    let grade_limit = Limit::new(plan.grade_jobs);
    let mut names: Vec<&str> = Vec::new();
    for key in &todo {
        if !names.contains(&key.problem.as_str()) {
            names.push(&key.problem);
        }
    }
    // Graded side by side, as many at once as `--grade-jobs` allows.
    let graded: Vec<Result<Grade>> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let problem = plan.problem(name);
                let (progress, grade_limit) = (&progress, &grade_limit);
                scope.spawn(move || {
                    let Some(_permit) = grade_limit.acquire(cancel) else {
                        return Ok(Grade { interrupted: true, ..Default::default() });
                    };
                    progress.note(&format!("grading the starter of {}", problem.name));
                    let cache = plan.store.root.join(".cache");
                    crate::grade::starter::outcomes(sh.grader, sh.pytest_version, problem, &cache, cancel)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a starter's grading panicked")).collect()
    });
    let mut starters: BTreeMap<String, Grade> = BTreeMap::new();
    let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
    for (name, g) in names.iter().zip(graded) {
        let g = g?;
        if g.interrupted {
            break;
        }
        let problem = plan.problem(name);
        // A test file that does not parse, or tests that cannot import the package, collect
        // as fewer tests (one error each) than the suite has: every trial would be wrong.
        let first_error =
            g.tests.iter().find(|t| t.outcome == crate::store::Outcome::Error).and_then(|t| t.message.as_deref());
        problem.check_collected(g.total, g.error.as_deref().or(first_error))?;
        starters.insert(problem.name.clone(), g);
        fingerprints.insert(problem.name.clone(), problem.fingerprint()?);
    }

    let mut pool = Pool::new(sh.servers, sh.own_slots);
    let run_dir = plan.store.run_dir(&run.run_id);
    let mut failure: Option<anyhow::Error> = None;
    let (tx, rx) = mpsc::channel::<Msg>();
    // `--jobs` bounds the agents running; a trial whose agent ended waits for a grading
    // permit without holding a job, and at most `--grade-jobs` such trials wait. With one job,
    // one trial at a time, grading included: nothing else runs while an agent does (pytest
    // beside it would take CPU from the agent, or from a llama-server on the same machine).
    let most_alive = if jobs == 1 { 1 } else { jobs + plan.grade_jobs };

    std::thread::scope(|scope| {
        let mut queue = todo.iter().filter(|k| starters.contains_key(&k.problem)).peekable();
        let (mut agents, mut alive) = (0usize, 0usize);
        loop {
            let stopping = failure.is_some() || cancel.load(Ordering::SeqCst) || pool.all_dropped();
            while !stopping && agents < jobs && alive < most_alive {
                let Some(&key) = queue.peek() else { break };
                let Some(assignment) = pool.pick() else { break };
                // A server that died between trials gets no new one.
                if let Some(i) = assignment.server.filter(|&i| !sh.servers[i].answers()) {
                    pool.unpick(assignment);
                    leave_pool(&mut pool, &progress, sh, i, "stopped answering /health between trials".into());
                    continue;
                }
                queue.next();
                let telemetry = assignment.server.map(|i| &sh.servers[i]);
                let line = progress.start(key, telemetry.map(|t| t.url()));
                let ctx = trial::Context {
                    plan,
                    problem: plan.problem(&key.problem),
                    starter: &starters[&key.problem],
                    grader: sh.grader,
                    grade_limit: &grade_limit,
                    run_dir: run_dir.clone(),
                    cancel,
                    telemetry,
                    overlapping: jobs > 1,
                    pinned_slot: assignment.slot,
                    progress: &progress,
                    line,
                };
                let tx = tx.clone();
                scope.spawn(move || {
                    let mut released = false;
                    let result = trial::run(&ctx, key, &mut || {
                        if !released {
                            released = true;
                            let _ = tx.send(Msg::AgentDone(assignment));
                        }
                    });
                    let _ = tx.send(Msg::Done(Box::new(Done { key, assignment, line, result, released })));
                });
                agents += 1;
                alive += 1;
            }
            if alive == 0 {
                break;
            }
            let done = match rx.recv_timeout(TICK) {
                Ok(Msg::Done(done)) => *done,
                Ok(Msg::AgentDone(a)) => {
                    agents -= 1;
                    pool.release(a);
                    continue;
                }
                Err(_) => {
                    progress.tick();
                    continue;
                }
            };
            alive -= 1;
            if !done.released {
                agents -= 1;
                pool.release(done.assignment);
            }
            let record = match done.result {
                Ok(Some(r)) => r,
                Ok(None) => {
                    // Interrupted mid-trial: nothing of it is kept; resume runs it again.
                    progress.abandon(done.line);
                    continue;
                }
                Err(e) => {
                    progress.abandon(done.line);
                    failure.get_or_insert(e.context(format!("trial {}", done.key.id())));
                    continue;
                }
            };
            let problem = plan.problem(&done.key.problem);
            let mut r = record;
            let tampered = match problem.fingerprint() {
                Ok(now) => now != fingerprints[&problem.name],
                Err(e) => {
                    failure.get_or_insert(e);
                    true
                }
            };
            // A sandboxed agent sees the environment read-only: only one run without the
            // sandbox can have written into it.
            let env_changed = plan.sandbox.is_none()
                && match sh.grader.environment_changed(problem) {
                    Ok(changed) => changed,
                    Err(e) => {
                        failure.get_or_insert(e);
                        true
                    }
                };
            let changed = if tampered {
                Some((
                    format!(
                        "the problem folder {} changed during this trial, so its grade is void",
                        problem.dir.display()
                    ),
                    anyhow::anyhow!(
                        "the problem folder {} changed during trial {} (an agent wrote outside its workdir): \
                         restore it (e.g. `git checkout -- {}`) and run agents with --isolation sandbox",
                        problem.dir.display(),
                        done.key.id(),
                        problem.dir.display()
                    ),
                ))
            } else if env_changed {
                Some((
                    format!(
                        "the environment of problem `{}` changed during this trial (an agent outside the sandbox wrote into it), so its grade is void",
                        problem.name
                    ),
                    anyhow::anyhow!(
                        "the environment of problem `{}` changed during trial {} (an agent outside the sandbox wrote into it): \
                         the next run makes it again; run agents with --isolation sandbox",
                        problem.name,
                        done.key.id()
                    ),
                ))
            } else {
                None
            };
            if let Some((msg, stop)) = changed {
                r.grade.resolved = false;
                r.error = Some(match r.error.take() {
                    Some(e) => format!("{e}; {msg}"),
                    None => msg,
                });
                failure.get_or_insert(stop);
            }
            progress.finish(done.line, &r);
            if let Err(e) = plan.store.save_trial(&run.run_id, &r) {
                failure.get_or_insert(e);
            }
            run.trials.push(r);
            // A server that stopped answering leaves the pool; its trials in flight keep
            // their grades, their telemetry marked missing.
            if let Some(i) = done.assignment.server {
                if !pool.is_dropped(i) && !sh.servers[i].answers() {
                    let why = format!("stopped answering /health during trial {}", done.key.id());
                    leave_pool(&mut pool, &progress, sh, i, why);
                }
            }
        }
    });
    progress.done();

    // The order the store reads them in (docs/results.md): as they started, then as planned.
    let config = run.config.clone();
    run.trials.sort_by(crate::store::run_order(&config));
    run.servers = pool.uses(sh.servers);
    super::pool::note_unaccounted(&mut run.servers, &run.trials, plan.cache_state == CacheState::Warm);
    run.ended_at = Some(Utc::now());
    let cancelled = cancel.load(Ordering::SeqCst);
    run.status = if cancelled || failure.is_some() || !plan.pending(&run).is_empty() {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    if failure.is_none() && !cancelled && pool.all_dropped() && !plan.pending(&run).is_empty() {
        failure = Some(
            Error::Environment(format!(
                "every server of the pool stopped answering, with {} trial(s) left: the finished ones are saved; \
                 restart the servers and continue with `fixbench run --resume {}`",
                plan.pending(&run).len(),
                run.run_id
            ))
            .into(),
        );
    }
    if run.status == RunStatus::Finished {
        plan.store.seal(&run)?;
    }
    plan.store.save_header(&run)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(run),
    }
}

/// Takes server `i` out of the pool, saying so.
fn leave_pool(pool: &mut Pool, progress: &Progress, sh: &Shared, i: usize, why: String) {
    progress.note(&format!("server {} {why}: the run goes on without it", sh.servers[i].url()));
    pool.drop_server(i, why);
}
