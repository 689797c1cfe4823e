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
        "flags": s.flags,
    })
}
