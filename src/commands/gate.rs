//! `fixbench gate`: the CI gate, failing (exit 5) when a run regressed against a baseline.

use anyhow::Result;

use super::ResultsArg;
use crate::error::Error;
use crate::exit_codes::GATE_FAILED;
use crate::report::baseline::load_baseline;
use crate::report::gate::{evaluate, render};
use crate::report::html::{Banner, Options};
use crate::report::runs;

#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 when the run holds up against the baseline; 5 when the score \
dropped beyond what the repeats' spread allows, the run lacks a problem the baseline has, either \
side did not finish every planned trial (unless --allow-incomplete), or (with \
--max-slowdown) wall, prefill or decode speed regressed beyond the ratio with its 95% interval; \
2 for a bad flag or an unknown run or baseline.\n\n\
The score drop is judged by a bootstrap over trials (two or more repeats a side), else by the \
exact McNemar test on per-test outcomes (p < 0.05).")]
pub struct GateArgs {
    /// What to compare against: a saved baseline's name, a run id, `latest~1`, …
    #[arg(long, value_name = "NAME|RUN_ID")]
    pub baseline: String,
    /// The run to check: a run id, `latest`, `latest~N`
    #[arg(value_name = "RUN_ID", default_value = "latest")]
    pub run: String,
    /// Tests (per repeat of the whole suite) the score may drop before the gate fails
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    pub max_drop: f64,
    /// How many times slower wall time, prefill or decode may get (e.g. 1.25) before the gate
    /// fails; speed is reported but not gated without it
    #[arg(long, value_name = "RATIO")]
    pub max_slowdown: Option<f64>,
    /// Gate a run that did not finish every planned trial (interrupted, or a baseline run
    /// that did not): without it such a run fails the gate
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Print the verdict as JSON
    #[arg(long)]
    pub json: bool,
    /// Also write the verdict, with the baseline and the run compared, as one self-contained
    /// HTML report to FILE (for the CI job's artifacts); written whether the gate passes or not
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: GateArgs) -> Result<i32> {
    if args.max_drop < 0.0 || !args.max_drop.is_finite() {
        return Err(Error::BadInput(format!("--max-drop {} must be 0 or more tests", args.max_drop)).into());
    }
    if let Some(x) = args.max_slowdown {
        if x.is_nan() || x < 1.0 {
            return Err(Error::BadInput(format!(
                "--max-slowdown {x} must be a ratio of 1 or more (1.25 allows 25% slower)"
            ))
            .into());
        }
    }
    let store = args.results.store()?;
    let (base, base_name) = load_baseline(&store, &args.baseline)?;
    let run = runs::load_one(&store, &args.run)?;
    let mut verdict = evaluate(&base, &run, args.max_drop, args.max_slowdown)?;
    for (side, r) in [("the run", &run), ("the baseline", &base)] {
        // What keeps the run from standing for its whole plan, and how to mend it.
        let mut short: Vec<(String, String)> = Vec::new();
        // A shard is whole as a slice, but only part of what its plan measures.
        if let Some(shard) = r.plan.as_ref().and_then(|p| p.shard).filter(|s| s.count > 1) {
            short.push((format!("shard {shard} of its plan"), "gate the merged run (`fixbench merge`)".into()));
        }
        if let Some(why) = runs::incomplete(r) {
            let finish = match &r.merged {
                // A merge is remade, not resumed: its shards hold the trials.
                Some(_) => "run its missing shards (or `fixbench run --run-id` them again) and merge again".to_string(),
                None => format!("finish it with `fixbench run --resume {}`", r.run_id),
            };
            short.push((format!("incomplete ({why})"), finish));
        }
        for (what, fix) in short {
            if args.allow_incomplete {
                verdict.notes.push(format!("{side} is {what}: gated anyway (--allow-incomplete)"));
            } else {
                verdict.passed = false;
                verdict.failures.push(format!("{side} is {what}: {fix}, or pass --allow-incomplete"));
            }
        }
    }
    let text = render(&verdict, &base_name);
    if let Some(path) = &args.report {
        let title = format!(
            "gate {}: run {} against {base_name}",
            if verdict.passed { "passed" } else { "FAILED" },
            run.run_id
        );
        let lines = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let banner = Banner { title, passed: verdict.passed, lines };
        let opts = Options { banner: Some(banner), ..Default::default() };
        let written = crate::report::html::write(&store, &[base.clone(), run.clone()], &opts, path)?;
        eprintln!("{}", written.summary());
    }
    if args.json {
        crate::report::emit(&(serde_json::to_string_pretty(&verdict)? + "\n"))?;
    } else {
        crate::report::emit(&text)?;
    }
    if verdict.passed {
        Ok(crate::exit_codes::OK)
    } else {
        Err(Error::CheckFailed(format!("gate failed: {}", verdict.failures.join("; ")), GATE_FAILED).into())
    }
}
