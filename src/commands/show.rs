//! `fixbench show RUN`: one stored run's table and per-trial details, or its JSON record.

use anyhow::Result;

use super::ResultsArg;
use crate::error::Error;
use crate::report::runs;
use crate::report::show::render;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run: a run id, `latest` or `latest~N`
    #[arg(value_name = "RUN_ID", default_value = "latest")]
    pub run: String,
    /// Print the run record as JSON instead
    #[arg(long)]
    pub json: bool,
    /// Only this trial: `problem/agent/repeat` (e.g. `expr_calc/pi/0`)
    #[arg(long, value_name = "ID")]
    pub trial: Option<String>,
    /// With --trial: print its conversation turn by turn (the proxy's transcript)
    #[arg(long, requires = "trial")]
    pub transcript: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: ShowArgs) -> Result<i32> {
    let store = args.results.store()?;
    let run = runs::load_one(&store, &args.run)?;
    let run_dir = store.run_dir(&run.run_id);
    if let Some(id) = &args.trial {
        let Some(t) = run.trials.iter().find(|t| &t.id == id) else {
            let ids: Vec<&str> = run.trials.iter().map(|t| t.id.as_str()).collect();
            return Err(Error::BadInput(format!(
                "run {} has no trial `{id}`: its trials are {}",
                run.run_id,
                if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
            ))
            .into());
        };
        let text = if args.transcript {
            crate::report::transcript::render(t, &run_dir)?
        } else if args.json {
            serde_json::to_string_pretty(t)? + "\n"
        } else {
            crate::report::show::render_trial(&run, t, &run_dir)
        };
        crate::report::emit(&text)?;
        return Ok(crate::exit_codes::OK);
    }
    if args.json {
        crate::report::emit(&(serde_json::to_string_pretty(&run)? + "\n"))?;
        return Ok(crate::exit_codes::OK);
    }
    crate::report::emit(&render(&run, &run_dir))?;
    Ok(crate::exit_codes::OK)
}
