//! `fixbench inject NAME --bugs K`: bugs the tests catch, put into a problem made by `new`.

use anyhow::Result;

use crate::author::inject::{inject, Request};
use crate::commands::validate::GradingArgs;

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The problem (a folder under the problems folder, made by `fixbench new`).
    pub name: String,
    /// How many bugs to put in.
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub bugs: usize,
    /// The seed choosing among the candidate bugs: the same seed, code and tests give the same problem.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// The share of tests the starter should fail (0.2 an easy variant, 0.6 a hard one).
    #[arg(long, value_name = "SHARE")]
    pub target_failing: Option<f64>,
    /// At most this many candidate bugs are tried against the suite.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub max_tries: usize,
    #[command(flatten)]
    pub grading: GradingArgs,
}

pub fn command(args: InjectArgs) -> Result<i32> {
    let (settings, grader, pytest_version) = args.grading.grader()?;
    let problem = crate::problem::select(&settings.problems_dir, std::slice::from_ref(&args.name))?.remove(0);
    let cancel = crate::interrupt::cancel_flag();
    let grader =
        grader.with_environments(&[&problem], &pytest_version, &crate::grade::cache_root()?, &cancel, &mut |n| {
            eprintln!("{n}")
        })?;
    let req = Request {
        dir: problem.dir.clone(),
        bugs: args.bugs,
        seed: args.seed,
        target_failing: args.target_failing,
        max_tries: args.max_tries,
    };
    let done = inject(&req, &grader, &cancel)?;
    println!(
        "injected {} bug(s) into `{}`: the starter passes {} of {} tests ({} candidates, {} tried, {} caught alone, {} suite runs, {:.1} s)",
        done.bugs.len(),
        args.name,
        done.baseline,
        done.tests,
        done.candidates,
        done.tried,
        done.kept,
        done.graded,
        done.seconds
    );
    for b in &done.bugs {
        println!("  {:<28} {}", b.id, b.summary);
    }
    if let Some(w) = &done.why_short {
        eprintln!("warning: fewer bugs than asked: {w}");
    }
    if done.prompt_written {
        println!(
            "PROBLEM.md drafted from the failing tests: read it, then `fixbench validate --problem {}`",
            args.name
        );
    } else {
        println!("PROBLEM.md is yours and was left alone; the draft:\n\n{}", done.prompt);
    }
    Ok(crate::exit_codes::OK)
}
