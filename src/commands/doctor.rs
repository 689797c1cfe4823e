//! `fixbench doctor [--server URL] [RUN_ID]`: what is costing time on a llama-server, in
//! sentences, each with the flag that fixes it.

use anyhow::Result;

use super::ResultsArg;
use crate::doctor::{diagnose, render, Evidence};
use crate::error::Error;
use crate::report::runs;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// A stored run whose requests to examine too: a run id, `latest` or `latest~N`
    #[arg(value_name = "RUN_ID")]
    pub run: Option<String>,
    /// The llama-server to examine [default: the run's server, else harness.toml's run.server]
    #[arg(long, env = "FIXBENCH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: DoctorArgs) -> Result<i32> {
    let settings = args.results.settings()?;
    let run = match &args.run {
        Some(name) => Some(runs::load_one(&settings.store(), name)?),
        None => None,
    };
    // The flag, else the run's server, else harness.toml's `run.server`.
    let url = args
        .server
        .clone()
        .or_else(|| run.as_ref().and_then(|r| r.config.server_url.clone()))
        .or_else(|| settings.servers(&[]).ok().and_then(|s| s.into_iter().next()));
    if url.is_none() && run.is_none() {
        return Err(Error::BadInput(
            "nothing to examine: give --server URL (or set FIXBENCH_SERVER or harness.toml's `run.server`), a RUN_ID, or both".into(),
        )
        .into());
    }
    let ev = Evidence::gather(url.as_deref(), run)?;
    if let (Some(why), None) = (&ev.unreachable, &ev.run) {
        // The key's own sentence already names the server.
        let msg = if why.starts_with("the server at ") {
            why.clone()
        } else {
            format!("cannot examine the server at {}: {why}", ev.url.as_deref().unwrap_or("?"))
        };
        return Err(Error::Environment(msg).into());
    }
    let findings = diagnose(&ev);
    if args.json {
        let out = serde_json::json!({
            "server": ev.url,
            "run": ev.run.as_ref().map(|r| r.run_id.clone()),
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&ev, &findings));
    }
    Ok(crate::exit_codes::OK)
}
