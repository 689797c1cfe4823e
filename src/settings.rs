//! The settings of one command, built once when it starts. Priority, highest first: a flag
//! (or its environment variable, which clap reads for the flag), then `harness.toml`, then the
//! built-in default of [`defaults`], where each default is written once: the `--help` texts
//! quote them from there.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{check_timeout, Harness};
use crate::model::{CacheState, GradeIsolation, Isolation, Jobs};
use crate::store::Store;

/// The built-in defaults, each written here only.
pub mod defaults {
    pub const PROBLEMS_DIR: &str = "problems";
    pub const RESULTS_DIR: &str = "results";
    /// The project's own virtual environment, made by `scripts/setup.sh`.
    pub const VENV_PYTHON: &str = ".venv/bin/python";
    /// The Python used when there is no `.venv`.
    pub const PYTHON: &str = "python3";
    pub const AGENTS: &[&str] = &["null", "oracle"];
    pub const REPEAT: u32 = 1;
    /// One agent run's time limit, in seconds.
    pub const AGENT_TIMEOUT_S: f64 = 600.0;
    /// One grading's time limit, in seconds.
    pub const GRADE_TIMEOUT_S: f64 = 300.0;
    /// The model name agents are told to use (`{model}`).
    pub const MODEL: &str = "local";
    /// Trials at once: one, so that a trial's timings are its own (under contention they are
    /// not, and a run's numbers would depend on its neighbours).
    pub const JOBS: usize = 1;
    /// The cap on one trial's transcript, in bytes (`run.transcript_cap_mib`).
    pub const TRANSCRIPT_CAP: u64 = 20 << 20;
    /// Gradings at once: the cores (`0` in help texts means that).
    pub const GRADE_JOBS: &str = "the cores";
}

/// `text` followed by `[default: value]`, for a flag's `--help`.
pub fn help_with_default(text: &str, value: impl std::fmt::Display) -> String {
    format!("{text} [default: {value}]")
}

/// The flags that choose where a command reads and writes; `None` where not given.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config FILE`; else `./harness.toml` when present.
    pub config: Option<PathBuf>,
    pub results: Option<PathBuf>,
    pub problems_dir: Option<PathBuf>,
    /// `--python` or `FIXBENCH_PYTHON`.
    pub python: Option<PathBuf>,
}

/// What every command shares: the harness file and the folders and Python it names.
#[derive(Debug, Clone)]
pub struct Settings {
    pub harness: Harness,
    /// The results store's folder.
    pub results: PathBuf,
    pub problems_dir: PathBuf,
    /// The Python with pytest that grades.
    pub python: PathBuf,
}

impl Settings {
    pub fn load(sources: &Sources) -> Result<Settings> {
        let harness = Harness::load(sources.config.as_deref())?;
        let run = &harness.file.run;
        let results = pick(sources.results.as_deref(), run.results.as_deref(), &harness)
            .unwrap_or_else(|| PathBuf::from(defaults::RESULTS_DIR));
        let problems_dir = pick(sources.problems_dir.as_deref(), run.problems_dir.as_deref(), &harness)
            .unwrap_or_else(|| PathBuf::from(defaults::PROBLEMS_DIR));
        let python = pick(sources.python.as_deref(), run.python.as_deref(), &harness).unwrap_or_else(default_python);
        Ok(Settings { harness, results, problems_dir, python })
    }

    pub fn store(&self) -> Store {
        Store::new(&self.results)
    }

    /// The file's name as errors give it (`harness.toml` when there is none).
    pub fn source(&self) -> String {
        self.harness.source()
    }

    /// How agents are isolated: `flag`, else `run.isolation`, else the sandbox.
    pub fn isolation(&self, flag: Option<Isolation>) -> Result<Isolation> {
        self.choice(flag, self.harness.file.run.isolation.as_deref(), "run.isolation")
    }

    /// How grading is contained: `flag`, else `run.grade_isolation`, else the sandbox.
    pub fn grade_isolation(&self, flag: Option<GradeIsolation>) -> Result<GradeIsolation> {
        self.choice(flag, self.harness.file.run.grade_isolation.as_deref(), "run.grade_isolation")
    }

    /// How the prompt cache is prepared: `flag`, else `run.cache_state`, else shared.
    pub fn cache_state(&self, flag: Option<CacheState>) -> Result<CacheState> {
        self.choice(flag, self.harness.file.run.cache_state.as_deref(), "run.cache_state")
    }

    /// One grading's time limit in seconds: `flag`, else `run.grade_timeout`, else the default;
    /// one that is not a usable time limit is an error naming where it came from.
    pub fn grade_timeout(&self, flag: Option<f64>) -> Result<f64> {
        match (flag, self.harness.file.run.grade_timeout) {
            (Some(v), _) => check_timeout(v, "--grade-timeout"),
            (None, Some(v)) => check_timeout(v, &format!("{}: `run.grade_timeout`", self.source())),
            (None, None) => Ok(defaults::GRADE_TIMEOUT_S),
        }
    }

    /// The cap on a trial's transcript in bytes, or `None` when none is recorded: off with
    /// `--no-transcript` or `run.transcript = false`; `run.transcript_cap_mib` sets the cap.
    pub fn transcript_cap(&self, no_transcript: bool) -> Result<Option<u64>> {
        let run = &self.harness.file.run;
        if no_transcript || run.transcript == Some(false) {
            return Ok(None);
        }
        match run.transcript_cap_mib {
            None => Ok(Some(defaults::TRANSCRIPT_CAP)),
            Some(mib) if mib.is_finite() && mib > 0.0 => Ok(Some((mib * 1048576.0) as u64)),
            Some(mib) => Err(crate::error::Error::BadInput(format!(
                "{}: `run.transcript_cap_mib` is {mib}: give a size in MiB above 0 (e.g. 20), or `transcript = false`",
                self.source()
            ))
            .into()),
        }
    }

    /// One agent run's time limit in seconds: `flag`, else `run.timeout` (checked when the file
    /// was loaded), else the default.
    pub fn agent_timeout(&self, flag: Option<f64>) -> Result<f64> {
        match (flag, self.harness.file.run.timeout) {
            (Some(v), _) => check_timeout(v, "--timeout"),
            (None, Some(v)) => Ok(v),
            (None, None) => Ok(defaults::AGENT_TIMEOUT_S),
        }
    }

    /// The servers of the run's pool: the flags, else `run.servers`, else `run.server`; a
    /// server named twice, or both fields set, is an error naming the file.
    pub fn servers(&self, flags: &[String]) -> Result<Vec<String>> {
        let run = &self.harness.file.run;
        let list = match (flags.is_empty(), &run.server, &run.servers) {
            (false, _, _) => flags.to_vec(),
            (true, Some(_), Some(_)) => {
                return Err(crate::error::Error::BadInput(format!(
                    "{}: `run.server` and `run.servers` are both set: keep one (`servers` is a list)",
                    self.source()
                ))
                .into())
            }
            (true, Some(one), None) => vec![one.clone()],
            (true, None, Some(many)) => many.clone(),
            (true, None, None) => vec![],
        };
        if let Some(twice) = crate::config::first_repeated(&list) {
            let from = if flags.is_empty() { format!("{}: `run.servers`", self.source()) } else { "--server".into() };
            return Err(crate::error::Error::BadInput(format!(
                "{from} names {twice} twice: name each server once (one server runs as many trials as it has slots)"
            ))
            .into());
        }
        Ok(list)
    }

    /// Trials at once as asked: `flag`, else `run.jobs`, else one.
    pub fn jobs(&self, flag: Option<Jobs>) -> Jobs {
        flag.or(self.harness.file.run.jobs).unwrap_or_default()
    }

    /// Gradings at once: `flag`, else `run.grade_jobs`, else the cores; 0 is an error.
    pub fn grade_jobs(&self, flag: Option<usize>) -> Result<usize> {
        let (n, from) = match (flag, self.harness.file.run.grade_jobs) {
            (Some(n), _) => (n, "--grade-jobs".to_string()),
            (None, Some(n)) => (n, format!("{}: `run.grade_jobs`", self.source())),
            (None, None) => return Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        if n == 0 {
            return Err(crate::error::Error::BadInput(format!("{from} is 0: give 1 or more gradings at once")).into());
        }
        Ok(n)
    }

    fn choice<T: clap::ValueEnum + Default>(&self, flag: Option<T>, here: Option<&str>, field: &str) -> Result<T> {
        match (flag, here) {
            (Some(v), _) => Ok(v),
            (None, Some(s)) => self.harness.choice(s, field),
            (None, None) => Ok(T::default()),
        }
    }
}

/// A flag's path as given, else the harness file's (relative to its folder).
fn pick(flag: Option<&Path>, here: Option<&Path>, harness: &Harness) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| here.map(|p| harness.resolve(p)))
}

/// The project's `.venv` Python when there is one, else `python3` from PATH.
fn default_python() -> PathBuf {
    let venv = PathBuf::from(defaults::VENV_PYTHON);
    if venv.exists() {
        venv
    } else {
        PathBuf::from(defaults::PYTHON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_in(dir: &Path, toml: &str, sources: Sources) -> Settings {
        let file = dir.join("h.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(&Sources { config: Some(file), ..sources }).unwrap()
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "[run]\nresults = \"r\"\nproblems_dir = \"p\"\npython = \"py\"\ngrade_timeout = 9\n";
        let from_file = settings_in(dir.path(), toml, Sources::default());
        assert_eq!(from_file.results, dir.path().join("r"));
        assert_eq!(from_file.problems_dir, dir.path().join("p"));
        assert_eq!(from_file.python, dir.path().join("py"));
        assert_eq!(from_file.grade_timeout(None).unwrap(), 9.0);
        let flags = Sources { results: Some("R".into()), python: Some("PY".into()), ..Default::default() };
        let from_flags = settings_in(dir.path(), toml, flags);
        assert_eq!(from_flags.results, PathBuf::from("R"));
        assert_eq!(from_flags.python, PathBuf::from("PY"));
        assert_eq!(from_flags.grade_timeout(Some(3.0)).unwrap(), 3.0);
        let bare = settings_in(dir.path(), "", Sources::default());
        assert_eq!(bare.results, PathBuf::from(defaults::RESULTS_DIR));
        assert_eq!(bare.problems_dir, PathBuf::from(defaults::PROBLEMS_DIR));
        assert_eq!(bare.agent_timeout(None).unwrap(), defaults::AGENT_TIMEOUT_S);
        assert_eq!(bare.cache_state(None).unwrap(), CacheState::Shared);
    }

    #[test]
    fn a_bad_choice_in_the_file_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings_in(dir.path(), "[run]\ncache_state = \"tepid\"\n", Sources::default());
        let err = s.cache_state(None).unwrap_err().to_string();
        assert!(err.contains("h.toml") && err.contains("run.cache_state") && err.contains("tepid"), "{err}");
    }

    #[test]
    fn servers_come_from_the_flags_or_the_file_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let list = settings_in(dir.path(), "[run]\nservers = [\"http://a\", \"http://b\"]\n", Sources::default());
        assert_eq!(list.servers(&[]).unwrap(), ["http://a", "http://b"]);
        assert_eq!(list.servers(&["http://c".into()]).unwrap(), ["http://c"], "the flags win");
        let one = settings_in(dir.path(), "[run]\nserver = \"http://a\"\n", Sources::default());
        assert_eq!(one.servers(&[]).unwrap(), ["http://a"]);
        let both =
            settings_in(dir.path(), "[run]\nserver = \"http://a\"\nservers = [\"http://b\"]\n", Sources::default());
        let err = both.servers(&[]).unwrap_err().to_string();
        assert!(err.contains("h.toml") && err.contains("run.servers"), "{err}");
        let twice = list.servers(&["http://a".into(), "http://a".into()]).unwrap_err().to_string();
        assert!(twice.contains("--server") && twice.contains("twice"), "{twice}");
        let jobs = settings_in(dir.path(), "[run]\njobs = \"auto\"\ngrade_jobs = 3\n", Sources::default());
        assert_eq!(jobs.jobs(None), Jobs::Auto);
        assert_eq!(jobs.grade_jobs(None).unwrap(), 3);
        assert!(jobs.grade_jobs(Some(0)).unwrap_err().to_string().contains("--grade-jobs"));
    }
}
