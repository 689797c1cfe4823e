//! Stage 3: agents. An agent is a built-in (`null`, `oracle`) or a command template run in the
//! trial's workdir. Templates are lists of words; placeholders are substituted inside each
//! word, so `{prompt}` always stays one argument and no shell ever sees it.

pub mod listing;
pub mod presets;
pub mod usage;

use std::collections::BTreeMap;

use anyhow::Result;

use crate::config::Harness;
use crate::error::Error;
use crate::model::BuiltinAgent;
use crate::store::{AgentConfig, AgentProgram};

pub const PLACEHOLDERS: &[&str] =
    &["prompt", "prompt_file", "workdir", "problem", "base_url", "server_root", "model", "agent_home"];

pub use crate::model::BUILTIN_AGENTS as BUILTINS;

#[derive(Debug, Clone, PartialEq)]
pub enum AgentKind {
    /// Changes nothing: grades at each problem's baseline.
    Null,
    /// Puts the reference package in place: resolves every problem.
    Oracle,
    Command {
        template: Vec<String>,
        version: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub name: String,
    pub kind: AgentKind,
    pub env: BTreeMap<String, String>,
    pub timeout_s: Option<f64>,
    /// Config files written into the per-trial agent home (relative path → content); both
    /// may hold placeholders.
    pub files: Vec<(String, String)>,
    /// A shipped preset's install hint, binary lookup and usage reader; `None` otherwise.
    pub preset: Option<presets::PresetInfo>,
}

impl Agent {
    pub fn to_config(&self, default_timeout: f64) -> AgentConfig {
        AgentConfig {
            name: self.name.clone(),
            program: self.program(),
            env: self.env.clone(),
            timeout_s: self.timeout_s.unwrap_or(default_timeout),
        }
    }

    /// What the agent runs, as a run's configuration stores it.
    pub fn program(&self) -> AgentProgram {
        match &self.kind {
            AgentKind::Null => AgentProgram::Builtin(BuiltinAgent::Null),
            AgentKind::Oracle => AgentProgram::Builtin(BuiltinAgent::Oracle),
            AgentKind::Command { template, .. } => AgentProgram::Command(template.clone()),
        }
    }

    pub fn from_config(c: &AgentConfig) -> Agent {
        let kind = match &c.program {
            AgentProgram::Builtin(BuiltinAgent::Null) => AgentKind::Null,
            AgentProgram::Builtin(BuiltinAgent::Oracle) => AgentKind::Oracle,
            AgentProgram::Command(template) => AgentKind::Command { template: template.clone(), version: None },
        };
        Agent {
            name: c.name.clone(),
            kind,
            env: c.env.clone(),
            timeout_s: Some(c.timeout_s),
            files: vec![],
            preset: None,
        }
    }

    pub fn command(name: &str, template: Vec<String>) -> Result<Agent> {
        check_template(name, &template)?;
        Ok(Agent {
            name: name.to_string(),
            kind: AgentKind::Command { template, version: None },
            env: BTreeMap::new(),
            timeout_s: None,
            files: vec![],
            preset: None,
        })
    }

    /// Runs the agent's version command, if it has one, with its environment filled in for a
    /// throwaway home and folder (agents write caches and settings on any start), inside
    /// `sandbox` when given (the probe is the agent's own code, as untrusted as a trial);
    /// returns the version number in its first line of output, or the line.
    pub fn probe_version(
        &self,
        timeout: std::time::Duration,
        sandbox: Option<&crate::sandbox::Sandbox>,
    ) -> Option<String> {
        let AgentKind::Command { version: Some(argv), .. } = &self.kind else { return None };
        let scratch = tempfile::tempdir().ok()?;
        let home = scratch.path().join("home");
        let work = scratch.path().join("work");
        std::fs::create_dir_all(&home).ok()?;
        std::fs::create_dir_all(&work).ok()?;
        let vars = Vars {
            agent_home: home.to_string_lossy().into_owned(),
            workdir: work.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let mut env: BTreeMap<String, String> =
            self.env.iter().map(|(k, v)| (k.clone(), expand_word(v, &vars, &[]))).collect();
        env.insert("HOME".into(), vars.agent_home.clone());
        let spec = crate::exec::ExecSpec {
            argv: expand(argv, &vars, &[]),
            cwd: work,
            env,
            env_clear: false,
            timeout,
            stdout: scratch.path().join("out"),
            stderr: scratch.path().join("err"),
            log_cap: 64 * 1024,
            inherit_fd: None,
        };
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let outcome = match sandbox {
            Some(sb) => sb.run(spec.clone(), scratch.path(), &cancel),
            None => crate::exec::run(&spec, &cancel),
        };
        if outcome.exit_code != Some(0) {
            return None;
        }
        // Some agents (pi) print their version on stderr.
        let first_line = |p: &std::path::Path| {
            let text = std::fs::read_to_string(p).ok()?;
            text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
        };
        let line = first_line(&spec.stdout).or_else(|| first_line(&spec.stderr))?;
        Some(version_in(&line).unwrap_or(line))
    }
}

/// The first word of `line` that looks like a version number (`1.2`, `v0.73.1`, `2.4.6.`).
fn version_in(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .map(|w| w.trim_start_matches('v').trim_end_matches('.'))
        .find(|w| {
            let mut parts = w.split('.');
            let first_ok = parts.next().is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            let second_ok = parts.next().is_some_and(|p| p.starts_with(|c: char| c.is_ascii_digit()));
            first_ok && second_ok
        })
        .map(String::from)
}

/// Values for a template's placeholders.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub prompt: String,
    pub prompt_file: String,
    pub workdir: String,
    pub problem: String,
    pub base_url: String,
    pub model: String,
    pub agent_home: String,
}

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "prompt" => &self.prompt,
            "prompt_file" => &self.prompt_file,
            "workdir" => &self.workdir,
            "problem" => &self.problem,
            "base_url" => &self.base_url,
            "server_root" => {
                let url = self.base_url.trim_end_matches('/');
                url.strip_suffix("/v1").unwrap_or(url)
            }
            "model" => &self.model,
            "agent_home" => &self.agent_home,
            _ => return None,
        })
    }
}

/// Substitutes `{name}` placeholders in one word. `keep` names placeholders left as they are.
pub fn expand_word(word: &str, vars: &Vars, keep: &[&str]) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((name, close)) if !keep.contains(&name) && vars.get(name).is_some() => {
                out.push_str(vars.get(name).unwrap());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn expand(template: &[String], vars: &Vars, keep: &[&str]) -> Vec<String> {
    template.iter().map(|w| expand_word(w, vars, keep)).collect()
}

/// Rejects `{name}` placeholders fixbench does not know, listing those it does.
pub fn check_template(agent: &str, words: &[String]) -> Result<()> {
    for w in words {
        let mut rest = w.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            let is_ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if is_ident && !PLACEHOLDERS.contains(&name) {
                return Err(Error::BadInput(format!(
                    "agent `{agent}`: unknown placeholder `{{{name}}}` in its command; known placeholders are {}",
                    PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
                ))
                .into());
            }
            rest = &after[close + 1..];
        }
    }
    Ok(())
}

/// Finds an agent by name: the built-ins, then `harness.toml`, then the shipped presets.
pub fn resolve(name: &str, harness: &Harness) -> Result<Agent> {
    match name {
        "null" => {
            return Ok(Agent {
                name: name.into(),
                kind: AgentKind::Null,
                env: BTreeMap::new(),
                timeout_s: None,
                files: vec![],
                preset: None,
            })
        }
        "oracle" => {
            return Ok(Agent {
                name: name.into(),
                kind: AgentKind::Oracle,
                env: BTreeMap::new(),
                timeout_s: None,
                files: vec![],
                preset: None,
            })
        }
        _ => {}
    }
    if let Some(def) = harness.file.agents.get(name) {
        let template = def.command.words()?;
        check_template(name, &template)?;
        let version = def.version.as_ref().map(|v| v.words()).transpose()?;
        return Ok(Agent {
            name: name.into(),
            kind: AgentKind::Command { template, version },
            env: def.env.clone(),
            timeout_s: def.timeout,
            files: def.files.clone().into_iter().collect(),
            preset: None,
        });
    }
    if let Some(agent) = presets::find_near(name, &harness.base_dir)? {
        return Ok(agent);
    }
    let mut known: Vec<String> = BUILTINS.iter().map(|b| b.to_string()).collect();
    known.extend(harness.file.agents.keys().cloned());
    known.extend(presets::names());
    Err(Error::BadInput(format!(
        "unknown agent `{name}`: known agents are {} (define more in harness.toml, or use --cmd)",
        known.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_inside_words_and_stay_one_argument() {
        let vars = Vars { prompt: "fix it; rm -rf /".into(), workdir: "/w".into(), ..Default::default() };
        let t: Vec<String> = ["agent", "--cwd={workdir}", "{prompt}", "{\"json\": 1}"].map(String::from).to_vec();
        assert_eq!(expand(&t, &vars, &[]), ["agent", "--cwd=/w", "fix it; rm -rf /", "{\"json\": 1}"]);
        assert_eq!(expand(&t, &vars, &["prompt"])[2], "{prompt}");
    }

    #[test]
    fn version_number_is_picked_out_of_banners() {
        assert_eq!(version_in("0.73.1").as_deref(), Some("0.73.1"));
        assert_eq!(version_in("codex-cli 0.169.0").as_deref(), Some("0.169.0"));
        assert_eq!(version_in("2.1.197 (Claude Code)").as_deref(), Some("2.1.197"));
        assert_eq!(version_in("This is mini-swe-agent version 2.4.6.").as_deref(), Some("2.4.6"));
        assert_eq!(version_in("my-agent build five"), None);
    }

    #[test]
    fn server_root_is_the_base_url_without_v1() {
        let vars = Vars { base_url: "http://127.0.0.1:9/v1".into(), ..Default::default() };
        assert_eq!(expand_word("{server_root}|{base_url}", &vars, &[]), "http://127.0.0.1:9|http://127.0.0.1:9/v1");
    }

    #[test]
    fn unknown_placeholder_lists_known_ones() {
        let e = check_template("x", &["{promt}".into()]).unwrap_err().to_string();
        assert!(e.contains("{promt}") && e.contains("{prompt_file}"), "{e}");
        check_template("x", &["{\"a\":1}".into(), "{prompt}".into()]).unwrap();
    }
}
