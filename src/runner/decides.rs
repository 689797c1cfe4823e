//! What decides a run's results, hashed: the plan record that lets shards of one plan, run on
//! different machines, be told apart from runs of another and merged (`fixbench merge`).

use anyhow::Result;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::Plan;
use crate::store::{PlanRecord, ServerInfo};

/// The plan record of `plan` against `server` (the pool's first, as the run records it).
pub fn plan_record(plan: &Plan, server: Option<&ServerInfo>) -> Result<PlanRecord> {
    let decides = decides(plan, server)?;
    Ok(PlanRecord {
        config_sha256: hex::encode(Sha256::digest(serde_json::to_vec(&decides)?)),
        decides,
        trials: plan.planned().iter().map(|k| k.id()).collect(),
        shard: plan.shard,
    })
}

/// What decides a trial's result, and nothing that only says where it ran: problems by the
/// hash of their files (not their folder), agents as configured with their versions, the
/// limits, isolation, cache state, model name, and the server's model file, template, build,
/// context and flags (not its URL, nor how many slots it has).
pub fn decides(plan: &Plan, server: Option<&ServerInfo>) -> Result<Value> {
    let mut problems = Map::new();
    for p in &plan.problems {
        problems.insert(p.name.clone(), Value::String(p.fingerprint()?));
    }
    let mut agents = Map::new();
    for a in &plan.agents {
        let config = a.to_config(plan.timeout_s);
        agents.insert(
            a.name.clone(),
            json!({
                "program": config.program,
                "env": config.env,
                "timeout_s": config.timeout_s,
                "version": plan.agent_versions.get(&a.name).cloned().flatten(),
            }),
        );
    }
    Ok(json!({
        "problems": problems,
        "agents": agents,
        "repeat": plan.repeat,
        "timeout_s": plan.timeout_s,
        "grade_timeout_s": plan.grade_timeout_s,
        "isolation": plan.isolation,
        "grade_isolation": if plan.grade_sandbox.is_some() { "sandbox" } else { "none" },
        "cache_state": plan.cache_state,
        "model": plan.model,
        "server": server.map(server_fingerprint),
    }))
}

/// The server as far as it decides results: which model file (its sha256, else its name and
/// size, never its path), chat template, build, context per slot, and flags.
fn server_fingerprint(s: &ServerInfo) -> Value {
    let file_name = s.model_path.as_deref().map(|p| p.rsplit('/').next().unwrap_or(p).to_string());
    let model = match &s.model_sha256 {
        Some(sha) => json!({ "sha256": sha }),
        None => json!({ "file": file_name, "size_bytes": s.model_size_bytes }),
    };
    json!({
        "model": model,
        "chat_template_sha256": s.chat_template_sha256,
        "build": s.build_info,
        "n_ctx_per_slot": s.n_ctx_per_slot,
        "flags": s.flags.as_deref().map(portable_flags),
    })
}

/// The flags a sweep started its server with, less what names this machine: the program's
/// path is left out, and a flag that takes a file keeps only the file's name (the model is
/// known by its sha256 already).
fn portable_flags(flags: &[String]) -> Vec<String> {
    const FILE_FLAGS: &[&str] = &[
        "-m",
        "--model",
        "-md",
        "--model-draft",
        "-mm",
        "--mmproj",
        "--lora",
        "--slot-save-path",
        "--chat-template-file",
        "--log-file",
        "--grammar-file",
        "-jf",
        "--json-schema-file",
        "--control-vector",
        "--api-key-file",
        "--ssl-key-file",
        "--ssl-cert-file",
        "-lcs",
        "--lookup-cache-static",
        "-lcd",
        "--lookup-cache-dynamic",
        "--path",
    ];
    let file_name = |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or(p).to_string();
    let mut out = Vec::new();
    let mut words = flags.iter().enumerate().peekable();
    while let Some((i, f)) = words.next() {
        if i == 0 && !f.starts_with('-') {
            continue; // the program
        }
        if let Some((name, value)) = f.split_once('=').filter(|(n, _)| FILE_FLAGS.contains(n)) {
            out.push(format!("{name}={}", file_name(value)));
            continue;
        }
        out.push(f.clone());
        if FILE_FLAGS.contains(&f.as_str()) {
            if let Some((_, value)) = words.next() {
                out.push(file_name(value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_flags_are_kept_without_this_machines_paths() {
        let flags: Vec<String> = [
            "/home/a/.cache/fixbench/llama-server-0.3.36/bin/llama-server",
            "-m",
            "/home/a/.cache/fixbench/models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "-np",
            "2",
            "--slot-save-path=/tmp/x/slots/",
            "--metrics",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            portable_flags(&flags),
            ["-m", "SmolLM2-135M-Instruct.Q4_1.gguf", "-np", "2", "--slot-save-path=slots", "--metrics"]
        );
    }
}
