//! `fixbench baseline save|list|remove`: named copies of runs for `fixbench gate`.

use anyhow::{Context, Result};
use chrono::Utc;

use super::ResultsArg;
use crate::error::Error;
use crate::report::baseline::{baseline_path, check_name, load_baseline, SavedBaseline, BASELINES_DIR};
use crate::report::runs;
use crate::store;

#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Keep a copy of a run under NAME, for `fixbench gate --baseline NAME`.
    Save {
        /// A name: letters, digits, `.`, `_`, `-`
        name: String,
        /// The run: a run id, `latest`, `latest~N`
        #[arg(default_value = "latest")]
        run: String,
        #[command(flatten)]
        results: ResultsArg,
    },
    /// List the saved baselines.
    List {
        #[command(flatten)]
        results: ResultsArg,
    },
    /// Forget a saved baseline.
    Remove {
        name: String,
        #[command(flatten)]
        results: ResultsArg,
    },
}

pub fn command(args: BaselineArgs) -> Result<i32> {
    match args.command {
        BaselineCommand::Save { name, run, results } => {
            check_name(&name)?;
            let store = results.store()?;
            let record = runs::load_one(&store, &run)?;
            let path = baseline_path(&store, &name);
            let replaced = path.is_file();
            let saved = SavedBaseline { name: name.clone(), saved_at: Utc::now(), run: record };
            store::write_atomic(&path, &serde_json::to_vec_pretty(&saved)?)?;
            println!(
                "{} baseline `{name}`: run {} ({} trials) → {}",
                if replaced { "replaced" } else { "saved" },
                saved.run.run_id,
                saved.run.trials.len(),
                path.display()
            );
        }
        BaselineCommand::List { results } => {
            let store = results.store()?;
            let dir = store.root.join(BASELINES_DIR);
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
                    .collect(),
                Err(_) => Vec::new(),
            };
            names.sort();
            if names.is_empty() {
                eprintln!(
                    "no saved baselines in {} (save one with `fixbench baseline save NAME RUN_ID`)",
                    store.root.display()
                );
            }
            let mut t = crate::report::table::new_table();
            t.set_header(vec!["name", "run", "saved (UTC)", "trials", "score"]);
            for n in &names {
                match load_baseline(&store, n) {
                    Ok((run, _)) => {
                        let saved = std::fs::read_to_string(baseline_path(&store, n))
                            .ok()
                            .and_then(|s| serde_json::from_str::<SavedBaseline>(&s).ok())
                            .map(|b| b.saved_at.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default();
                        let (p, tot) = run
                            .trials
                            .iter()
                            .fold((0u64, 0u64), |a, t| (a.0 + t.grade.passed as u64, a.1 + t.grade.total as u64));
                        let score = if tot == 0 {
                            "n/a".into()
                        } else {
                            format!("{:.1}% ({p}/{tot})", p as f64 / tot as f64 * 100.0)
                        };
                        t.add_row(vec![n.clone(), run.run_id.clone(), saved, run.trials.len().to_string(), score]);
                    }
                    Err(e) => {
                        eprintln!("warning: baseline `{n}`: {e}");
                        t.add_row(vec![n.clone(), "unreadable".into(), String::new(), String::new(), String::new()]);
                    }
                }
            }
            if !names.is_empty() {
                crate::report::emit(&format!("{t}\n"))?;
            }
        }
        BaselineCommand::Remove { name, results } => {
            check_name(&name)?;
            let path = baseline_path(&results.store()?, &name);
            if !path.is_file() {
                return Err(
                    Error::BadInput(format!("no saved baseline `{name}` (see `fixbench baseline list`)")).into()
                );
            }
            std::fs::remove_file(&path).with_context(|| format!("failed to remove {}", path.display()))?;
            println!("removed baseline `{name}`");
        }
    }
    Ok(crate::exit_codes::OK)
}
