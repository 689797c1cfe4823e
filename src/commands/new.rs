//! `fixbench new NAME --from DIR`: a problem made from a working repository.

use std::path::PathBuf;

use anyhow::Result;

use crate::author::new::{make, Request};
use crate::commands::validate::GradingArgs;

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The new problem's name (its folder under the problems folder).
    pub name: String,
    /// The working repository to copy (its tests must all pass).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// What the agent may change, relative to DIR (`src/tool/`, `cli.py`). Repeatable [default: detected]
    #[arg(long, value_name = "PATH")]
    pub editable: Vec<String>,
    /// The frozen tests, with their helpers and conftest.py. Repeatable [default: detected]
    #[arg(long = "tests", value_name = "PATH")]
    pub tests: Vec<String>,
    /// A PyPI requirement of the code or its tests. Repeatable [default: pyproject.toml's dependencies and test extras]
    #[arg(long = "requires", value_name = "REQ")]
    pub requires: Vec<String>,
    /// No requirements, whatever pyproject.toml says.
    #[arg(long, conflicts_with = "requires")]
    pub no_requires: bool,
    /// An extra pytest argument for the problem (`--pytest-arg=--deselect=tests/test_x.py::test_slow`). Repeatable.
    #[arg(long = "pytest-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub pytest_args: Vec<String>,
    #[command(flatten)]
    pub grading: GradingArgs,
}

pub fn command(args: NewArgs) -> Result<i32> {
    let (settings, grader, pytest_version) = args.grading.grader()?;
    let requires = if args.no_requires {
        Some(vec![])
    } else if args.requires.is_empty() {
        None
    } else {
        Some(args.requires.clone())
    };
    let req = Request {
        name: args.name.clone(),
        from: args.from.clone(),
        problems_dir: settings.problems_dir.clone(),
        editable: args.editable.clone(),
        tests: args.tests.clone(),
        requires,
        pytest_args: args.pytest_args.clone(),
    };
    let cancel = crate::interrupt::cancel_flag();
    let t0 = std::time::Instant::now();
    let made = make(&req, grader, &pytest_version, &cancel)?;
    let m = &made.manifest;
    let list = |v: &Option<Vec<String>>| v.as_deref().unwrap_or_default().join(", ");
    println!("made problem `{}` in {} ({} files copied)", args.name, made.dir.display(), made.copied_files);
    println!("  editable    {}", list(&m.editable));
    println!("  tests       {} ({} tests, all passing, suite {:.1} s)", list(&m.test_paths), made.tests, made.suite_s);
    if !m.requires.is_empty() {
        println!("  requires    {}", m.requires.join(", "));
    }
    if !made.dropped.is_empty() {
        println!("  left out    {} (grading brings its own pytest)", made.dropped.join(", "));
    }
    println!("  took        {:.1} s", t0.elapsed().as_secs_f64());
    println!(
        "next: `fixbench inject {} --bugs 3` puts bugs in and drafts PROBLEM.md; then `fixbench validate --problem {}`",
        args.name, args.name
    );
    Ok(crate::exit_codes::OK)
}
