//! Real agents through fixbench: pi (npm) and mini-swe-agent (PyPI), installed by
//! `scripts/install-agents.sh` into `.agents/`, each run by its shipped preset on a shipped
//! problem against a real llama-server with SmolLM2 behind the recording proxy. SmolLM2 fixes
//! nothing; the trial must run, be graded, record the agent's version and show its requests,
//! and the usage the agent reports must agree with what the proxy saw.
//!
//! The agents are looked up in `$FIXBENCH_AGENTS_DIR` (default: the repo's `.agents`); when
//! one is missing the test fails and names the script that installs it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::llama::LlamaServer;
use crate::util::*;

/// The per-trial time limit: enough for SmolLM2 on two cores to answer pi's and mini's first
/// prompts (about 1,300 tokens) in full, short enough for CI.
const TIMEOUT_S: &str = "120";

/// One generation thread: the agent's own process needs the other core (with two threads
/// on two busy cores generation slows tenfold; docs/agents-verified.md).
const SERVER_FLAGS: &[&str] = &["-c", "8192", "-t", "1"];

fn agents_dir() -> PathBuf {
    std::env::var_os("FIXBENCH_AGENTS_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".agents"))
}

fn require(binary: &str) -> PathBuf {
    let p = agents_dir().join("bin").join(binary);
    assert!(
        p.exists(),
        "{} not found: run scripts/install-agents.sh (or set FIXBENCH_AGENTS_DIR to a folder laid out like .agents/)",
        p.display()
    );
    p
}

/// Runs `agent`'s preset on expr_calc against `server`; returns its trial and the stored run.
/// Runs the preset on expr_calc; returns its trial, the run and the trial's transcript.
fn run_preset(agent: &str, server: &LlamaServer) -> (Value, Value, Vec<Value>) {
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    let out = run_expect(
        fixbench(sb.path())
            .env("FIXBENCH_AGENTS_DIR", agents_dir())
            .env("HOME", home.path())
            .args(["run", "--agent", agent, "--problem", "expr_calc", "--server", &server.url()])
            .args(["--isolation", "none", "--timeout", TIMEOUT_S, "--json"]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    // fixbench's own cache (model hashes) is the only thing allowed there.
    let left: Vec<PathBuf> = walkdir::WalkDir::new(home.path())
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            !home.path().join(".cache/fixbench").starts_with(p) && !p.starts_with(home.path().join(".cache/fixbench"))
        })
        .collect();
    assert!(left.is_empty(), "{agent} wrote to the user's HOME: {left:?}");
    let t = run["trials"][0].clone();
    let rel =
        t["paths"]["transcript"].as_str().unwrap_or_else(|| panic!("{agent}'s conversation was not recorded: {t:#}"));
    let file = sb.path().join("results").join(run["run_id"].as_str().unwrap()).join(rel);
    let transcript = std::fs::read_to_string(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (t, run, transcript)
}

/// The transcript has one entry per request the agent made, its first the task itself
/// (PROBLEM.md), and each later one only what its conversation added.
fn assert_transcript(t: &Value, entries: &[Value]) {
    let reqs = t["requests"].as_array().unwrap();
    assert_eq!(entries.len(), reqs.len(), "{entries:#?}");
    let first = entries[0]["new"].to_string();
    assert!(first.contains("expr_calc"), "the first turn holds the task: {first}");
    for e in &entries[1..] {
        if e["conversation"] == entries[0]["conversation"] {
            assert!(e["kept"].as_u64().unwrap() >= 2, "a later turn keeps its history once: {e:#}");
        }
    }
    let answered = entries.iter().filter(|e| e["status"] == 200 && e["abandoned_ms"].is_null());
    for e in answered {
        let a = &e["answer"];
        assert!(a["text"].is_string() || a["tool_calls"].is_array() || a["reasoning"].is_string(), "{e:#}");
    }
}

/// What every real-agent trial must show.
fn assert_ran_and_was_measured(t: &Value, binary: &Path, version: &str) {
    let error = t["error"].as_str().unwrap_or("");
    assert!(!error.contains("not installed"), "{t:#}");
    assert_eq!(t["command"][0], binary.to_string_lossy().as_ref(), "the preset found the local install");
    assert_eq!(t["agent_version"], version, "{t:#}");
    assert_eq!(t["total"], 15, "the trial is graded: {t:#}");
    assert!(t["passed"].as_u64().is_some());
    let reqs = t["requests"].as_array().unwrap();
    assert!(!reqs.is_empty(), "the agent's requests went through the proxy: {t:#}");
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r["path"], "/v1/chat/completions", "{r}");
        // Only the last request may have been cut short, by the agent's time limit: its client
        // (the agent, killed) hung up before the answer ended.
        let cut_by_the_limit = i + 1 == reqs.len() && t["timed_out"] == true && r["abandoned_ms"].is_number();
        if !cut_by_the_limit {
            assert_eq!(r["status"], 200, "{r}");
        }
    }
}

/// Requests the server answered in full (the last one may have been cut by the time limit).
fn completed(t: &Value) -> Vec<&Value> {
    t["requests"].as_array().unwrap().iter().filter(|r| r["predicted_n"].is_u64() && r["error"].is_null()).collect()
}

/// The agent's own token counts equal the proxy's for the requests it finished.
fn assert_usage_matches_proxy(t: &Value, agent: &str) {
    let done = completed(t);
    let usage = &t["agent_usage"];
    if done.is_empty() {
        // Nothing finished within the limit: the agent had nothing to report.
        return;
    }
    assert_eq!(usage["format"], agent, "{agent} reported no usage though {} request(s) finished: {t:#}", done.len());
    let prompt: u64 = done.iter().map(|r| r["prompt_n"].as_u64().unwrap() + r["cache_n"].as_u64().unwrap_or(0)).sum();
    let predicted: u64 = done.iter().map(|r| r["predicted_n"].as_u64().unwrap()).sum();
    assert_eq!(usage["model_calls"].as_u64(), Some(done.len() as u64), "{usage} vs {done:#?}");
    assert_eq!(usage["input_tokens"].as_u64(), Some(prompt), "{usage} vs {done:#?}");
    assert_eq!(usage["output_tokens"].as_u64(), Some(predicted), "{usage} vs {done:#?}");
}

#[test]
fn pi_runs_against_the_real_server_and_is_graded() {
    let pi = require("pi");
    let server = LlamaServer::start(SERVER_FLAGS);
    let (t, _, transcript) = run_preset("pi", &server);
    assert_ran_and_was_measured(&t, &pi, "0.73.1");
    assert_transcript(&t, &transcript);
    assert_eq!(t["requests"][0]["stream"], true, "pi streams");
    assert_usage_matches_proxy(&t, "pi");
}

#[test]
fn mini_swe_agent_runs_against_the_real_server_and_is_graded() {
    let mini = require("mini");
    let server = LlamaServer::start(SERVER_FLAGS);
    let (t, _, transcript) = run_preset("mini-swe-agent", &server);
    assert_ran_and_was_measured(&t, &mini, "2.4.6");
    assert_transcript(&t, &transcript);
    assert!(!completed(&t).is_empty(), "mini-swe-agent finished no request in {TIMEOUT_S} s: {t:#}");
    assert_usage_matches_proxy(&t, "mini-swe-agent");
}
