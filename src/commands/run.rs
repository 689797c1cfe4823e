//! `fixbench run`: plan the run from flags, environment and harness.toml, run it (or show it,
//! under `--dry-run`), then print its table or its JSON record.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::Error;
use crate::runner::{self, trial, Plan, RunArgs};
use crate::settings::Settings;
use crate::store::{self, RunStatus};

pub fn command(args: RunArgs) -> Result<i32> {
    let json = args.json;
    let junit = args.junit.clone();
    let report = args.report.clone();
    let settings = Settings::load(&args.sources())?;
    if args.dry_run {
        let plan = Plan::new(args, &settings)?;
        print_dry_run(&plan)?;
        return Ok(crate::exit_codes::OK);
    }
    let plan = Plan::new(args, &settings)?;
    let run = runner::execute(&plan)?;
    if let Some(path) = junit {
        crate::report::junit::write_file(&run, &plan.store.run_dir(&run.run_id), &path)?;
    }
    if let Some(path) = report {
        // Written for an interrupted run too: what finished is worth reading.
        let written = crate::report::html::write(&plan.store, std::slice::from_ref(&run), &Default::default(), &path)?;
        eprintln!("{}", written.summary());
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

/// `--dry-run`: each trial's command, environment and generated files; nothing is run or written.
fn print_dry_run(plan: &Plan) -> Result<()> {
    let base_url = if plan.servers.is_empty() { "" } else { "http://127.0.0.1:<proxy-port>/v1" };
    for key in plan.pending(&plan.record) {
        let problem = plan.problem(&key.problem);
        let agent = plan.agent(&key.agent);
        let workdir = PathBuf::from(format!("<tmp>/fixbench-{}/work", key.dir_name()));
        let home = PathBuf::from(format!("<tmp>/fixbench-{}/home", key.dir_name()));
        let vars = trial::vars(plan, problem, base_url, &workdir, &home)?;
        println!("# trial {}", key.id());
        match trial::invocation(agent, &vars) {
            None => println!("built-in agent `{}` (runs inside fixbench)", agent.name),
            Some(inv) => {
                println!("cwd: {}", workdir.display());
                println!("isolation: {}", plan.isolation.as_str());
                if let Some(sb) = &plan.sandbox {
                    for p in
                        sb.read_only(&inv.argv, &workdir, &inv.env, &[home.parent().unwrap_or(&home).to_path_buf()])
                    {
                        println!("sandbox read-only: {}", p.display());
                    }
                    println!("sandbox read-write: <tmp>/fixbench-{}/ (workdir and home)", key.dir_name());
                }
                println!("command: {}", shlex::try_join(inv.display.iter().map(String::as_str)).unwrap_or_default());
                if let Some(why) = agent.preset.as_ref().and_then(|p| p.not_installed()) {
                    println!("note: {why}");
                }
                for (k, v) in &inv.env {
                    println!("env: {k}={v}");
                }
                for (path, content) in &inv.files {
                    println!("file: {}/{path}", home.display());
                    for line in content.lines() {
                        println!("    {line}");
                    }
                }
            }
        }
        println!();
    }
    Ok(())
}
