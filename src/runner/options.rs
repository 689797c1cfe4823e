//! `fixbench run`'s flags and the validated plan built from flags, environment and
//! `harness.toml` (in that priority), or from a stored run when resuming.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;

use crate::agent::{self, Agent};
use crate::config::{check_timeout, first_repeated, split_command};
use crate::error::Error;
use crate::grade::{self, Grader};
use crate::model::{CacheState, GradeIsolation, Isolation, TrialKey};
use crate::problem::{self, Problem};
use crate::sandbox::{self, Sandbox};
use crate::settings::{defaults, help_with_default, Settings, Sources};
use crate::store::{RunConfig, RunRecord, RunStatus, Store, TrialRecord, SCHEMA_VERSION};

#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct RunArgs {
    /// An agent from harness.toml, a preset, or a built-in (`null`, `oracle`). Repeatable.
    #[arg(long = "agent", value_name = "NAME")]
    pub agents: Vec<String>,
    /// An ad-hoc agent command template (placeholders: {prompt} {prompt_file} {workdir}
    /// {problem} {base_url} {model} {agent_home}). Repeatable; named cmd, cmd2, ….
    #[arg(long = "cmd", value_name = "TEMPLATE")]
    pub cmds: Vec<String>,
    /// A problem to run (default: all). Repeatable.
    #[arg(long = "problem", value_name = "NAME")]
    pub problems: Vec<String>,
    #[arg(long, value_name = "DIR", help = help_with_default("The folder holding the problems", defaults::PROBLEMS_DIR))]
    pub problems_dir: Option<PathBuf>,
    #[arg(long, value_name = "N", help = help_with_default("Trials per agent × problem", defaults::REPEAT))]
    pub repeat: Option<u32>,
    #[arg(long, value_name = "SECS", help = help_with_default("Time limit of one agent run, in seconds", defaults::AGENT_TIMEOUT_S))]
    pub timeout: Option<f64>,
    /// A label stored with the run, e.g. `--label flags=-np1`. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    #[arg(long, env = "FIXBENCH_RESULTS", value_name = "DIR", help = help_with_default("Where runs are stored", defaults::RESULTS_DIR))]
    pub results: Option<PathBuf>,
    /// Print the run record as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run only the trials of this stored run that have not finished.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "run_id")]
    pub resume: Option<String>,
    /// Run only slice K of N of the plan (1-based), e.g. one CI matrix job's share: a trial's
    /// slice is a hash of its problem, agent and repeat. `fixbench merge` joins the slices' runs
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::model::Shard>,
    /// The run's id (letters, digits, `.`, `_`, `-`). When the results folder holds that run
    /// already, it is continued (only its unfinished trials run), provided these flags plan the
    /// same run: a re-run of a crashed shard picks up where it stopped
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub run_id: Option<String>,
    #[arg(long, env = "FIXBENCH_PYTHON", value_name = "PATH", help = help_with_default("The Python (with pytest) used for grading", defaults::VENV_PYTHON))]
    pub python: Option<PathBuf>,
    /// The harness config file [default: ./harness.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A llama-server to measure, e.g. http://127.0.0.1:8080 (agents reach it through
    /// fixbench's recording proxy). Repeatable: servers of one model share the trials, each
    /// trial going to the one with the most free slots
    #[arg(long = "server", env = "FIXBENCH_SERVER", value_name = "URL", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// What kind of server it is [default: detected from what it answers]. `other` reads
    /// only what any OpenAI-compatible answer says (its `usage`, its stream's arrival times),
    /// whatever the server is. The API key, when it wants one, comes from FIXBENCH_API_KEY
    /// (or LLAMA_API_KEY) and is never stored
    #[arg(long, value_enum, value_name = "KIND")]
    pub server_kind: Option<crate::model::ServerKind>,
    #[arg(short = 'j', long, allow_hyphen_values = true, value_name = "N|auto", help = help_with_default("Trials at once, or `auto` (the servers' total slots, else the cores); above 1 a trial's timings include its neighbours' load", defaults::JOBS))]
    pub jobs: Option<crate::model::Jobs>,
    #[arg(long, value_name = "N", help = help_with_default("Gradings (pytest processes) at once", defaults::GRADE_JOBS))]
    pub grade_jobs: Option<usize>,
    /// How the prompt cache is prepared before each trial [default: shared]
    #[arg(long, value_enum)]
    pub cache_state: Option<CacheState>,
    /// Run agents in a bubblewrap sandbox, or not at all isolated
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// How pytest is contained while it grades the agent's package [default: sandbox].
    /// `none` runs the agent's code as you, able to read the answers and rewrite results:
    /// only for agents you trust
    #[arg(long, value_enum, value_name = "ISOLATION")]
    pub grade_isolation: Option<GradeIsolation>,
    #[arg(long, value_name = "SECS", help = help_with_default("Time limit of one grading (pytest on the frozen tests), in seconds", defaults::GRADE_TIMEOUT_S))]
    pub grade_timeout: Option<f64>,
    /// Also write the run as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the run as one self-contained HTML report to FILE when it ends (matrix,
    /// trials with diffs and transcripts, history; `fixbench report`); a sweep's report
    /// compares its configurations
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print each trial's exact command, environment and generated config files; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not record the trials' conversations (`transcript.jsonl`: each request's new
    /// messages and the answer, capped per trial by `run.transcript_cap_mib`, 20 MiB)
    #[arg(long)]
    pub no_transcript: bool,
    #[arg(long, value_name = "NAME", help = help_with_default("The model name agents are told to use ({model})", defaults::MODEL))]
    pub model: Option<String>,
}

impl RunArgs {
    /// The flags that choose the folders, the Python and the harness file.
    pub fn sources(&self) -> Sources {
        Sources {
            config: self.config.clone(),
            results: self.results.clone(),
            problems_dir: self.problems_dir.clone(),
            python: self.python.clone(),
        }
    }

    /// No flags at all: every value from harness.toml or the defaults.
    pub fn empty() -> RunArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            run: RunArgs,
        }
        Only::parse_from(["fixbench"]).run
    }
}

/// Whose the run's folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDir {
    /// A new run: its folder is created, exclusively, when it starts.
    New,
    /// A new run whose folder [`Plan::claim_run_dir`] has created.
    Claimed,
    /// `--resume`: the stored run's folder.
    Resumed,
    /// `--run-id ID` naming a new run: its folder is created with exactly that name.
    Named,
    /// `--run-id ID` naming a stored run planned the same way: it is continued.
    Continued,
}

impl RunDir {
    /// A stored run continues: `--resume`, or `--run-id` of a stored run.
    pub fn continues(self) -> bool {
        matches!(self, RunDir::Resumed | RunDir::Continued)
    }
}

/// Everything a run needs, validated once.
#[derive(Debug, Clone)]
pub struct Plan {
    pub store: Store,
    /// The record the run starts from: new, or loaded for `--resume`.
    pub record: RunRecord,
    pub run_dir: RunDir,
    pub problems: Vec<Problem>,
    pub agents: Vec<Agent>,
    pub repeat: u32,
    /// The slice of the plan this run runs (`--shard`); `None`: all of it.
    pub shard: Option<crate::model::Shard>,
    pub timeout_s: f64,
    pub python: PathBuf,
    /// The servers of the run's pool (empty: no server).
    pub servers: Vec<String>,
    /// The servers' kind as named with `--server-kind`; `None`: detected.
    pub server_kind: Option<crate::model::ServerKind>,
    pub server_label: Option<String>,
    /// Trials at once, as asked (`auto` is resolved when the servers are known).
    pub jobs: crate::model::Jobs,
    /// Gradings at once.
    pub grade_jobs: usize,
    /// The server's flags when fixbench started it (sweeps), for the fingerprint.
    pub server_flags: Option<Vec<String>>,
    pub cache_state: CacheState,
    pub isolation: Isolation,
    /// The agent sandbox, checked to work (None under `--isolation none`).
    pub sandbox: Option<Sandbox>,
    /// pytest's sandbox, checked to work (None under `--grade-isolation none`).
    pub grade_sandbox: Option<Sandbox>,
    pub grade_timeout_s: f64,
    pub model: String,
    pub log_cap: u64,
    /// The cap on each trial's transcript in bytes; `None`: none recorded.
    pub transcript_cap: Option<u64>,
    /// Each agent's version, probed once per run (None: no probe, or it failed).
    pub agent_versions: BTreeMap<String, Option<String>>,
}

impl Plan {
    /// The plan of `args` under `settings` (built from the same flags, once per command).
    pub fn new(args: RunArgs, settings: &Settings) -> Result<Plan> {
        let harness = &settings.harness;
        let d = &harness.file.run;
        let store = settings.store();
        if let Some(id) = &args.resume {
            return Self::resume(args.clone(), store, settings, id);
        }
        let problems_dir = settings.problems_dir.clone();
        if let Some(twice) = first_repeated(&args.problems) {
            return Err(Error::BadInput(format!(
                "problem `{twice}` is named twice: name each problem once (use --repeat for more trials)"
            ))
            .into());
        }
        let names =
            if args.problems.is_empty() { d.problems.clone().unwrap_or_default() } else { args.problems.clone() };
        let problems = problem::select(&problems_dir, &names)?;

        let mut agents = Vec::new();
        let agent_names = if args.agents.is_empty() && args.cmds.is_empty() {
            d.agents.clone().unwrap_or_else(|| defaults::AGENTS.iter().map(|a| a.to_string()).collect())
        } else {
            args.agents.clone()
        };
        for name in &agent_names {
            agents.push(agent::resolve(name, harness)?);
        }
        for (i, line) in args.cmds.iter().enumerate() {
            let name = if i == 0 { "cmd".to_string() } else { format!("cmd{}", i + 1) };
            agents.push(cmd_agent(&name, line)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &agents {
            if !seen.insert(&a.name) {
                return Err(Error::BadInput(format!("agent `{}` is named twice: name each agent once", a.name)).into());
            }
        }

        let repeat = args.repeat.or(d.repeat).unwrap_or(defaults::REPEAT);
        if repeat == 0 {
            return Err(Error::BadInput("--repeat must be at least 1".into()).into());
        }
        let timeout_s = settings.agent_timeout(args.timeout)?;
        let python = settings.python.clone();
        let servers = pool_urls(&settings.servers(&args.servers)?)?;
        let jobs = settings.jobs(args.jobs);
        let grade_jobs = settings.grade_jobs(args.grade_jobs)?;
        let cache_state = settings.cache_state(args.cache_state)?;
        let isolation = settings.isolation(args.isolation)?;
        let sandbox = sandbox::for_harness(isolation, &problems_dir, &store.root, harness, !args.dry_run)?;
        let grade_isolation = settings.grade_isolation(args.grade_isolation)?;
        let grade_sandbox = grade::sandbox_for(grade_isolation, &problems_dir, &store.root, harness, !args.dry_run)?;
        let grade_timeout_s = settings.grade_timeout(args.grade_timeout)?;
        let mut labels = d.labels.clone();
        for l in &args.labels {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| Error::BadInput(format!("--label `{l}` has no `=`: write it as KEY=VALUE")))?;
            labels.insert(k.trim().to_string(), v.trim().to_string());
        }
        let now = Utc::now();
        if let Some(id) = &args.run_id {
            check_run_id(id)?;
        }
        // Stored absolute, so that --resume from another folder finds them.
        let config = RunConfig {
            problems_dir: std::path::absolute(&problems_dir)?.to_string_lossy().into_owned(),
            problems: problems.iter().map(|p| p.name.clone()).collect(),
            agents: agents.iter().map(|a| a.to_config(timeout_s)).collect(),
            repeat,
            timeout_s,
            python: if python.components().count() > 1 { std::path::absolute(&python)? } else { python.clone() }
                .to_string_lossy()
                .into_owned(),
            isolation,
            grade_isolation: Some(grade_isolation),
            grade_timeout_s: Some(grade_timeout_s),
            cache_state,
            server_url: servers.first().cloned(),
            server_label: None,
            model: args.model.clone(),
            servers: if servers.len() > 1 { servers.clone() } else { vec![] },
            jobs: None,
        };
        let record = RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: args.run_id.clone().unwrap_or_else(|| crate::store::new_run_id(now)),
            started_at: now,
            ended_at: None,
            status: RunStatus::Running,
            fixbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: crate::host::git_commit(),
            host: crate::host::describe(),
            labels,
            config,
            server: None,
            servers: vec![],
            plan: None,
            merged: None,
            trials: vec![],
        };
        let plan = Plan {
            store,
            record,
            run_dir: if args.run_id.is_some() { RunDir::Named } else { RunDir::New },
            problems,
            agents,
            repeat,
            shard: args.shard,
            timeout_s,
            python,
            servers,
            server_kind: args.server_kind,
            server_label: None,
            jobs,
            grade_jobs,
            server_flags: None,
            cache_state,
            isolation,
            sandbox,
            grade_sandbox,
            grade_timeout_s,
            model: args.model.unwrap_or_else(|| defaults::MODEL.into()),
            log_cap: crate::exec::DEFAULT_LOG_CAP,
            transcript_cap: settings.transcript_cap(args.no_transcript)?,
            agent_versions: BTreeMap::new(),
        }
        .with_versions();
        plan.continue_named()
    }

    /// A plan whose `--run-id` names a stored run: that run, continued, when these flags plan
    /// it the same way (the server is compared when it is known, as the run starts); a
    /// bad-input error naming the first difference otherwise.
    fn continue_named(mut self) -> Result<Plan> {
        let id = self.record.run_id.clone();
        if self.run_dir != RunDir::Named || !self.store.run_dir(&id).join(crate::store::RUN_FILE).is_file() {
            return Ok(self);
        }
        let stored = crate::report::runs::load_one(&self.store, &id)?;
        let file = self.store.run_dir(&id).join(crate::store::RUN_FILE);
        refuse_merged(&stored, "--run-id")?;
        let Some(old) = &stored.plan else {
            return Err(Error::BadInput(format!(
                "--run-id {id}: {} was made by a fixbench that did not record its plan, so it cannot be continued by id: use `--resume {id}`, or another --run-id",
                file.display()
            ))
            .into());
        };
        if old.shard != self.shard {
            let name =
                |s: Option<crate::model::Shard>| s.map_or("the whole plan".to_string(), |s| format!("shard {s}"));
            return Err(Error::BadInput(format!(
                "--run-id {id}: that run ran {}, these flags ask for {}: give the run's own --shard, or another --run-id",
                name(old.shard),
                name(self.shard)
            ))
            .into());
        }
        let new = super::decides::plan_record(&self, stored.server.as_ref())?;
        // The server is compared as the run starts, once it has answered.
        let without_server = |v: &serde_json::Value| {
            let mut v = v.clone();
            v.as_object_mut().map(|o| o.remove("server"));
            v
        };
        if let Some(diff) = crate::store::first_difference(
            &without_server(&old.decides),
            &without_server(&new.decides),
            ("the stored run", "these flags"),
        ) {
            return Err(Error::BadInput(format!(
                "--run-id {id}: these flags plan another run than {}: {diff}. Give the run's own configuration to continue it, or another --run-id",
                file.display()
            ))
            .into());
        }
        if self.record.labels != stored.labels {
            let show = |l: &BTreeMap<String, String>| {
                let v: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(" ")
                }
            };
            return Err(Error::BadInput(format!(
                "--run-id {id}: the stored run's labels are {}, these flags' are {}: give the run's own labels to continue it, or another --run-id",
                show(&stored.labels),
                show(&self.record.labels)
            ))
            .into());
        }
        let config = self.record.config.clone();
        self.record = stored;
        // Where things are on this machine (problems, Python) is this command's to say.
        self.record.config = RunConfig { jobs: self.record.config.jobs, ..config };
        self.run_dir = RunDir::Continued;
        Ok(self)
    }

    /// Rebuilds the plan of a stored run; only the trials it lacks will run.
    fn resume(args: RunArgs, store: Store, settings: &Settings, id: &str) -> Result<Plan> {
        let harness = &settings.harness;
        // An unknown, corrupt or too-new run is bad input, as for `show`.
        let record = crate::report::runs::load_one(&store, id)?;
        let id = record.run_id.clone();
        refuse_merged(&record, "--resume")?;
        let ignored: Vec<&str> = [
            (!args.agents.is_empty() || !args.cmds.is_empty(), "--agent/--cmd"),
            (!args.problems.is_empty(), "--problem"),
            (args.repeat.is_some(), "--repeat"),
            (args.shard.is_some_and(|s| Some(s) != record.plan.as_ref().and_then(|p| p.shard)), "--shard"),
            (args.timeout.is_some(), "--timeout"),
            (!args.labels.is_empty(), "--label"),
            // What a trial is: how the agent is isolated and what the cache holds when it starts.
            (args.isolation.is_some_and(|i| i != record.config.isolation), "--isolation"),
            (args.cache_state.is_some_and(|c| c != record.config.cache_state), "--cache-state"),
            // A run without a server does not gain one halfway (its trials would not compare).
            (!args.servers.is_empty() && record.config.server_url.is_none(), "--server (the run had no server)"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        if !ignored.is_empty() {
            return Err(Error::BadInput(format!(
                "--resume continues run {id} with its own configuration: drop {}",
                ignored.join(", ")
            ))
            .into());
        }
        let c = &record.config;
        let file = store.run_dir(&id).join(crate::store::RUN_FILE);
        check_timeout(c.timeout_s, &format!("{}: `config.timeout_s`", file.display()))?;
        for a in &c.agents {
            check_timeout(a.timeout_s, &format!("{}: agent `{}`'s `timeout_s`", file.display(), a.name))?;
        }
        // Records before paths were stored absolute hold them relative to where the run began.
        let problems_dir = args.problems_dir.clone().unwrap_or_else(|| PathBuf::from(&c.problems_dir));
        let problems = problem::select(&problems_dir, &c.problems)?;
        let agents: Vec<Agent> = c
            .agents
            .iter()
            .map(|a| {
                // A preset or harness agent keeps its generated files and version probe.
                match agent::resolve(&a.name, harness) {
                    Ok(found) if found.program() == a.program => Ok(found),
                    _ => Ok(Agent::from_config(a)),
                }
            })
            .collect::<Result<_>>()?;
        let python = args.python.clone().unwrap_or_else(|| PathBuf::from(&c.python));
        let isolation = c.isolation;
        let sandbox = sandbox::for_harness(isolation, &problems_dir, &store.root, harness, !args.dry_run)?;
        // A run stored before grading was contained resumes contained; a flag may change it.
        let grade_isolation = args.grade_isolation.or(c.grade_isolation).unwrap_or(GradeIsolation::Sandbox);
        let grade_sandbox = grade::sandbox_for(grade_isolation, &problems_dir, &store.root, harness, !args.dry_run)?;
        let grade_timeout_s = settings.grade_timeout(args.grade_timeout.or(c.grade_timeout_s))?;
        Ok(Plan {
            store,
            problems,
            agents,
            repeat: c.repeat,
            shard: record.plan.as_ref().and_then(|p| p.shard),
            timeout_s: c.timeout_s,
            python,
            servers: if !args.servers.is_empty() {
                pool_urls(&args.servers)?
            } else if !c.servers.is_empty() {
                c.servers.clone()
            } else {
                c.server_url.iter().cloned().collect()
            },
            server_kind: args.server_kind,
            server_label: c.server_label.clone(),
            // How many at once is no part of what a trial is: a flag may change it.
            jobs: args
                .jobs
                .or_else(|| c.jobs.and_then(|n| std::num::NonZeroUsize::new(n as usize)).map(crate::model::Jobs::Count))
                .unwrap_or_default(),
            grade_jobs: settings.grade_jobs(args.grade_jobs)?,
            server_flags: None,
            cache_state: c.cache_state,
            isolation,
            sandbox,
            grade_sandbox,
            grade_timeout_s,
            model: c.model.clone().unwrap_or_else(|| defaults::MODEL.into()),
            log_cap: crate::exec::DEFAULT_LOG_CAP,
            transcript_cap: settings.transcript_cap(args.no_transcript)?,
            agent_versions: BTreeMap::new(),
            record,
            run_dir: RunDir::Resumed,
        }
        .with_versions())
    }

    /// Every trial of the whole plan, whatever the shard: repeats outermost, agents
    /// innermost, so that drift over a long run affects every agent alike.
    pub fn planned(&self) -> Vec<TrialKey> {
        let mut keys = Vec::new();
        for repeat in 0..self.repeat {
            for p in &self.problems {
                for a in &self.agents {
                    keys.push(TrialKey { problem: p.name.clone(), agent: a.name.clone(), repeat });
                }
            }
        }
        keys
    }

    /// Every trial of this run's slice of the plan not yet in `run`, in plan order.
    pub fn pending(&self, run: &RunRecord) -> Vec<TrialKey> {
        let done: std::collections::BTreeSet<String> = run.trials.iter().map(|t: &TrialRecord| t.id.clone()).collect();
        self.planned()
            .into_iter()
            .filter(|k| {
                let id = k.id();
                self.shard.map_or(true, |s| s.holds(&id)) && !done.contains(&id)
            })
            .collect()
    }

    fn with_versions(mut self) -> Plan {
        for a in &self.agents {
            if let crate::agent::AgentKind::Command { version: Some(_), .. } = &a.kind {
                // In a throwaway home (agents write caches on any start), and in the run's
                // sandbox: a dry run, whose sandbox is not started, asks no agent.
                let v = match &self.sandbox {
                    Some(sb) if !sb.is_checked() => None,
                    sb => a.probe_version(Duration::from_secs(30), sb.as_ref()),
                };
                self.agent_versions.insert(a.name.clone(), v);
            }
        }
        self
    }

    /// Creates a new run's folder, exclusively (another id is drawn when its id is taken),
    /// for a caller that writes into it before [`super::execute`] (a sweep's server log).
    pub fn claim_run_dir(&mut self) -> Result<()> {
        if self.run_dir == RunDir::New {
            self.record.run_id = self.store.create_run_dir(&self.record.run_id)?;
            self.run_dir = RunDir::Claimed;
        }
        Ok(())
    }

    pub fn problem(&self, name: &str) -> &Problem {
        self.problems.iter().find(|p| p.name == name).expect("planned problem")
    }

    pub fn agent(&self, name: &str) -> &Agent {
        self.agents.iter().find(|a| a.name == name).expect("planned agent")
    }

    pub fn grader(&self) -> Grader {
        Grader::new(self.python.clone(), Duration::from_secs_f64(self.grade_timeout_s), self.grade_sandbox.clone())
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.record.labels
    }
}

/// A merged run is remade from its shards, never continued: what it lacks would run here,
/// and its record of what is missing would go stale.
fn refuse_merged(run: &RunRecord, flag: &str) -> Result<()> {
    match &run.merged {
        None => Ok(()),
        Some(m) if m.missing.is_empty() => Err(Error::BadInput(format!(
            "{flag} {}: that run was made by `fixbench merge` and is whole: merge again to remake it, or give another --run-id",
            run.run_id
        ))
        .into()),
        Some(m) => Err(Error::BadInput(format!(
            "{flag} {}: that run was made by `fixbench merge` ({} missing trial(s)): run its missing shards (or continue them with their own --run-id) and merge again",
            run.run_id,
            m.missing.len()
        ))
        .into()),
    }
}

/// A run id given with `--run-id`: a folder name of letters, digits, `.`, `_` and `-`.
pub fn check_run_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && !id.starts_with(['.', '-'])
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(Error::BadInput(format!(
            "--run-id `{id}`: a run id is a folder name of letters, digits, `.`, `_` and `-`, not starting with `.` or `-`"
        ))
        .into());
    }
    // The store's own folders, and the names that mean "the newest runs".
    if [crate::report::baseline::BASELINES_DIR, "sweeps"].contains(&id) || id.starts_with("latest") {
        return Err(Error::BadInput(format!(
            "--run-id `{id}`: `baselines`, `sweeps` and names starting with `latest` are taken (`latest`, `latest~N` name the newest runs): choose another"
        ))
        .into());
    }
    Ok(())
}

/// The pool's servers, checked: each a usable URL, and each server once, however spelled
/// (`http://127.0.0.1:8080/` and `http://localhost:8080/v1` are one server, whose slots would
/// be counted twice).
fn pool_urls(urls: &[String]) -> Result<Vec<String>> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for u in urls {
        let root = crate::telemetry::client::root_url(u)?;
        let key = root.replacen("://localhost", "://127.0.0.1", 1).replacen("://[::1]", "://127.0.0.1", 1);
        if let Some(first) = seen.insert(key, u) {
            return Err(Error::BadInput(format!(
                "`{first}` and `{u}` name the same server: name each server once (one server runs as many trials at once as it has slots)"
            ))
            .into());
        }
    }
    Ok(urls.to_vec())
}

/// The agent of one `--cmd`. The agent starts in its trial's workdir, so the paths in it that
/// name files here (`./my_agent.sh`, `python my_agent.py`) are made absolute; a program that
/// is neither a file nor on PATH is refused before the run starts.
fn cmd_agent(name: &str, line: &str) -> Result<Agent> {
    let bad = |why: String| -> anyhow::Error { Error::BadInput(format!("--cmd `{line}`: {why}")).into() };
    let mut words = split_command(line).map_err(|e| bad(e.to_string()))?;
    let cwd = std::env::current_dir()?;
    for (i, w) in words.iter_mut().enumerate() {
        let here = cwd.join(&*w);
        let names_a_file =
            !w.contains('{') && Path::new(w).is_relative() && (i > 0 || w.contains('/')) && here.is_file();
        if names_a_file {
            *w = here.to_string_lossy().into_owned();
        }
    }
    let program = &words[0];
    if program.contains('{') {
        // Known only once filled in: a trial that cannot start it says so.
    } else if program.contains('/') {
        let p = cwd.join(program);
        if !p.is_file() {
            return Err(bad(format!(
                "the program {} does not exist (a relative path is taken from the current folder)",
                p.display()
            )));
        }
        if !sandbox::is_executable(&p) {
            return Err(bad(format!("the program {} is not executable: `chmod +x` it", p.display())));
        }
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if sandbox::resolve_program(program, &cwd, &path).is_none() {
            return Err(bad(format!("the program `{program}` is not on PATH: install it, or give its path")));
        }
    }
    Agent::command(name, words)
}
