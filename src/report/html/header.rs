//! A run's provenance for the page's header: fixbench, host, server fingerprint, model,
//! agents and their versions, labels, and the shards it was merged from.

use std::collections::BTreeMap;

use super::view::RunHeader;
use crate::report::group;
use crate::store::RunRecord;

/// An address as the page shows it: without its scheme (the page holds no URL).
pub fn without_scheme(url: &str) -> String {
    url.split_once("://").map_or(url, |(_, rest)| rest).to_string()
}

pub fn build(run: &RunRecord) -> RunHeader {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| f.push((k.to_string(), v));
    let status = crate::report::runs::incomplete(run).unwrap_or_else(|| "finished".into());
    add("status", status);
    let ended = run.ended_at.map(|e| format!(" → {}", e.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default();
    add("time", format!("{}{ended}", run.started_at.format("%Y-%m-%d %H:%M UTC")));
    let commit = run.git_commit.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    add("fixbench", format!("{}{commit}", run.fixbench_version));
    let h = &run.host;
    let memory = h.memory_bytes.map(|b| format!(", {:.0} GiB", b as f64 / (1u64 << 30) as f64)).unwrap_or_default();
    add(
        "host",
        format!(
            "{} — {}, {} cores{memory}{}",
            h.hostname.as_deref().unwrap_or("?"),
            h.os,
            h.cores,
            h.cpu.as_deref().map(|c| format!(", {c}")).unwrap_or_default()
        ),
    );
    let model = group::model(run).unwrap_or_else(|| "?".into());
    let quant = group::quant(run).unwrap_or_else(|| "?".into());
    match &run.server {
        Some(s) => {
            add("model", format!("{model} {quant}"));
            add("server", format!("{} {}", without_scheme(&s.url), s.label.as_deref().unwrap_or("")));
            if let Some(kind) = s.kind {
                let version = s.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
                let why = s.kind_evidence.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                add("server kind", format!("{kind}{version}{why}"));
            }
            let short = |v: &Option<String>| v.as_deref().map_or("?".to_string(), |s| s.chars().take(12).collect());
            add(
                "fingerprint",
                format!(
                    "build {}, model sha {}, chat template sha {}, n_ctx per slot {}, slots {}",
                    s.build_info.as_deref().unwrap_or("?"),
                    short(&s.model_sha256),
                    short(&s.chat_template_sha256),
                    s.n_ctx_per_slot.map_or("?".into(), |n| n.to_string()),
                    s.total_slots.map_or("?".into(), |n| n.to_string()),
                ),
            );
            if let Some(flags) = &s.flags {
                add("flags", flags.join(" "));
            }
        }
        None => add("server", crate::report::group::NO_SERVER.into()),
    }
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &run.trials {
        let v = versions.entry(&t.agent).or_default();
        if let Some(ver) = t.agent_version.as_deref() {
            if !v.contains(&ver) {
                v.push(ver);
            }
        }
    }
    let agents: Vec<String> = run
        .config
        .agents
        .iter()
        .map(|a| match versions.get(a.name.as_str()).filter(|v| !v.is_empty()) {
            Some(v) => format!("{} {}", a.name, v.join(", ")),
            None => a.name.clone(),
        })
        .collect();
    add("agents", agents.join("; "));
    add(
        "plan",
        format!("{} problems × {} repeats, {} trials", run.config.problems.len(), run.config.repeat, run.trials.len()),
    );
    if !run.labels.is_empty() {
        add("labels", run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
    }
    if let Some(shard) = run.plan.as_ref().and_then(|p| p.shard) {
        add(
            "shard",
            format!(
                "{shard} of plan {}",
                run.plan.as_ref().map_or("", |p| &p.config_sha256[..12.min(p.config_sha256.len())])
            ),
        );
    }
    if let Some(m) = &run.merged {
        let parts: Vec<String> = m
            .runs
            .iter()
            .map(|r| {
                let shard = r.shard.map(|s| format!(" shard {s}")).unwrap_or_default();
                format!("{}{shard} on {}", r.run_id, r.host.hostname.as_deref().unwrap_or("?"))
            })
            .collect();
        add("merged from", parts.join("; "));
        if !m.missing.is_empty() {
            add("INCOMPLETE", format!("{} trial(s) of the plan missing", m.missing.len()));
        }
    }
    RunHeader { run_id: run.run_id.clone(), fields: f }
}
