//! `harness.toml`: agents and defaults for `fixbench run`. Priority, highest first:
//! command-line flag > environment variable > `harness.toml` > built-in default.
//! Relative paths in the file are relative to the file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::error::Error;

pub const FILE_NAME: &str = "harness.toml";

/// The longest time limit accepted anywhere (a week): past it, a `Duration` or a deadline
/// computed from it is no longer meaningful.
pub const MAX_TIMEOUT_S: f64 = 7.0 * 24.0 * 3600.0;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnessFile {
    #[serde(default)]
    pub run: RunDefaults,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentDef>,
    #[serde(default)]
    pub server: ServerDefaults,
    #[serde(default)]
    pub sandbox: SandboxDefaults,
    /// `[prices."<model>"]`: what a model's tokens cost, for `fixbench route`.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
}

/// `[prices."<model>"]`: dollars per million tokens. `<model>` is matched against a run's
/// model: its `model` label, else the model the server reported, else the `--model` name.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens not read from the provider's cache.
    pub input: f64,
    /// Prompt tokens read from the cache [default: `input`, for a provider with no discount].
    pub cached_input: Option<f64>,
    /// Generated tokens.
    pub output: f64,
}

impl Price {
    /// The price of a cached prompt token, per million.
    pub fn cached(&self) -> f64 {
        self.cached_input.unwrap_or(self.input)
    }
}

/// `[sandbox]`: what the agent sandbox shows besides the system and the trial's own folders.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxDefaults {
    /// Folders shown read-only to every sandboxed agent (an agent's install prefix that
    /// fixbench cannot find from its command and PATH).
    #[serde(default)]
    pub ro: Vec<PathBuf>,
}

/// Defaults for `fixbench run` flags.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    pub problems_dir: Option<PathBuf>,
    pub results: Option<PathBuf>,
    pub agents: Option<Vec<String>>,
    pub problems: Option<Vec<String>>,
    pub repeat: Option<u32>,
    pub timeout: Option<f64>,
    pub python: Option<PathBuf>,
    pub server: Option<String>,
    /// Several servers of one model, shared by the run's trials (instead of `server`).
    pub servers: Option<Vec<String>>,
    /// Trials at once: a number or `"auto"`.
    pub jobs: Option<crate::model::Jobs>,
    /// Gradings at once (pytest processes).
    pub grade_jobs: Option<usize>,
    pub isolation: Option<String>,
    /// How pytest is contained while it grades (`sandbox` or `none`).
    pub grade_isolation: Option<String>,
    /// Time limit of one grading, in seconds.
    pub grade_timeout: Option<f64>,
    pub cache_state: Option<String>,
    /// Whether the proxy records each trial's conversation (`transcript.jsonl`; default true).
    pub transcript: Option<bool>,
    /// The cap on one trial's transcript, in MiB (default 20).
    pub transcript_cap_mib: Option<f64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDefaults {
    /// The llama-server binary used by sweeps when a configuration names none.
    pub binary: Option<PathBuf>,
}

/// An agent defined in `harness.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    /// A command template: a string split like a shell would (no shell runs it) or a list.
    pub command: CommandTemplate,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub timeout: Option<f64>,
    /// Files written into the per-trial agent home before each run (relative path → content).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// A command printing the agent's version, e.g. `["pi", "--version"]`.
    pub version: Option<CommandTemplate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandTemplate {
    Line(String),
    Words(Vec<String>),
}

impl CommandTemplate {
    pub fn words(&self) -> Result<Vec<String>> {
        match self {
            CommandTemplate::Words(w) => Ok(w.clone()),
            CommandTemplate::Line(line) => split_command(line),
        }
    }
}

/// Splits a command line into words as a POSIX shell would, without running a shell.
pub fn split_command(line: &str) -> Result<Vec<String>> {
    let words = shlex::split(line)
        .ok_or_else(|| Error::BadInput(format!("cannot split the command `{line}` into words: check its quotes")))?;
    if words.is_empty() {
        return Err(Error::BadInput("the agent command is empty".into()).into());
    }
    Ok(words)
}

/// `secs` as a time limit, or a bad-input error naming `what` (a flag, or a file and
/// its key): finite, above 0 and at most [`MAX_TIMEOUT_S`].
pub fn check_timeout(secs: f64, what: &str) -> Result<f64> {
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_S {
        return Ok(secs);
    }
    Err(Error::BadInput(format!(
        "{what} is {secs:?}: give a time limit in seconds, above 0 and at most {MAX_TIMEOUT_S} (a week)"
    ))
    .into())
}

/// An agent's name becomes part of its trials' folder names: letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit. The error completes "the agent's name …".
pub fn check_agent_name(name: &str) -> std::result::Result<(), String> {
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_start && ok_rest {
        Ok(())
    } else {
        Err(format!(
            "`{name}` may hold only letters, digits, `.`, `_` and `-`, and must start with a letter or digit (it names the trials' folders)"
        ))
    }
}

/// A path that stays inside the folder it is joined to: relative, no `..`, not empty. The
/// error completes "… which …".
pub fn check_relative_path(rel: &str) -> std::result::Result<(), String> {
    use std::path::Component;
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err("is empty".into());
    }
    if p.is_absolute() {
        return Err("is absolute".into());
    }
    if !p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err("leaves the folder with `..`".into());
    }
    Ok(())
}

/// The first name that `names` holds twice.
pub fn first_repeated(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::BTreeSet::new();
    names.iter().find(|n| !seen.insert(n.as_str())).map(String::as_str)
}

/// A loaded `harness.toml` and the folder its relative paths are relative to.
#[derive(Debug, Default, Clone)]
pub struct Harness {
    pub file: HarnessFile,
    pub path: Option<PathBuf>,
    pub base_dir: PathBuf,
}

impl Harness {
    /// Loads `explicit` when given (it must exist), else `./harness.toml` when present.
    pub fn load(explicit: Option<&Path>) -> Result<Harness> {
        let path = match explicit {
            Some(p) => {
                if !p.is_file() {
                    return Err(Error::BadInput(format!(
                        "config file {} does not exist: fix the --config path",
                        p.display()
                    ))
                    .into());
                }
                Some(p.to_path_buf())
            }
            None => Some(PathBuf::from(FILE_NAME)).filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Harness { base_dir: PathBuf::from("."), ..Default::default() });
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
        let file = parse(&text, &path)?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
        let harness = Harness { file, path: Some(path), base_dir };
        harness.check()?;
        Ok(harness)
    }

    /// Checks what parsing alone cannot: time limits, non-empty lists, each agent's name,
    /// command and generated files' paths. Each error names the file and the key.
    fn check(&self) -> Result<()> {
        let src = self.source();
        let bad = |msg: String| -> Result<()> { Err(Error::BadInput(format!("{src}: {msg}")).into()) };
        let run = &self.file.run;
        if let Some(t) = run.timeout {
            check_timeout(t, &format!("{src}: `run.timeout`"))?;
        }
        if run.repeat == Some(0) {
            return bad("`run.repeat` is 0: make it at least 1".into());
        }
        if run.agents.as_ref().is_some_and(|a| a.is_empty()) {
            return bad(
                "`run.agents` is empty: list at least one agent (e.g. [\"null\", \"oracle\"]) or remove the key".into(),
            );
        }
        for (key, names) in [("run.agents", &run.agents), ("run.problems", &run.problems)] {
            if let Some(twice) = first_repeated(names.as_deref().unwrap_or_default()) {
                return bad(format!("`{key}` names `{twice}` twice: name each once"));
            }
        }
        for (model, price) in &self.file.prices {
            let fields =
                [("input", Some(price.input)), ("cached_input", price.cached_input), ("output", Some(price.output))];
            for (field, value) in fields {
                if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                    return bad(format!(
                        "`prices.\"{model}\".{field}` is {v}: give dollars per million tokens, 0 or more"
                    ));
                }
            }
        }
        for (name, def) in &self.file.agents {
            let key = format!("[agents.\"{name}\"]");
            if crate::model::BUILTIN_AGENTS.contains(&name.as_str()) {
                return bad(format!("{key}: `{name}` is a built-in agent's name: give your agent another name"));
            }
            if let Err(why) = check_agent_name(name) {
                return bad(format!("{key}: the agent's name {why}"));
            }
            if let Some(t) = def.timeout {
                check_timeout(t, &format!("{src}: `agents.{name}.timeout`"))?;
            }
            for (field, template) in [("command", Some(&def.command)), ("version", def.version.as_ref())] {
                let Some(template) = template else { continue };
                let words = match template {
                    CommandTemplate::Words(w) => w.clone(),
                    CommandTemplate::Line(line) => shlex::split(line).unwrap_or_else(|| vec![String::new()]),
                };
                if words.first().map_or(true, |w| w.trim().is_empty()) {
                    return bad(format!(
                        "`agents.{name}.{field}` is empty or does not split into words: give the program and its arguments, \
                         e.g. \"my-agent --message {{prompt}}\" (check its quotes)"
                    ));
                }
            }
            for rel in def.files.keys() {
                if let Err(why) = check_relative_path(rel) {
                    return bad(format!("`agents.{name}.files` has the key `{rel}`, which {why}: use a path inside the agent's home, like \"config/settings.json\""));
                }
            }
        }
        Ok(())
    }

    /// The file's name as errors should give it (`harness.toml` when there is none).
    pub fn source(&self) -> String {
        self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| FILE_NAME.into())
    }

    /// `s`, this file's value of `field`, as one of `T`'s names; else an error naming the file,
    /// the field and the choices.
    pub fn choice<T: clap::ValueEnum>(&self, s: &str, field: &str) -> anyhow::Result<T> {
        T::from_str(s, false).map_err(|_| {
            let choices: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|v| v.get_name().to_string())
                .collect();
            Error::BadInput(format!("{}: `{field}` is `{s}`; expected one of {}", self.source(), choices.join(", ")))
                .into()
        })
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Parses TOML into `T`, turning errors into "file: line L, column C: what was expected".
pub fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::BadInput(describe_toml_error(&e, text, path)).into())
}

pub fn describe_toml_error(e: &toml::de::Error, text: &str, path: &Path) -> String {
    let msg = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{}: line {line}, column {col}: {msg}", path.display())
        }
        None => format!("{}: {msg}", path.display()),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[run]\nrepeat = 2\nrepaet = 3\n";
        let err = parse::<HarnessFile>(text, Path::new("harness.toml")).unwrap_err().to_string();
        assert!(err.contains("harness.toml: line 3, column 1"), "{err}");
        assert!(err.contains("repaet"), "{err}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse::<HarnessFile>("[run\n", Path::new("h.toml")).unwrap_err().to_string();
        assert!(err.starts_with("h.toml: line 1"), "{err}");
    }

    fn load(text: &str) -> Result<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        std::fs::write(&p, text).unwrap();
        Harness::load(Some(&p))
    }

    #[test]
    fn prices_parse_and_cached_input_defaults_to_input() {
        let h = load("[prices.\"gpt-x\"]\ninput = 1.25\ncached_input = 0.125\noutput = 10\n[prices.local]\ninput = 0\noutput = 0\n")
            .unwrap();
        let p = h.file.prices["gpt-x"];
        assert_eq!((p.input, p.cached(), p.output), (1.25, 0.125, 10.0));
        assert_eq!(h.file.prices["local"].cached(), 0.0);
    }

    #[test]
    fn bad_prices_name_the_file_and_field() {
        let err = load("[prices.m]\ninput = -1\noutput = 2\n").unwrap_err();
        assert_eq!(crate::error::exit_code_for(&err), crate::exit_codes::BAD_INPUT);
        let msg = err.to_string();
        assert!(msg.contains("harness.toml: `prices.\"m\".input` is -1") && msg.contains("0 or more"), "{msg}");
        let msg = load("[prices.m]\ninput = 1\noutput = 2\ncache = 1\n").unwrap_err().to_string();
        assert!(msg.contains("harness.toml: line 4") && msg.contains("unknown field `cache`"), "{msg}");
        let msg = load("[prices.m]\ninput = 1\n").unwrap_err().to_string();
        assert!(msg.contains("missing field `output`"), "{msg}");
    }

    #[test]
    fn command_line_splits_like_a_shell() {
        let w = split_command("agent --msg '{prompt}' -x \"a b\"").unwrap();
        assert_eq!(w, ["agent", "--msg", "{prompt}", "-x", "a b"]);
        assert!(split_command("agent 'unclosed").is_err());
    }
}
