//! `fixbench sweep FILE`: one run of the suite per llama-server configuration. Each
//! configuration's server is started on a free loopback port, checked for health, used for
//! one run, and stopped before the next; one that fails to start is recorded and skipped.
//! The sweep's own record (`results/sweeps/<id>.json`) lets `--resume` continue it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use comfy_table::Cell;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::runner::{self, Plan, RunArgs};
use crate::server::{self, RunningServer, ServerSpec};
use crate::settings::Settings;
use crate::store::{self, RunRecord, RunStatus};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    #[serde(rename = "server", default)]
    pub servers: Vec<ServerConfig>,
}

/// One llama-server configuration of a sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub label: String,
    pub binary: Option<String>,
    pub model: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Send one short request once the server is healthy, before the first trial.
    #[serde(default)]
    pub warmup: bool,
}

/// What happened to each configuration, saved after every step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub sweep_id: String,
    pub file: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The `fixbench run` flags the sweep was started with; `--resume` reuses them.
    pub run_args: RunArgs,
    pub configs: Vec<ConfigOutcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigOutcome {
    pub label: String,
    pub status: ConfigStatus,
    pub run_id: Option<String>,
    pub reason: Option<String>,
    pub log_tail: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConfigStatus {
    Pending,
    Finished,
    Interrupted,
    Failed,
}

pub fn load(path: &Path) -> Result<SweepFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::BadInput(format!("cannot read the sweep file {}: {e}", path.display())))?;
    let file: SweepFile = crate::config::parse(&text, path)?;
    if file.servers.is_empty() {
        return Err(
            Error::BadInput(format!("{}: no [[server]] table: add one per configuration", path.display())).into()
        );
    }
    let mut seen = BTreeSet::new();
    for s in &file.servers {
        if s.label.trim().is_empty() {
            return Err(Error::BadInput(format!("{}: a [[server]] has an empty `label`", path.display())).into());
        }
        if !seen.insert(s.label.as_str()) {
            return Err(Error::BadInput(format!(
                "{}: `label = \"{}\"` is used twice: labels must be unique",
                path.display(),
                s.label
            ))
            .into());
        }
        for flag in ["--port", "--host", "-m", "--model"] {
            if s.args.iter().any(|a| a == flag) {
                return Err(Error::BadInput(format!(
                    "{}: server `{}` passes `{flag}` in `args`; fixbench sets it (use `model = ...` for the model)",
                    path.display(),
                    s.label
                ))
                .into());
            }
        }
    }
    Ok(file)
}

/// `~`, `$VAR` and `${VAR}` expanded; relative paths taken from the sweep file's folder.
fn resolve_path(raw: &str, base: &Path) -> Result<PathBuf> {
    let expanded = shellexpand::full(raw).map_err(|e| Error::BadInput(format!("cannot expand `{raw}`: {e}")))?;
    // A variable's default (`${FIXBENCH_CACHE:-~/.cache/fixbench}`) may start with `~` too.
    let expanded = shellexpand::tilde(expanded.as_ref());
    let p = PathBuf::from(expanded.as_ref());
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

/// A finished (or stopped) sweep: its record, where it is saved, and the runs it made or kept.
#[derive(Debug)]
pub struct Swept {
    pub record: SweepRecord,
    pub path: PathBuf,
    pub runs: Vec<RunRecord>,
}

impl Swept {
    /// Whether a configuration is still to run (Ctrl-C, or a stop before its turn).
    pub fn unfinished(&self) -> bool {
        self.record.configs.iter().any(|c| matches!(c.status, ConfigStatus::Interrupted | ConfigStatus::Pending))
    }
}

/// Runs the sweep of `file_path` (or resumes `run.resume`) with the `fixbench run` flags `run`
/// under `settings` (built from the same flags), saving its record after every step.
pub fn sweep(file_path: &Path, health_timeout: f64, run: &RunArgs, settings: &Settings) -> Result<Swept> {
    let file = load(file_path)?;
    let base = file_path.parent().map(Path::to_path_buf).unwrap_or_default();
    // The store the runs go to: --results, else harness.toml's, as `fixbench run` chooses it.
    let harness = &settings.harness;
    let store = settings.store();
    let sweeps_dir = store.root.join("sweeps");
    let cancel = crate::interrupt::cancel_flag();

    let resuming = run.resume.is_some();
    if resuming {
        let strip = |a: &RunArgs| RunArgs {
            resume: None,
            json: false,
            results: None,
            python: None,
            config: None,
            report: None,
            ..a.clone()
        };
        if serde_json::to_value(strip(run))? != serde_json::to_value(strip(&RunArgs::empty()))? {
            return Err(Error::BadInput(
                "--resume continues a sweep with the run flags it was started with: drop the others (--json, --results and --report may stay)".into(),
            )
            .into());
        }
    }
    let mut record = match &run.resume {
        Some(id) => {
            let p = sweeps_dir.join(format!("{id}.json"));
            let text = std::fs::read_to_string(&p)
                .map_err(|e| Error::BadInput(format!("no sweep `{id}` to resume ({}: {e})", p.display())))?;
            serde_json::from_str::<SweepRecord>(&text).with_context(|| format!("{} is corrupt", p.display()))?
        }
        None => {
            let now = Utc::now();
            SweepRecord {
                sweep_id: format!("sweep-{}", store::new_run_id(now)),
                file: file_path.to_string_lossy().into_owned(),
                started_at: now,
                ended_at: None,
                run_args: RunArgs { json: false, resume: None, ..run.clone() },
                configs: file
                    .servers
                    .iter()
                    .map(|s| ConfigOutcome {
                        label: s.label.clone(),
                        status: ConfigStatus::Pending,
                        run_id: None,
                        reason: None,
                        log_tail: None,
                    })
                    .collect(),
            }
        }
    };
    let save = |r: &SweepRecord| -> Result<()> {
        store::write_atomic(&sweeps_dir.join(format!("{}.json", r.sweep_id)), &serde_json::to_vec_pretty(r)?)
    };
    save(&record)?;

    let mut runs: Vec<RunRecord> = Vec::new();
    for (i, cfg) in file.servers.iter().enumerate() {
        let Some(outcome) = record.configs.iter().position(|c| c.label == cfg.label) else {
            return Err(Error::BadInput(format!(
                "server `{}` is not part of sweep {}: resume with the same file",
                cfg.label, record.sweep_id
            ))
            .into());
        };
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let prior = record.configs[outcome].clone();
        if prior.status == ConfigStatus::Finished {
            if let Some(id) = &prior.run_id {
                runs.push(store.load(id)?);
            }
            continue;
        }
        if prior.status == ConfigStatus::Failed && resuming {
            continue; // reported already; a resumed sweep does not retry a broken configuration
        }
        eprintln!("server {}/{}: {}", i + 1, file.servers.len(), cfg.label);
        let mut run_args = record.run_args.clone();
        // An interrupted configuration whose run was saved continues it; one interrupted before
        // its run began (while the server started) starts afresh.
        run_args.resume = prior.run_id.clone().filter(|id| {
            prior.status == ConfigStatus::Interrupted && store.run_dir(id).join(store::RUN_FILE).is_file()
        });
        if run_args.resume.is_some() {
            // A resumed run keeps its own configuration; only where results go may differ.
            run_args = RunArgs {
                resume: run_args.resume,
                results: run_args.results,
                config: run_args.config,
                python: run_args.python,
                ..RunArgs::empty()
            };
        }
        let mut plan = Plan::new(run_args, settings)?;
        plan.server_label = Some(cfg.label.clone());
        plan.record.config.server_label = Some(cfg.label.clone());
        plan.record.labels.entry("server".into()).or_insert_with(|| cfg.label.clone());
        plan.claim_run_dir()?; // its server's log goes there before the run starts
        let run_id = plan.record.run_id.clone();
        record.configs[outcome].run_id = Some(run_id.clone());
        save(&record)?;

        let binary = match &cfg.binary {
            Some(b) => resolve_path(b, &base)?,
            None => file_binary_default(harness),
        };
        let spec = ServerSpec {
            binary,
            model: resolve_path(&cfg.model, &base)?,
            args: cfg.args.clone(),
            log: store.run_dir(&run_id).join("server.log"),
            health_timeout: Duration::from_secs_f64(health_timeout),
            api_key: crate::telemetry::client::llama_api_key(),
        };
        let mut server = match RunningServer::start(&spec, &cancel) {
            Ok(s) => s,
            Err(f) => {
                eprintln!("server {}: {}; skipped\n{}", cfg.label, f.reason, indent(&f.log_tail));
                let c = &mut record.configs[outcome];
                c.status = if cancel.load(Ordering::SeqCst) { ConfigStatus::Interrupted } else { ConfigStatus::Failed };
                c.reason = Some(f.reason.clone());
                c.log_tail = Some(f.log_tail.clone());
                save(&record)?;
                continue;
            }
        };
        if cfg.warmup {
            warm_up(&server.url);
        }
        plan.servers = vec![server.url.clone()];
        plan.record.config.server_url = Some(server.url.clone());
        plan.server_flags = Some(server.flags.clone());
        let result = runner::execute(&plan);
        server.stop();
        let c = &mut record.configs[outcome];
        match result {
            Ok(run) => {
                c.status = match run.status {
                    RunStatus::Finished => ConfigStatus::Finished,
                    _ => ConfigStatus::Interrupted,
                };
                runs.push(run);
            }
            Err(e) => {
                c.status = ConfigStatus::Failed;
                c.reason = Some(format!("{e:#}"));
                c.log_tail = Some(server::log_tail(&spec.log, 15));
                eprintln!("server {}: {e:#}; skipped", cfg.label);
            }
        }
        save(&record)?;
    }
    record.ended_at = Some(Utc::now());
    save(&record)?;

    let path = sweeps_dir.join(format!("{}.json", record.sweep_id));
    Ok(Swept { record, path, runs })
}

/// The binary of a configuration that names none: the harness file's `[server] binary` (the
/// file `--config` names, else ./harness.toml), else the setup's build or PATH.
fn file_binary_default(harness: &crate::config::Harness) -> PathBuf {
    harness.file.server.binary.as_ref().map(|b| harness.resolve(b)).unwrap_or_else(server::default_binary)
}

fn warm_up(url: &str) {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 4});
    let _ = ureq::post(&format!("{url}/v1/chat/completions")).timeout(Duration::from_secs(120)).send_json(body);
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// The comparison grouped by server configuration.
pub fn summary(record: &SweepRecord, runs: &[RunRecord]) -> String {
    let mut t = crate::report::table::new_table();
    t.set_header([
        "server",
        "status",
        "trials",
        "passed/total",
        "resolved",
        "prefill tok/s",
        "decode tok/s",
        "cache hit",
        "re-prefilled",
        "wall",
    ]);
    for c in &record.configs {
        let run = c.run_id.as_ref().and_then(|id| runs.iter().find(|r| &r.run_id == id));
        let status = match (c.status, &c.reason) {
            (ConfigStatus::Failed, Some(r)) => format!("failed: {r}"),
            (s, _) => format!("{s:?}").to_lowercase(),
        };
        let Some(run) = run else {
            t.add_row(vec![
                Cell::new(&c.label),
                Cell::new(status),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new("-"),
            ]);
            continue;
        };
        let tr = &run.trials;
        let n = tr.len().max(1) as f64;
        let passed: u32 = tr.iter().map(|t| t.grade.passed).sum();
        let total: u32 = tr.iter().map(|t| t.grade.total).sum();
        let resolved = tr.iter().filter(|t| t.grade.resolved).count();
        let sum = |f: &dyn Fn(&crate::store::ServerDelta) -> f64| {
            tr.iter().filter_map(|t| t.telemetry.server.as_ref()).map(f).sum::<f64>()
        };
        let at_once = run.config.jobs.unwrap_or(1) > 1;
        // Trials at once: the server's own counters over the run are the exact figures (a
        // request's prefill time then includes its neighbours' tokens in the same batches).
        let whole = run.servers.first().and_then(|s| s.metrics.as_ref()).filter(|_| at_once);
        let pick = |f: &dyn Fn(&crate::store::ServerDelta) -> f64| match whole {
            Some(d) => f(d),
            None => sum(f),
        };
        let has_server = whole.is_some() || tr.iter().any(|t| t.telemetry.server.is_some());
        let rate =
            |tok: f64, secs: f64| if has_server && secs > 0.0 { format!("{:.1}", tok / secs) } else { "n/a".into() };
        let prefill = rate(pick(&|s| s.prompt_tokens), pick(&|s| s.prompt_seconds));
        let decode = rate(pick(&|s| s.predicted_tokens), pick(&|s| s.predicted_seconds));
        let cached = pick(&|s| s.cached_tokens);
        let prompt = pick(&|s| s.prompt_tokens);
        let hit = if has_server && cached + prompt > 0.0 {
            format!("{:.0}%", 100.0 * cached / (cached + prompt))
        } else {
            "n/a".into()
        };
        // Prompt tokens prefilled again though the conversation's previous turn had them.
        let timings: Vec<_> = tr.iter().filter_map(|t| t.telemetry.timing.as_ref()).collect();
        let unknown: u32 = timings.iter().map(|t| t.reprefill_unknown).sum();
        let reprefilled = if timings.is_empty() {
            "n/a".to_string()
        } else if unknown > 0 {
            // Some follow-up turns did not say what was cached: a sum would undercount.
            "?".to_string()
        } else {
            timings.iter().map(|t| t.reprefilled_tokens).sum::<u64>().to_string()
        };
        let wall: f64 = tr.iter().map(|t| t.wall_s).sum();
        // Trials at once: the time from the first trial's start to the last one's end.
        let first = tr.iter().map(|t| t.started_at).min();
        let last = tr.iter().map(|t| t.started_at + chrono::Duration::milliseconds((t.wall_s * 1000.0) as i64)).max();
        let elapsed = match (first, last) {
            (Some(a), Some(b)) if at_once => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => wall,
        };
        t.add_row(vec![
            Cell::new(&c.label),
            Cell::new(status),
            Cell::new(tr.len()),
            Cell::new(format!("{passed}/{total}")),
            Cell::new(format!("{resolved}/{}", tr.len())),
            Cell::new(prefill),
            Cell::new(decode),
            Cell::new(hit),
            Cell::new(reprefilled),
            Cell::new(format!("{:.1} s (mean {:.1} s)", elapsed, wall / n)),
        ]);
    }
    format!("{t}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, text).unwrap();
        load(&p).map(|f| format!("{} servers", f.servers.len())).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn sweep_files_are_checked() {
        assert_eq!(parse("[[server]]\nlabel = \"a\"\nmodel = \"m.gguf\"\nargs = [\"-np\", \"1\"]\n"), "1 servers");
        assert!(parse("[[server]]\nmodel = \"m\"\n").contains("missing field `label`"));
        assert!(parse("[[server]]\nlabel = \"a\"\nmodel = \"m\"\n[[server]]\nlabel = \"a\"\nmodel = \"m\"\n")
            .contains("used twice"));
        assert!(parse("[[server]]\nlabel = \"a\"\nmodel = \"m\"\nargs = [\"--port\", \"1\"]\n")
            .contains("fixbench sets it"));
        assert!(parse("[[server]]\nlabel = \"a\"\nmodel = \"m\"\nflags = []\n").contains("unknown field `flags`"));
    }

    #[test]
    fn a_variables_default_may_start_with_the_home_folder() {
        let home = std::env::var("HOME").unwrap();
        // The shipped sweeps write their model as `${FIXBENCH_CACHE:-~/.cache/fixbench}/…`.
        let p = resolve_path("${FIXBENCH_SWEEP_TEST_UNSET:-~/.cache}/m.gguf", Path::new("sweeps")).unwrap();
        assert_eq!(p, PathBuf::from(format!("{home}/.cache/m.gguf")));
        assert_eq!(resolve_path("m.gguf", Path::new("sweeps")).unwrap(), PathBuf::from("sweeps/m.gguf"));
    }
}
