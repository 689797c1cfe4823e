//! Stage 3: agents. An agent is a built-in (`null`, `oracle`) or a command template run in the
//! trial's workdir. Templates are lists of words; placeholders are substituted inside each
//! word, so `{prompt}` always stays one argument and no shell ever sees it.

pub mod exec;
pub mod presets;

use std::collections::BTreeMap;

use anyhow::Result;

use crate::config::Harness;
use crate::error::Error;
use crate::store::AgentConfig;

pub const PLACEHOLDERS: &[&str] =
    &["prompt", "prompt_file", "workdir", "problem", "base_url", "model", "agent_home"];

#[derive(Debug, Clone, PartialEq)]
pub enum AgentKind {
    /// Changes nothing: grades at each problem's baseline.
    Null,
    /// Puts the reference package in place: resolves every problem.
    Oracle,
    Command { template: Vec<String>, version: Option<Vec<String>> },
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
}

impl Agent {
    pub fn to_config(&self, default_timeout: f64) -> AgentConfig {
        let command = match &self.kind {
            AgentKind::Null => vec!["builtin:null".into()],
            AgentKind::Oracle => vec!["builtin:oracle".into()],
            AgentKind::Command { template, .. } => template.clone(),
        };
        AgentConfig {
            name: self.name.clone(),
            command,
            env: self.env.clone(),
            timeout_s: self.timeout_s.unwrap_or(default_timeout),
        }
    }

    pub fn from_config(c: &AgentConfig) -> Agent {
        let kind = match c.command.first().map(String::as_str) {
            Some("builtin:null") => AgentKind::Null,
            Some("builtin:oracle") => AgentKind::Oracle,
            _ => AgentKind::Command { template: c.command.clone(), version: None },
        };
        Agent { name: c.name.clone(), kind, env: c.env.clone(), timeout_s: Some(c.timeout_s), files: vec![] }
    }

    pub fn command(name: &str, template: Vec<String>) -> Result<Agent> {
        check_template(name, &template)?;
        Ok(Agent {
            name: name.to_string(),
            kind: AgentKind::Command { template, version: None },
            env: BTreeMap::new(),
            timeout_s: None,
            files: vec![],
        })
    }
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
        "null" => return Ok(Agent { name: name.into(), kind: AgentKind::Null, env: BTreeMap::new(), timeout_s: None, files: vec![] }),
        "oracle" => return Ok(Agent { name: name.into(), kind: AgentKind::Oracle, env: BTreeMap::new(), timeout_s: None, files: vec![] }),
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
        });
    }
    if let Some(agent) = presets::find(name)? {
        return Ok(agent);
    }
    let mut known = vec!["null".to_string(), "oracle".to_string()];
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
    fn unknown_placeholder_lists_known_ones() {
        let e = check_template("x", &["{promt}".into()]).unwrap_err().to_string();
        assert!(e.contains("{promt}") && e.contains("{prompt_file}"), "{e}");
        check_template("x", &["{\"a\":1}".into(), "{prompt}".into()]).unwrap();
    }
}
