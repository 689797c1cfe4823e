//! `fixbench junit RUN`: a stored run as JUnit XML, on stdout or into a file.

use std::path::PathBuf;

use anyhow::Result;

use super::ResultsArg;
use crate::report::junit::{to_xml, write_file};
use crate::report::runs;

#[derive(Debug, clap::Args)]
pub struct JunitArgs {
    /// The run: a run id, `latest` or `latest~N`
    #[arg(value_name = "RUN_ID", default_value = "latest")]
    pub run: String,
    /// Where to write the XML [default: standard output]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: JunitArgs) -> Result<i32> {
    let store = args.results.store()?;
    let run = runs::load_one(&store, &args.run)?;
    let run_dir = store.run_dir(&run.run_id);
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            write_file(&run, &run_dir, path)?;
            eprintln!("wrote {} ({} testsuites)", path.display(), run.trials.len());
        }
        _ => crate::report::emit(&to_xml(&run, &run_dir)?)?,
    }
    Ok(crate::exit_codes::OK)
}
