//! One trial: a fresh workdir, the agent, grading against the frozen tests, telemetry, and
//! the record composed of what each of them produced, with its logs and diff under
//! `results/<run_id>/trials/<trial>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::Utc;

use super::limit::Limit;
use super::options::Plan;
use crate::agent::{self, Agent, AgentKind, Vars};
use crate::error::Error;
use crate::exec::{self, ExecOutcome, ExecSpec};
use crate::grade::{self, Grade, Grader};
use crate::model::TrialKey;
use crate::problem::Problem;
use crate::progress::{LineId, Progress};
use crate::store::{AgentRun, OutputStats, ServerInfo, Store, TrialPaths, TrialRecord, TRANSCRIPT_FILE};
use crate::telemetry::{RunTelemetry, TrialContext};
use crate::{diff, workdir};

pub struct Context<'a> {
    pub plan: &'a Plan,
    pub problem: &'a Problem,
    pub starter: &'a Grade,
    pub grader: &'a Grader,
    /// Gradings at once (`--grade-jobs`).
    pub grade_limit: &'a Limit,
    pub run_dir: PathBuf,
    pub cancel: &'a AtomicBool,
    /// The server the trial runs against, when there is one.
    pub telemetry: Option<&'a RunTelemetry>,
    /// Other trials may run at the same time.
    pub overlapping: bool,
    /// The slot the trial owns, when trials own slots.
    pub pinned_slot: Option<u32>,
    pub progress: &'a Progress,
    pub line: LineId,
}

/// The folders of one trial outside the results store, removed when the trial ends.
pub struct Scratch {
    _root: tempfile::TempDir,
    pub workdir: PathBuf,
    pub home: PathBuf,
}

impl Scratch {
    pub fn new(key: &TrialKey) -> Result<Scratch> {
        let root = tempfile::Builder::new().prefix(&format!("fixbench-{}-", key.dir_name())).tempdir()?;
        let workdir = root.path().join("work");
        let home = root.path().join("home");
        std::fs::create_dir_all(&workdir)?;
        std::fs::create_dir_all(&home)?;
        Ok(Scratch { _root: root, workdir, home })
    }

    /// The folder holding `workdir` and `home`: all a sandboxed agent may write.
    pub fn root(&self) -> &Path {
        self._root.path()
    }
}

/// The command, environment and generated files of one agent run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// `argv` with the prompt shown as `{prompt}`, for records and displays.
    pub display: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Files written into the agent's home before it starts (relative path → content).
    pub files: Vec<(String, String)>,
}

pub fn vars(plan: &Plan, problem: &Problem, base_url: &str, workdir: &Path, home: &Path) -> Result<Vars> {
    Ok(Vars {
        prompt: problem.prompt()?,
        prompt_file: workdir.join(crate::problem::PROMPT_FILE).to_string_lossy().into_owned(),
        workdir: workdir.to_string_lossy().into_owned(),
        problem: problem.name.clone(),
        base_url: base_url.to_string(),
        model: plan.model.clone(),
        agent_home: home.to_string_lossy().into_owned(),
    })
}

pub fn invocation(agent: &Agent, vars: &Vars) -> Option<Invocation> {
    let AgentKind::Command { template, .. } = &agent.kind else { return None };
    let mut env: BTreeMap<String, String> =
        agent.env.iter().map(|(k, v)| (k.clone(), agent::expand_word(v, vars, &[]))).collect();
    env.insert("HOME".into(), vars.agent_home.clone());
    env.insert("FIXBENCH_WORKDIR".into(), vars.workdir.clone());
    env.insert("FIXBENCH_PROBLEM".into(), vars.problem.clone());
    env.insert("FIXBENCH_MODEL".into(), vars.model.clone());
    if !vars.base_url.is_empty() {
        env.insert("FIXBENCH_BASE_URL".into(), vars.base_url.clone());
    }
    let files = agent
        .files
        .iter()
        .map(|(path, content)| (agent::expand_word(path, vars, &[]), agent::expand_word(content, vars, &[])))
        .collect();
    Some(Invocation {
        argv: agent::expand(template, vars, &[]),
        display: agent::expand(template, vars, &["prompt"]),
        env,
        files,
    })
}

/// Runs one trial, calling `agent_done` once the agent has ended and its requests are
/// collected (the server and the job are free from then on; grading follows). `Ok(None)`
/// means it was interrupted and nothing of it is kept.
pub fn run(ctx: &Context, key: &TrialKey, agent_done: &mut dyn FnMut()) -> Result<Option<TrialRecord>> {
    let plan = ctx.plan;
    let problem = ctx.problem;
    let agent = plan.agent(&key.agent);
    let started_at = Utc::now();
    let t0 = Instant::now();

    let rel_dir = Store::trial_dir(key);
    let trial_dir = ctx.run_dir.join(&rel_dir);
    if trial_dir.exists() {
        std::fs::remove_dir_all(&trial_dir)?; // left by an interrupted attempt
    }
    std::fs::create_dir_all(&trial_dir)?;
    let mut paths = TrialPaths {
        stdout: format!("{rel_dir}/stdout.log"),
        stderr: format!("{rel_dir}/stderr.log"),
        diff: format!("{rel_dir}/diff.patch"),
        junit: format!("{rel_dir}/junit.xml"),
        transcript: None,
        dir: rel_dir,
    };

    let scratch = Scratch::new(key)?;
    workdir::prepare_trial(problem, &scratch.workdir)?;
    let mut vars = vars(plan, problem, "", &scratch.workdir, &scratch.home)?;
    // The trial's own proxy: its requests are recorded here and nowhere else.
    let probe = match ctx.telemetry {
        Some(t) => Some(t.begin_trial(&TrialContext {
            agent: key.agent.clone(),
            prompt: vars.prompt.clone(),
            overlapping: ctx.overlapping,
            pinned_slot: ctx.pinned_slot,
            transcript: plan.transcript_cap.map(|cap| (trial_dir.join(TRANSCRIPT_FILE), cap)),
        })?),
        None => None,
    };
    if let Some(p) = &probe {
        ctx.progress.watch(ctx.line, p.request_count());
        vars.base_url = p.base_url();
    }
    let mut inv = invocation(agent, &vars);
    // A problem with its own environment: its Python (with the requirements and pytest) comes
    // first on the agent's PATH, shown read-only in the sandbox, so the agent can run the tests.
    if let (Some(inv), Some(env)) = (inv.as_mut(), ctx.grader.environments.get(&problem.name)) {
        if let Some(bin) = env.python.parent() {
            let rest = inv.env.get("PATH").cloned().or_else(|| std::env::var("PATH").ok()).unwrap_or_default();
            inv.env.insert("PATH".into(), format!("{}:{rest}", bin.display()));
            if let Some(root) = bin.parent() {
                inv.env.insert("VIRTUAL_ENV".into(), root.to_string_lossy().into_owned());
            }
        }
    }

    let agent_start = Instant::now();
    let outcome = match (&agent.kind, &plan.sandbox) {
        // In a sandbox the null agent runs `/bin/true` in it, so that the sandbox's cost is
        // part of every trial alike.
        (AgentKind::Null, Some(sb)) => {
            let spec = ExecSpec {
                argv: vec!["/bin/true".into()],
                cwd: scratch.workdir.clone(),
                env: BTreeMap::from([("HOME".to_string(), vars.agent_home.clone())]),
                env_clear: false,
                timeout: Duration::from_secs_f64(plan.timeout_s),
                stdout: ctx.run_dir.join(&paths.stdout),
                stderr: ctx.run_dir.join(&paths.stderr),
                log_cap: plan.log_cap,
                inherit_fd: None,
            };
            sb.run(spec, scratch.root(), ctx.cancel)
        }
        (AgentKind::Null, None) => ExecOutcome { exit_code: Some(0), ..Default::default() },
        // The oracle runs in-process: the reference must stay out of every sandbox.
        (AgentKind::Oracle, _) => {
            put_reference(problem, &scratch.workdir)?;
            ExecOutcome { exit_code: Some(0), ..Default::default() }
        }
        (AgentKind::Command { .. }, _) if agent.preset.as_ref().is_some_and(|p| p.found.is_none()) => {
            ExecOutcome { spawn_error: Some("not installed".into()), ..Default::default() }
        }
        (AgentKind::Command { .. }, sandbox) => {
            let inv = inv.as_ref().expect("command agents have an invocation");
            write_agent_files(&agent.name, &scratch.home, &inv.files)?;
            let spec = ExecSpec {
                argv: inv.argv.clone(),
                cwd: scratch.workdir.clone(),
                env: inv.env.clone(),
                env_clear: false,
                timeout: Duration::from_secs_f64(agent.timeout_s.unwrap_or(plan.timeout_s)),
                stdout: ctx.run_dir.join(&paths.stdout),
                stderr: ctx.run_dir.join(&paths.stderr),
                log_cap: plan.log_cap,
                inherit_fd: None,
            };
            match sandbox {
                Some(sb) => {
                    // A problem's environment, shown read-only: the agent may run the tests in it.
                    let env = ctx.grader.environments.get(&problem.name);
                    let shown: Vec<PathBuf> = env.map(|e| sb.binds_for(&e.python)).unwrap_or_default();
                    sb.run_in(spec, &shown, &[scratch.root().to_path_buf()], ctx.cancel)
                }
                None => exec::run(&spec, ctx.cancel),
            }
        }
    };
    let agent_s = agent_start.elapsed().as_secs_f64();
    let tel = probe.map(|p| p.end());
    if tel.as_ref().is_some_and(|t| t.transcript.is_some()) {
        paths.transcript = Some(format!("{}/{TRANSCRIPT_FILE}", paths.dir));
    }
    agent_done();
    ctx.progress.phase(ctx.line, "grading");
    if outcome.interrupted {
        let _ = std::fs::remove_dir_all(&trial_dir);
        return Ok(None);
    }
    for p in [&paths.stdout, &paths.stderr] {
        let p = ctx.run_dir.join(p);
        if !p.exists() {
            std::fs::write(&p, "")?;
        }
    }

    // Grade only the agent's editable files, in a clean folder of their own.
    let workdir_gone = !scratch.workdir.is_dir();
    let package_gone = !workdir_gone && !problem.layout.any_editable_in(&scratch.workdir);
    let Some(permit) = ctx.grade_limit.acquire(ctx.cancel) else {
        let _ = std::fs::remove_dir_all(&trial_dir);
        return Ok(None);
    };
    let graded = ctx.grader.grade(problem, &scratch.workdir, &ctx.run_dir.join(&paths.junit), ctx.cancel)?;
    drop(permit);
    if graded.interrupted {
        let _ = std::fs::remove_dir_all(&trial_dir);
        return Ok(None);
    }
    let grade = grade::align(ctx.starter, graded);

    let before = problem.starter()?;
    let after = problem.layout.read_editable(&scratch.workdir)?;
    std::fs::write(ctx.run_dir.join(&paths.diff), diff::unified(&before, &after))?;
    let suspicious = grade::suspicious::scan(&before, &after);

    let error = describe_error(&outcome, agent, workdir_gone, package_gone, grade.error.as_deref());
    let usage = crate::agent::presets::usage(agent, &ctx.run_dir.join(&paths.stdout), &scratch.home);
    Ok(Some(TrialRecord {
        id: key.id(),
        problem: key.problem.clone(),
        agent: key.agent.clone(),
        repeat: key.repeat,
        command: inv.map(|i| i.display).unwrap_or_default(),
        agent_version: plan.agent_versions.get(&agent.name).cloned().flatten(),
        isolation: plan.isolation,
        cache_state: plan.cache_state,
        server_label: plan.server_label.clone(),
        started_at,
        host: None,
        grade: grade.into_record(ctx.starter, suspicious),
        agent_run: agent_run(&outcome, agent_s, usage),
        error,
        wall_s: t0.elapsed().as_secs_f64(),
        paths,
        telemetry: tel.unwrap_or_default(),
    }))
}

/// What a trial's record keeps of the agent's run.
fn agent_run(outcome: &ExecOutcome, agent_s: f64, usage: Option<serde_json::Value>) -> AgentRun {
    AgentRun {
        timed_out: outcome.timed_out,
        exit_code: outcome.exit_code,
        agent_started: outcome.spawn_error.is_none(),
        agent_s,
        output: OutputStats {
            stdout_bytes: outcome.stdout.kept,
            stderr_bytes: outcome.stderr.kept,
            stdout_dropped: outcome.stdout.dropped,
            stderr_dropped: outcome.stderr.dropped,
        },
        agent_usage: usage,
    }
}

fn describe_error(
    o: &ExecOutcome,
    agent: &Agent,
    workdir_gone: bool,
    package_gone: bool,
    grade_error: Option<&str>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(e) = &o.spawn_error {
        parts.push(match &agent.preset {
            Some(p) if p.found.is_none() => p.not_installed().unwrap_or_default(),
            Some(p) => format!("{e} (reinstall it: {})", p.install),
            None => e.clone(),
        });
    }
    if o.timed_out {
        parts.push(format!("the agent ran past its time limit after {:.0} s and was killed", o.elapsed.as_secs_f64()));
    } else if let Some(sig) = o.signal {
        parts.push(format!("the agent was killed by signal {sig}"));
    } else if let Some(code) = o.exit_code.filter(|&c| c != 0) {
        parts.push(format!("the agent exited with code {code}"));
    }
    if o.killed_leftovers > 0 {
        parts.push(format!("{} process(es) the agent left behind were killed", o.killed_leftovers));
    }
    if workdir_gone {
        parts.push("the agent deleted its workdir".into());
    } else if package_gone {
        parts.push("the agent deleted the package folder".into());
    }
    if let Some(g) = grade_error {
        parts.push(format!("grading: {g}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The oracle: replaces the workdir's editable files with the reference's (its notes left out).
fn put_reference(problem: &Problem, workdir: &Path) -> Result<()> {
    for e in &problem.layout.editable {
        let p = workdir.join(&e.path);
        let gone = if e.dir { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        gone.or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .with_context(|| format!("failed to clear {}", p.display()))?;
    }
    crate::files::write_files(workdir, &problem.reference()?)
}

fn write_agent_files(agent: &str, home: &Path, files: &[(String, String)]) -> Result<()> {
    for (rel, content) in files {
        // Checked again once filled in: a placeholder's value (`{model}`) may hold `..`.
        if let Err(why) = crate::config::check_relative_path(rel) {
            return Err(Error::BadInput(format!(
                "agent `{agent}`: the generated file `{rel}` {why}: use a path inside the agent's home"
            ))
            .into());
        }
        let p = home.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content).with_context(|| format!("failed to write {}", p.display()))?;
    }
    Ok(())
}

/// `--resume` refuses a run whose server changed underneath it.
pub fn check_fingerprint(old: &ServerInfo, new: &ServerInfo) -> Result<()> {
    let mut changed = Vec::new();
    let mut cmp = |what: &str, a: &Option<String>, b: &Option<String>| {
        if a.is_some() && b.is_some() && a != b {
            changed.push(format!("{what}: {} → {}", a.as_deref().unwrap_or("?"), b.as_deref().unwrap_or("?")));
        }
    };
    cmp("model file", &old.model_path, &new.model_path);
    cmp("model sha256", &old.model_sha256, &new.model_sha256);
    cmp("build", &old.build_info, &new.build_info);
    cmp("chat template", &old.chat_template_sha256, &new.chat_template_sha256);
    let num = |x: Option<u64>| x.map(|v| v.to_string());
    cmp("slots", &num(old.total_slots.map(u64::from)), &num(new.total_slots.map(u64::from)));
    cmp("context per slot", &num(old.n_ctx_per_slot), &num(new.n_ctx_per_slot));
    cmp("server flags", &old.flags.as_ref().map(|f| f.join(" ")), &new.flags.as_ref().map(|f| f.join(" ")));
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "the server changed since this run started, so its trials would not compare: {}. Start a new run instead of --resume",
        changed.join("; ")
    ))
    .into())
}
