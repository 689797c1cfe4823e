//! `fixbench agents`' list: every built-in, harness.toml agent and preset, where its program
//! is, and its version, probed in the agent sandbox as a trial would run it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::presets::{find_near, locate, names, search_dirs};
use super::{Agent, AgentKind};
use crate::model::Isolation;
use crate::sandbox;
use crate::settings::Settings;

/// One line of `fixbench agents`.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub name: String,
    /// `built-in`, `preset` or `harness.toml`.
    pub source: String,
    /// The command template, quoted like a shell would.
    pub command: String,
    pub installed: bool,
    /// Where the binary was found.
    pub path: Option<String>,
    pub version: Option<String>,
    /// How to install it (presets).
    pub install: Option<String>,
    pub about: Option<String>,
}

/// Every built-in, harness.toml agent and preset (a harness agent hides the preset it names),
/// with versions probed in parallel, under `isolation` as a run's are. Where the sandbox cannot
/// start, versions are not probed (a note says why): never unisolated unless asked.
pub fn list(settings: &Settings, isolation: Isolation) -> Result<Vec<Listing>> {
    let harness = &settings.harness;
    let mut agents: Vec<(Agent, &str)> = Vec::new();
    for name in ["null", "oracle"] {
        agents.push((super::resolve(name, harness)?, "built-in"));
    }
    for name in harness.file.agents.keys() {
        agents.push((super::resolve(name, harness)?, "harness.toml"));
    }
    for name in names() {
        if !harness.file.agents.contains_key(&name) {
            if let Some(a) = find_near(&name, &harness.base_dir)? {
                agents.push((a, "preset"));
            }
        }
    }
    let dirs = search_dirs(Some(&harness.base_dir));
    let (sandbox, may_probe) =
        match sandbox::for_harness(isolation, &settings.problems_dir, &settings.results, harness, true) {
            Ok(sb) => (sb, true),
            Err(e) => {
                eprintln!("note: agent versions not probed: {e:#}");
                (None, false)
            }
        };
    let sandbox = sandbox.as_ref();
    let versions: Vec<Option<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .iter()
            .map(|(a, _)| {
                let installed = may_probe && binary_path(a, &dirs).is_some();
                s.spawn(move || if installed { a.probe_version(Duration::from_secs(30), sandbox) } else { None })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    Ok(agents
        .iter()
        .zip(versions)
        .map(|((a, source), version)| {
            let path = binary_path(a, &dirs);
            let command = match &a.kind {
                AgentKind::Null => "builtin:null".to_string(),
                AgentKind::Oracle => "builtin:oracle".to_string(),
                AgentKind::Command { template, .. } => {
                    shlex::try_join(template.iter().map(String::as_str)).unwrap_or_else(|_| template.join(" "))
                }
            };
            Listing {
                name: a.name.clone(),
                source: source.to_string(),
                command,
                installed: matches!(a.kind, AgentKind::Null | AgentKind::Oracle) || path.is_some(),
                path: path.map(|p| p.to_string_lossy().into_owned()),
                version,
                install: a.preset.as_ref().map(|p| p.install.clone()),
                about: a.preset.as_ref().map(|p| p.about.clone()).or_else(|| match a.kind {
                    AgentKind::Null => Some("changes nothing: grades each problem at its baseline".into()),
                    AgentKind::Oracle => Some("puts the reference fix in place: resolves every problem".into()),
                    _ => None,
                }),
            }
        })
        .collect())
}

/// Where a command agent's program is: the preset's lookup, or the first word on PATH.
fn binary_path(a: &Agent, dirs: &[PathBuf]) -> Option<PathBuf> {
    match (&a.kind, &a.preset) {
        (AgentKind::Command { .. }, Some(p)) => p.found.clone(),
        (AgentKind::Command { template, .. }, None) => locate(&template[0], dirs),
        _ => None,
    }
}
