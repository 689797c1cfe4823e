//! Agent presets shipped with fixbench (`presets/agents.toml`, embedded in the binary): how to
//! run each popular coding agent headless against the run's server with a configuration of
//! its own, where to find its binary, its version, and the usage it reports. `listing` lists
//! them for `fixbench agents`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use serde::Deserialize;

use super::usage::{self, Format};
use super::{Agent, AgentKind};

/// The shipped presets.
pub const PRESETS_TOML: &str = include_str!("../../presets/agents.toml");

/// Names a folder laid out like the project's `.agents/` (what scripts/install-agents.sh fills).
pub const AGENTS_DIR_ENV: &str = "FIXBENCH_AGENTS_DIR";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetDef {
    about: String,
    install: String,
    binary: Option<String>,
    command: Vec<String>,
    version: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    usage: Option<Format>,
    usage_file: Option<String>,
}

/// What fixbench knows of a preset agent beyond its command.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetInfo {
    pub about: String,
    pub install: String,
    /// The program looked for.
    pub binary: String,
    /// Where it was found; `None`: not installed.
    pub found: Option<PathBuf>,
    pub usage: Option<Format>,
    /// Where the usage is, relative to the agent home; `None`: the agent's stdout.
    pub usage_file: Option<String>,
}

impl PresetInfo {
    /// Why the agent cannot run, for the trial's error.
    pub fn not_installed(&self) -> Option<String> {
        self.found
            .is_none()
            .then(|| format!("not installed: {} (`{}` is not in .agents/ nor on PATH)", self.install, self.binary))
    }
}

fn defs() -> &'static BTreeMap<String, PresetDef> {
    static DEFS: OnceLock<BTreeMap<String, PresetDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        toml::from_str(PRESETS_TOML).unwrap_or_else(|e| panic!("the shipped presets/agents.toml is invalid: {e}"))
    })
}

/// A preset by name, its binary looked up in `$FIXBENCH_AGENTS_DIR`, `./.agents`,
/// `<harness_dir>/.agents`, then `PATH`.
pub fn find_near(name: &str, harness_dir: &Path) -> Result<Option<Agent>> {
    Ok(defs().get(name).map(|def| build(name, def, &search_dirs(Some(harness_dir)))))
}

pub fn names() -> Vec<String> {
    defs().keys().cloned().collect()
}

fn build(name: &str, def: &PresetDef, dirs: &[PathBuf]) -> Agent {
    let binary = def.binary.clone().unwrap_or_else(|| def.command[0].clone());
    let found = locate(&binary, dirs);
    let swap = |words: &[String]| -> Vec<String> {
        words
            .iter()
            .map(|w| match &found {
                Some(p) if *w == binary => p.to_string_lossy().into_owned(),
                _ => w.clone(),
            })
            .collect()
    };
    Agent {
        name: name.to_string(),
        kind: AgentKind::Command { template: swap(&def.command), version: def.version.as_deref().map(swap) },
        env: with_xdg_dirs(&def.env),
        timeout_s: None,
        files: def.files.iter().map(|(p, c)| (p.clone(), c.trim_start_matches('\n').to_string())).collect(),
        preset: Some(PresetInfo {
            about: def.about.clone(),
            install: def.install.clone(),
            binary,
            found,
            usage: def.usage,
            usage_file: def.usage_file.clone(),
        }),
    }
}

/// The runner points HOME at the agent home; the XDG folders follow it too, so that an
/// `XDG_CONFIG_HOME` (etc.) in the user's environment never leads an agent to the real ones.
fn with_xdg_dirs(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = env.clone();
    for (var, dir) in [
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ] {
        env.entry(var.to_string()).or_insert_with(|| format!("{{agent_home}}/{dir}"));
    }
    env
}

/// The folders searched for an agent's binary, in order: the project-local prefixes, then PATH.
pub fn search_dirs(harness_dir: Option<&Path>) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os(AGENTS_DIR_ENV).filter(|d| !d.is_empty()) {
        roots.push(cwd.join(d));
    }
    roots.push(cwd.join(".agents"));
    if let Some(h) = harness_dir {
        roots.push(cwd.join(h).join(".agents"));
    }
    let mut dirs = Vec::new();
    for root in roots {
        dirs.push(root.join("bin"));
        dirs.push(root.join("npm/node_modules/.bin"));
        dirs.push(root.join("py/bin"));
        if let Ok(entries) = std::fs::read_dir(root.join("py")) {
            let mut venvs: Vec<PathBuf> =
                entries.flatten().map(|e| e.path().join("bin")).filter(|p| p.is_dir()).collect();
            venvs.sort();
            dirs.extend(venvs);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    let mut seen = std::collections::BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// The first executable file named `binary` in `dirs` (or `binary` itself when it is a path).
pub fn locate(binary: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    use crate::sandbox::is_executable;
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return is_executable(&p).then_some(p);
    }
    dirs.iter().map(|d| d.join(binary)).find(|p| is_executable(p))
}

/// Usage the agent reported about itself (tokens, turns), read after its run from its stdout
/// log or from the file its preset names under the agent home.
pub fn usage(agent: &Agent, stdout: &Path, home: &Path) -> Option<serde_json::Value> {
    let info = agent.preset.as_ref()?;
    let format = info.usage?;
    let text = match &info.usage_file {
        None => std::fs::read_to_string(stdout).ok()?,
        Some(rel) => read_all(&home.join(rel))?,
    };
    usage::read(format, &text).and_then(|u| serde_json::to_value(u).ok())
}

/// A file's text, or the texts of a folder's files in name order.
fn read_all(p: &Path) -> Option<String> {
    if p.is_file() {
        return std::fs::read_to_string(p).ok();
    }
    let files: Vec<PathBuf> = walkdir::WalkDir::new(p)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let texts: Vec<String> = files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{check_template, expand, expand_word, Vars};

    #[test]
    fn every_shipped_preset_parses_and_uses_only_known_placeholders() {
        assert!(names().len() >= 8, "{:?}", names());
        for name in ["pi", "mini-swe-agent", "opencode", "aider", "codex", "claude", "goose", "qwen"] {
            let def = &defs()[name];
            check_template(name, &def.command).unwrap();
            for v in def.env.values().chain(def.files.keys()).chain(def.files.values()) {
                check_template(name, std::slice::from_ref(v)).unwrap();
            }
            assert!(def.command.iter().any(|w| w.contains("{prompt}")), "{name} never gets the prompt");
            assert!(!def.install.is_empty() && def.version.is_some(), "{name}");
        }
    }

    #[test]
    fn generated_config_files_are_valid_once_filled() {
        let vars = Vars {
            base_url: "http://127.0.0.1:4321/v1".into(),
            model: "local".into(),
            agent_home: "/h".into(),
            ..Default::default()
        };
        for (name, def) in defs() {
            for (path, content) in &def.files {
                let text = expand_word(content, &vars, &[]);
                let ok = match path.rsplit('.').next() {
                    Some("json") => {
                        serde_json::from_str::<serde_json::Value>(&text).map(|_| ()).map_err(|e| e.to_string())
                    }
                    Some("toml") => toml::from_str::<toml::Value>(&text).map(|_| ()).map_err(|e| e.to_string()),
                    _ => Ok(()),
                };
                ok.unwrap_or_else(|e| panic!("{name}: {path} is invalid: {e}\n{text}"));
                assert!(!text.contains("{base_url}") && !text.contains("{model}"), "{name}: {path}");
            }
        }
        let pi = expand_word(&defs()["pi"].files["pi/models.json"], &vars, &[]);
        let v: serde_json::Value = serde_json::from_str(&pi).unwrap();
        assert_eq!(v["providers"]["fixbench"]["baseUrl"], "http://127.0.0.1:4321/v1");
        assert_eq!(v["providers"]["fixbench"]["models"][0]["id"], "local");
        let claude = expand_word(&defs()["claude"].env["ANTHROPIC_BASE_URL"], &vars, &[]);
        assert_eq!(claude, "http://127.0.0.1:4321", "Claude Code adds /v1 itself");
    }

    #[test]
    fn binary_is_found_in_the_local_prefix_and_every_use_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join(".agents/py/aider/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("aider"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("aider"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dirs = vec![d.path().join(".agents/bin"), bin.clone()];
        let a = build("aider", &defs()["aider"], &dirs);
        let AgentKind::Command { template, version } = &a.kind else { panic!() };
        let path = bin.join("aider").to_string_lossy().into_owned();
        assert_eq!(template[0], "sh", "the wrapper stays");
        assert_eq!(template.iter().filter(|w| **w == path).count(), 1, "{template:?}");
        assert_eq!(version.as_ref().unwrap()[0], path);
        assert_eq!(a.preset.as_ref().unwrap().not_installed(), None);

        let missing = build("goose", &defs()["goose"], &dirs);
        let why = missing.preset.as_ref().unwrap().not_installed().unwrap();
        assert!(why.starts_with("not installed: download the goose CLI"), "{why}");
        let AgentKind::Command { template, .. } = &missing.kind else { panic!() };
        assert_eq!(template[0], "goose");
    }

    #[test]
    fn usage_is_read_from_the_file_the_preset_names() {
        let d = tempfile::tempdir().unwrap();
        let sessions = d.path().join("home/pi/sessions/--work--");
        std::fs::create_dir_all(&sessions).unwrap();
        std::fs::write(
            sessions.join("s.jsonl"),
            "{\"type\":\"message\",\"message\":{\"role\":\"assistant\",\"usage\":{\"input\":7,\"output\":3},\"stopReason\":\"stop\"}}\n",
        )
        .unwrap();
        let pi = build("pi", &defs()["pi"], &[]);
        let u = usage(&pi, &d.path().join("stdout.log"), &d.path().join("home")).unwrap();
        assert_eq!(u["input_tokens"], 7);
        assert_eq!(u["format"], "pi");
        let vars = Vars { agent_home: "/h".into(), prompt: "p".into(), ..Default::default() };
        let AgentKind::Command { template, .. } = &pi.kind else { panic!() };
        assert!(expand(template, &vars, &[]).contains(&"/h/pi/sessions".to_string()));
    }
}
