//! `fixbench route RUN...`: per problem and problem tag, the cheapest configuration whose
//! resolve rate meets the bar at its interval's lower bound, and what routing would cost.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use comfy_table::{Cell, CellAlignment};

use super::ResultsArg;
use crate::error::Error;
use crate::problem::Manifest;
use crate::report::group::GroupBy;
use crate::report::route::{money, Choice, Inputs, Routing, Subject};
use crate::report::runs;
use crate::settings::{Settings, Sources};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RouteFormat {
    /// Tables for the terminal
    Table,
    /// GitHub-flavoured Markdown, for a PR or an issue
    Markdown,
    /// Everything, for scripts
    Json,
}

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// The runs to route between: run ids, `latest`, `latest~1`, …
    #[arg(value_name = "RUN_ID", required = true)]
    pub runs: Vec<String>,
    /// The resolve rate (0–1) that the lower bound of a configuration's 95% Wilson interval
    /// must reach on a problem
    #[arg(long, value_name = "RATE", default_value_t = 0.8)]
    pub bar: f64,
    /// What a configuration is: agent, model, quant, server, run or label:KEY
    #[arg(long, value_name = "GROUPING", default_value = "model")]
    pub by: GroupBy,
    /// The output format
    #[arg(long, value_enum, default_value_t = RouteFormat::Table)]
    pub format: RouteFormat,
    /// The problems folder, read for each problem's `tags` [default: harness.toml's
    /// run.problems_dir, else problems]
    #[arg(long, value_name = "DIR")]
    pub problems_dir: Option<PathBuf>,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: RouteArgs) -> Result<i32> {
    if !(0.0..=1.0).contains(&args.bar) {
        return Err(
            Error::BadInput(format!("--bar {}: give a resolve rate between 0 and 1 (0.8 is 80%)", args.bar)).into()
        );
    }
    let settings = Settings::load(&Sources {
        config: args.results.config.clone(),
        results: args.results.results.clone(),
        problems_dir: args.problems_dir.clone(),
        ..Default::default()
    })?;
    let runs = runs::load_each(&settings.store(), &args.runs)?;
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &runs {
        for t in &run.trials {
            if tags.contains_key(&t.problem) {
                continue;
            }
            // A problem no longer in the folder simply has no tags.
            let path = settings.problems_dir.join(&t.problem).join("problem.toml");
            let found = if path.is_file() { Manifest::load(&path)?.tags } else { Vec::new() };
            tags.insert(t.problem.clone(), found);
        }
    }
    let inputs = Inputs { by: &args.by, bar: args.bar, prices: &settings.harness.file.prices, tags: &tags };
    let routing = Routing::build(&runs, inputs)?;
    let text = match args.format {
        RouteFormat::Table => table(&routing),
        RouteFormat::Markdown => markdown(&routing),
        RouteFormat::Json => serde_json::to_string_pretty(&routing)? + "\n",
    };
    crate::report::emit(&text)?;
    Ok(crate::exit_codes::OK)
}

const HEADER: [&str; 8] =
    ["", "configuration", "trials", "resolved", "95% interval", "cost/trial", "wall/trial", "route"];

/// A subject's rows: its cells as text, the first column its name on the first row only.
fn rows(s: &Subject) -> Vec<[String; 8]> {
    let chosen = s.choice.chosen();
    s.options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mark = if chosen == Some(o.configuration.as_str()) {
                "chosen"
            } else if o.meets_bar {
                "meets bar"
            } else {
                ""
            };
            [
                if i == 0 { s.name.clone() } else { String::new() },
                o.configuration.clone(),
                o.trials.to_string(),
                format!("{}/{} ({:.0}%)", o.resolved, o.trials, o.resolve_rate * 100.0),
                format!("{:.2}–{:.2}", o.lower, o.upper),
                o.cost_per_trial.map(money).unwrap_or_else(|| "-".into()),
                format!("{:.1} s", o.wall_s_per_trial),
                mark.into(),
            ]
        })
        .collect()
}

/// What a subject's choice says besides its rows, or `None` when one was chosen.
fn verdict(s: &Subject, bar: f64) -> Option<String> {
    match &s.choice {
        Choice::Chosen { .. } => None,
        Choice::Unpriced { meeting } => Some(format!(
            "{}: {} meet the bar, but which is cheapest is unknown: {}",
            s.name,
            meeting.join(", "),
            s.options
                .iter()
                .flat_map(|o| o.cost_missing.iter().map(move |m| format!("`{}`: {m}", o.configuration)))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Choice::NoneMeets { best, lower } => Some(format!(
            "{}: no configuration meets the bar {bar:.2}; the best is {best}, lower bound {lower:.2}",
            s.name
        )),
    }
}

fn heading(r: &Routing) -> String {
    format!(
        "Routing by {} over {}: bar {:.2} at the lower bound of the 95% Wilson interval; escalation target {} \
         (meets the bar on the most problems, {} of {})",
        r.by,
        r.runs.join(", "),
        r.bar,
        r.summary.escalation,
        r.summary.escalation_meets,
        r.summary.problems
    )
}

fn notes(r: &Routing, subjects: &[Subject]) -> Vec<String> {
    subjects.iter().filter_map(|s| verdict(s, r.bar)).collect()
}

fn table(r: &Routing) -> String {
    let mut out = heading(r) + "\n\n";
    for (what, subjects) in [("problem", &r.problems), ("tag", &r.tags)] {
        if subjects.is_empty() {
            continue;
        }
        let mut t = crate::report::table::new_table();
        let mut header = HEADER;
        header[0] = what;
        t.set_header(header);
        for s in subjects {
            for row in rows(s) {
                t.add_row(row.iter().enumerate().map(|(i, c)| {
                    let cell = Cell::new(c);
                    if (2..=6).contains(&i) {
                        cell.set_alignment(CellAlignment::Right)
                    } else {
                        cell
                    }
                }));
            }
        }
        out += &format!("{t}\n");
        for n in notes(r, subjects) {
            out += &format!("{n}\n");
        }
        out += "\n";
    }
    out + &format!("routing: {}\n", r.summary.line)
}

fn markdown(r: &Routing) -> String {
    let mut out = format!("{}\n\n", heading(r));
    for (title, what, subjects) in [("Problems", "problem", &r.problems), ("Tags", "tag", &r.tags)] {
        if subjects.is_empty() {
            continue;
        }
        let mut header = HEADER;
        header[0] = what;
        out += &format!("### {title}\n\n| {} |\n", header.join(" | "));
        out += "|---|---|--:|--:|--:|--:|--:|---|\n";
        for s in subjects {
            for row in rows(s) {
                let row: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
                out += &format!("| {} |\n", row.join(" | "));
            }
        }
        out += "\n";
        for n in notes(r, subjects) {
            out += &format!("- {n}\n");
        }
        out += "\n";
    }
    out + &format!("**Routing:** {}\n", r.summary.line)
}
