//! `fixbench validate`: check every problem (or those named) and print a table or JSON;
//! exits non-zero when one is not sound.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use comfy_table::Cell;

use crate::error::Error;
use crate::grade::Grader;
use crate::settings::{defaults, help_with_default, Settings, Sources};
use crate::validate::{validate, ProblemReport};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// A problem to check (default: all). Repeatable.
    #[arg(long = "problem", value_name = "NAME")]
    pub problems: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub grading: GradingArgs,
}

/// The flags of the commands that run problems' suites without agents (validate, new, inject).
#[derive(Debug, clap::Args)]
pub struct GradingArgs {
    #[arg(long, value_name = "DIR", help = help_with_default("The folder holding the problems", format!("harness.toml's run.problems_dir, else {}", defaults::PROBLEMS_DIR)))]
    pub problems_dir: Option<PathBuf>,
    #[arg(long, env = "FIXBENCH_PYTHON", value_name = "PATH", help = help_with_default("The Python (with pytest) used to run the suites", defaults::VENV_PYTHON))]
    pub python: Option<PathBuf>,
    /// The harness config file [default: ./harness.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "SECS", help = help_with_default("Time limit of one grading, in seconds", format!("run.grade_timeout, else {}", defaults::GRADE_TIMEOUT_S)))]
    pub grade_timeout: Option<f64>,
    /// How pytest is contained while it runs a suite [default: sandbox]
    #[arg(long, value_enum, value_name = "ISOLATION")]
    pub grade_isolation: Option<crate::model::GradeIsolation>,
}

impl GradingArgs {
    /// The settings, a checked grader and its pytest's version.
    pub fn grader(&self) -> Result<(Settings, Grader, String)> {
        let settings = Settings::load(&Sources {
            config: self.config.clone(),
            results: None,
            problems_dir: self.problems_dir.clone(),
            python: self.python.clone(),
        })?;
        let timeout = Duration::from_secs_f64(settings.grade_timeout(self.grade_timeout)?);
        let isolation = settings.grade_isolation(self.grade_isolation)?;
        let sandbox =
            crate::grade::sandbox_for(isolation, &settings.problems_dir, &settings.results, &settings.harness, true)?;
        let grader = Grader::new(settings.python.clone(), timeout, sandbox);
        let pytest_version = grader.check(None)?;
        Ok((settings, grader, pytest_version))
    }
}

pub fn command(args: ValidateArgs) -> Result<i32> {
    let (settings, grader, pytest_version) = args.grading.grader()?;
    let problems = crate::validate::loadable(&settings.problems_dir, &args.problems)?;
    let cancel = crate::interrupt::cancel_flag();
    let grader = grader.with_environments(
        &problems.iter().collect::<Vec<_>>(),
        &pytest_version,
        &crate::grade::cache_root()?,
        &cancel,
        &mut |note| eprintln!("{note}"),
    )?;
    let reports = validate(&settings.problems_dir, &args.problems, &grader, &cancel)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "problems": reports }))?);
    } else {
        print!("{}", table(&reports));
        for r in &reports {
            for w in &r.warnings {
                eprintln!("warning: problem `{}`: {w}", r.problem);
            }
        }
    }
    let bad: Vec<&ProblemReport> = reports.iter().filter(|r| !r.ok).collect();
    if bad.is_empty() {
        return Ok(crate::exit_codes::OK);
    }
    let why: Vec<String> = bad.iter().map(|r| format!("{}: {}", r.problem, r.reasons.join("; "))).collect();
    Err(Error::CheckFailed(
        format!("{} problem(s) are not sound:\n  {}", bad.len(), why.join("\n  ")),
        crate::exit_codes::VALIDATION_FAILED,
    )
    .into())
}

fn table(reports: &[ProblemReport]) -> String {
    let mut t = crate::report::table::new_table();
    t.set_header(["problem", "difficulty", "tests", "starter", "reference", "bugs caught", "suite", "verdict"]);
    for r in reports {
        let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let caught = r.bugs.iter().filter(|b| !b.caught_by.is_empty()).count();
        let caught = if r.bugs_checked { format!("{caught}/{}", r.bugs.len()) } else { "not checked".into() };
        t.add_row([
            Cell::new(&r.problem),
            Cell::new(r.difficulty.as_deref().unwrap_or("-")),
            Cell::new(opt(r.tests)),
            Cell::new(format!("{}/{} (baseline {})", opt(r.starter_passed), opt(r.tests), opt(r.baseline))),
            Cell::new(format!("{}/{}", opt(r.reference_passed), opt(r.tests))),
            Cell::new(caught),
            Cell::new(match r.suite_s {
                Some(s) if s > crate::validate::SLOW_SUITE_S => format!("{s:.1} s (slow)"),
                Some(s) => format!("{s:.1} s"),
                None => "-".into(),
            }),
            Cell::new(if r.ok { "ok".to_string() } else { format!("FAIL: {}", r.reasons.join("\n")) }),
        ]);
    }
    format!("{t}\n")
}
