//! `fixbench agents`: every built-in, harness.toml agent and preset, installed or not, with
//! its version, as a table or JSON.

use std::path::PathBuf;

use anyhow::Result;

use crate::agent::listing::{list, Listing};
use crate::model::Isolation;
use crate::settings::{Settings, Sources};

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    /// Print the list as JSON: `{"agents": [{"name", "command", "installed", ...}]}`
    #[arg(long)]
    pub json: bool,
    /// The harness config file whose [agents] are listed too [default: ./harness.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the version probes run: in the agent sandbox, as trials do, or unisolated
    /// [default: harness.toml's run.isolation, else sandbox]
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
}

pub fn command(args: AgentsArgs) -> Result<i32> {
    let settings = Settings::load(&Sources { config: args.config.clone(), ..Default::default() })?;
    let listings = list(&settings, settings.isolation(args.isolation)?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "agents": listings }))?);
    } else {
        print!("{}", table(&listings));
    }
    Ok(crate::exit_codes::OK)
}

fn table(listings: &[Listing]) -> String {
    let mut t = crate::report::table::new_table();
    t.set_header(["agent", "source", "installed", "version", "command / how to install"]);
    for l in listings {
        let installed = if l.installed { "yes" } else { "no" };
        let detail = match (&l.installed, &l.install) {
            (false, Some(hint)) => format!("not installed: {hint}"),
            (false, None) => format!("{} (its program is not on PATH)", l.command),
            (true, _) => l.command.clone(),
        };
        t.add_row([
            l.name.as_str(),
            l.source.as_str(),
            installed,
            l.version.as_deref().unwrap_or("-"),
            detail.as_str(),
        ]);
    }
    format!("{t}\n")
}
