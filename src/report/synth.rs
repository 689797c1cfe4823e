//! A synthetic results store: runs with plausible numbers in every field (server figures,
//! requests, time splits), for the report tests and the scale benchmark
//! (`cargo run --release --example gen_store`). Deterministic for a given seed: the stream is a
//! seeded rand_chacha ChaCha12, which does not change with rand's version as `StdRng` may.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::model::{CacheState, GradeIsolation, Isolation};
use crate::store::*;

/// The problems a synthetic run uses: name, tests, tests the starter passes.
pub const PROBLEMS: [(&str, u32, u32); 3] = [("expr_calc", 15, 11), ("mini_sheet", 24, 12), ("mini_stackvm", 22, 12)];

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub runs: usize,
    /// Trials in the whole store (rounded up to whole repeats).
    pub trials: usize,
    pub seed: u64,
    /// The first run's start; runs are spread evenly over `days`.
    pub start: DateTime<Utc>,
    pub days: f64,
    pub agents: Vec<String>,
    /// From this run on (by index), decode speed drops by a third and agents resolve less:
    /// a regression for the charts and the gate to find.
    pub regress_from: Option<usize>,
    /// Also write each trial's files: a `transcript.jsonl` consistent with its requests (set
    /// in `paths.transcript` and `telemetry.transcript`), and a small diff, stdout and stderr.
    pub transcripts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 60,
            trials: 10_000,
            seed: 7,
            start: Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap(),
            days: 30.0,
            agents: vec!["aider".into(), "opencode".into()],
            regress_from: None,
            transcripts: false,
        }
    }
}

/// The server configurations runs take turns with: (model, quant, label, prefill tok/s, decode tok/s).
const SERVERS: [(&str, &str, &str, f64, f64); 4] = [
    ("Qwen3-8B", "Q4_K_M", "np1", 820.0, 38.0),
    ("Qwen3-8B", "Q8_0", "np1", 700.0, 24.0),
    ("Qwen3-8B", "Q4_K_M", "np4", 640.0, 31.0),
    ("SmolLM2-135M-Instruct", "Q4_1", "np1", 9_500.0, 310.0),
];

/// Writes the store and returns the run ids, oldest first.
pub fn generate(store: &Store, opts: &Options) -> Result<Vec<String>> {
    let mut rng = ChaCha12Rng::seed_from_u64(opts.seed);
    let per_run_unit = PROBLEMS.len() * opts.agents.len();
    let repeat = opts.trials.div_ceil(opts.runs.max(1) * per_run_unit).max(1) as u32;
    let mut ids = Vec::new();
    for i in 0..opts.runs {
        let at = opts.start + Duration::seconds((opts.days * 86_400.0 * i as f64 / opts.runs.max(1) as f64) as i64);
        let regressed = opts.regress_from.is_some_and(|r| i >= r);
        let mut run = synth_run(&mut rng, i, at, repeat, &opts.agents, regressed);
        let files = if opts.transcripts { trial_files(&mut run, opts.seed) } else { Vec::new() };
        store.save(&run)?;
        let dir = store.run_dir(&run.run_id);
        for (rel, text) in files {
            std::fs::write(dir.join(rel), text)?;
        }
        ids.push(run.run_id);
    }
    Ok(ids)
}

/// Writes `shards` runs, each one slice (`--shard K/N`) of one plan of `trials` trials (rounded
/// up to whole repeats of the problems × `opts.agents`), each as a machine of its own would:
/// its own host name and server, every trial with its record and small log, diff and JUnit
/// files. Returns the folders written, one per shard, in order.
pub fn shards(root: &std::path::Path, trials: usize, shards: u32, opts: &Options) -> Result<Vec<std::path::PathBuf>> {
    use crate::model::Shard;
    use sha2::{Digest, Sha256};
    let mut rng = ChaCha12Rng::seed_from_u64(opts.seed);
    let repeat = trials.div_ceil(PROBLEMS.len() * opts.agents.len()).max(1) as u32;
    let mut whole = synth_run(&mut rng, 0, opts.start, repeat, &opts.agents, false);
    whole.config.repeat = repeat;
    let decides = serde_json::json!({ "problems": PROBLEMS.iter().map(|p| p.0).collect::<Vec<_>>(), "agents": opts.agents, "repeat": repeat });
    let config_sha256 = hex::encode(Sha256::digest(serde_json::to_vec(&decides)?));
    let ids: Vec<String> = whole.trials.iter().map(|t| t.id.clone()).collect();
    let mut out = Vec::new();
    for index in 1..=shards {
        let shard = Shard { index, count: shards };
        let store = Store::new(root.join(format!("shard-{index}")));
        let mut run = whole.clone();
        run.run_id = format!("shard-{index}-of-{shards}");
        run.host.hostname = Some(format!("gpu-{index:02}"));
        run.trials.retain(|t| shard.holds(&t.id));
        run.plan = Some(PlanRecord {
            config_sha256: config_sha256.clone(),
            decides: decides.clone(),
            trials: ids.clone(),
            shard: Some(shard),
        });
        let delta = |trials: &[TrialRecord]| -> ServerDelta {
            let mut d = ServerDelta::default();
            for s in trials.iter().filter_map(|t| t.telemetry.server.as_ref()) {
                d.prompt_tokens += s.prompt_tokens;
                d.cached_tokens += s.cached_tokens;
                d.prompt_seconds += s.prompt_seconds;
                d.predicted_tokens += s.predicted_tokens;
                d.predicted_seconds += s.predicted_seconds;
            }
            d
        };
        run.servers = vec![ServerUse {
            url: "http://127.0.0.1:8080".into(),
            total_slots: Some(1),
            trials: run.trials.len() as u32,
            metrics: Some(delta(&run.trials)),
            ..Default::default()
        }];
        let dir = store.run_dir(&run.run_id);
        for t in &run.trials {
            let files = [
                (&t.paths.stdout, format!("agent output of {}\n", t.id).repeat(20)),
                (&t.paths.stderr, String::new()),
                (&t.paths.diff, format!("--- a/{0}/x.py\n+++ b/{0}/x.py\n@@ -1 +1 @@\n-a\n+b\n", t.problem)),
                (
                    &t.paths.junit,
                    format!("<testsuites><testsuite name=\"{}\" tests=\"{}\"/></testsuites>\n", t.id, t.grade.total),
                ),
            ];
            for (rel, text) in files {
                let path = dir.join(rel);
                std::fs::create_dir_all(path.parent().expect("in a trial folder"))?;
                std::fs::write(path, text)?;
            }
        }
        store.save(&run)?;
        out.push(dir);
    }
    Ok(out)
}

fn synth_run(
    rng: &mut ChaCha12Rng,
    index: usize,
    at: DateTime<Utc>,
    repeat: u32,
    agents: &[String],
    regressed: bool,
) -> RunRecord {
    let (model, quant, label, prefill, decode) = SERVERS[index % SERVERS.len()];
    let run_id = format!("{}-{:04x}", at.format("%Y%m%d-%H%M%S"), index as u16);
    let server = ServerInfo {
        url: "http://127.0.0.1:8080".into(),
        label: Some(label.into()),
        model_path: Some(format!("/models/{model}-{quant}.gguf")),
        model: Some(model.into()),
        quant: Some(quant.into()),
        total_slots: Some(if label == "np4" { 4 } else { 1 }),
        n_ctx_per_slot: Some(32_768),
        build_info: Some("b6500-0c1e570".into()),
        ..Default::default()
    };
    let mut r = run_record(&run_id, at, agents);
    r.labels.insert("branch".into(), if index % 5 == 4 { "feature".into() } else { "main".into() });
    r.labels.insert("flags".into(), format!("-np{}", if label == "np4" { 4 } else { 1 }));
    r.config.server_url = Some(server.url.clone());
    r.config.server_label = server.label.clone();
    r.server = Some(server);
    let speed = if regressed { 2.0 / 3.0 } else { 1.0 };
    let mut clock = at;
    for rep in 0..repeat {
        for (ai, agent) in agents.iter().enumerate() {
            for (pi, &(problem, total, baseline)) in PROBLEMS.iter().enumerate() {
                let skill = 0.75 - 0.15 * pi as f64 - 0.1 * ai as f64 - if regressed { 0.25 } else { 0.0 };
                let resolved = rng.gen_bool(skill.clamp(0.02, 0.98));
                let passed = if resolved { total } else { rng.gen_range(baseline.saturating_sub(1)..total) };
                let mut t = trial(problem, agent, rep, passed, total, baseline);
                t.started_at = clock;
                telemetry(rng, &mut t, prefill * speed, decode * speed);
                clock += Duration::milliseconds((t.wall_s * 1000.0) as i64);
                t.server_label = Some(label.into());
                let _ = (ai, pi);
                r.trials.push(t);
            }
        }
    }
    r.ended_at = Some(clock);
    r
}

/// A finished run record with no trials and no server, as `fixbench run` starts one.
pub fn run_record(run_id: &str, at: DateTime<Utc>, agents: &[String]) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.into(),
        started_at: at,
        ended_at: Some(at + Duration::minutes(30)),
        status: RunStatus::Finished,
        fixbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: None,
        host: Host { os: "linux x86_64".into(), cores: 16, hostname: Some("synth".into()), ..Default::default() },
        labels: BTreeMap::new(),
        config: RunConfig {
            problems_dir: "problems".into(),
            problems: PROBLEMS.iter().map(|p| p.0.to_string()).collect(),
            agents: agents
                .iter()
                .map(|a| AgentConfig {
                    name: a.clone(),
                    program: AgentProgram::Command(vec![a.clone(), "{prompt}".into()]),
                    env: BTreeMap::new(),
                    timeout_s: 600.0,
                })
                .collect(),
            repeat: 1,
            timeout_s: 600.0,
            python: "python3".into(),
            isolation: Isolation::Sandbox,
            grade_isolation: Some(GradeIsolation::Sandbox),
            grade_timeout_s: None,
            cache_state: CacheState::Shared,
            server_url: None,
            server_label: None,
            model: None,
            servers: vec![],
            jobs: None,
        },
        server: None,
        servers: vec![],
        plan: None,
        merged: None,
        trials: Vec::new(),
    }
}

/// A trial with known numbers and no server: `passed` of `total` tests, the starter passing the
/// first `baseline`; the tests after `passed` fail. Resolved when every test passes.
pub fn trial(problem: &str, agent: &str, repeat: u32, passed: u32, total: u32, baseline: u32) -> TrialRecord {
    let tests: Vec<TestResult> = (0..total)
        .map(|i| TestResult {
            name: format!("tests.test_{problem}::test_case_{i:02}"),
            outcome: if i < passed { Outcome::Passed } else { Outcome::Failed },
            message: (i >= passed).then(|| format!("AssertionError: case {i} expected 1, got 0")),
        })
        .collect();
    let name = |i: u32| format!("tests.test_{problem}::test_case_{i:02}");
    let dir = format!("trials/{problem}__{agent}__{repeat}");
    TrialRecord {
        id: format!("{problem}/{agent}/{repeat}"),
        problem: problem.into(),
        agent: agent.into(),
        repeat,
        command: vec![agent.into(), "{prompt}".into()],
        agent_version: None,
        isolation: Isolation::Sandbox,
        cache_state: CacheState::Shared,
        server_label: None,
        started_at: Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap(),
        host: None,
        grade: TrialGrade {
            passed,
            failed: total - passed,
            errors: 0,
            skipped: 0,
            total,
            baseline,
            resolved: passed == total && total > 0,
            fixed: (baseline..passed).map(name).collect(),
            broken: (passed..baseline).map(name).collect(),
            tests,
            void: None,
            suspicious: Vec::new(),
            grade_s: 2.0,
        },
        agent_run: AgentRun {
            timed_out: false,
            exit_code: Some(0),
            agent_started: true,
            agent_s: 58.0,
            output: OutputStats::default(),
            agent_usage: None,
        },
        error: None,
        wall_s: 60.0,
        paths: TrialPaths {
            stdout: format!("{dir}/stdout.log"),
            stderr: format!("{dir}/stderr.log"),
            diff: format!("{dir}/diff.patch"),
            junit: format!("{dir}/junit.xml"),
            transcript: None,
            dir,
        },
        telemetry: TrialTelemetry::default(),
    }
}

/// Fills a trial's requests, server deltas, time split and wall time with plausible numbers:
/// turns of agent work and requests, now and then a long queue wait.
pub fn telemetry(rng: &mut ChaCha12Rng, t: &mut TrialRecord, prefill_tps: f64, decode_tps: f64) {
    let turns = rng.gen_range(4..14);
    let mut offset_ms = rng.gen_range(200.0..1500.0);
    let mut context = rng.gen_range(2_000..6_000) as u64;
    let mut delta = ServerDelta::default();
    let mut requests = Vec::new();
    let mut wait_ms = 0.0;
    for turn in 0..turns {
        let cached = if turn == 0 { 0 } else { (context as f64 * rng.gen_range(0.75..0.98)) as u64 };
        let prompt_n = context - cached;
        let pp = prefill_tps * rng.gen_range(0.85..1.1);
        let tg = decode_tps * rng.gen_range(0.85..1.1);
        let predicted_n = rng.gen_range(60..700) as u64;
        let prompt_ms = prompt_n as f64 / pp * 1000.0;
        let predicted_ms = predicted_n as f64 / tg * 1000.0;
        // Once in a while the request queues behind another slot: the "two-minute wait".
        let queue_ms = if rng.gen_bool(0.06) { rng.gen_range(20_000.0..120_000.0) } else { rng.gen_range(1.0..40.0) };
        let total_ms = queue_ms + prompt_ms + predicted_ms;
        requests.push(RequestRecord {
            start: t.started_at + Duration::milliseconds(offset_ms as i64),
            offset_ms,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            stream: true,
            status: 200,
            ttft_ms: Some(queue_ms + prompt_ms),
            last_token_ms: None,
            token_events: None,
            load_ms: None,
            total_ms,
            prompt_n: Some(prompt_n),
            cache_n: Some(cached),
            prompt_ms: Some(prompt_ms),
            predicted_n: Some(predicted_n),
            predicted_ms: Some(predicted_ms),
            reprefilled_tokens: Some(if turn > 0 && rng.gen_bool(0.1) { rng.gen_range(200..2_000) } else { 0 }),
            error: None,
            conversation: Some(0),
            turn: Some(turn),
            abandoned_ms: None,
            slot: None,
            queue_ms: None,
        });
        delta.prompt_tokens += prompt_n as f64;
        delta.cached_tokens += cached as f64;
        delta.prompt_seconds += prompt_ms / 1000.0;
        delta.predicted_tokens += predicted_n as f64;
        delta.predicted_seconds += predicted_ms / 1000.0;
        delta.n_decode += predicted_n as f64;
        wait_ms += total_ms;
        // The agent's own time before its next request: tools, edits, test runs.
        offset_ms += total_ms + rng.gen_range(300.0..9_000.0);
        context += predicted_n + rng.gen_range(200..2_500);
    }
    delta.prefill_tps = Some(delta.prompt_tokens / delta.prompt_seconds.max(1e-9));
    delta.decode_tps = Some(delta.predicted_tokens / delta.predicted_seconds.max(1e-9));
    delta.cache_hit_ratio = Some(delta.cached_tokens / (delta.cached_tokens + delta.prompt_tokens).max(1.0));
    let agent_s = offset_ms / 1000.0;
    t.telemetry.timing = Some(TimeSplit {
        requests: turns,
        server_wait_s: wait_ms / 1000.0,
        agent_own_s: (offset_ms - wait_ms) / 1000.0,
        reprefilled_tokens: requests.iter().filter_map(|r| r.reprefilled_tokens).sum(),
        reprefill_unknown: 0,
        conversations: Some(1),
        prompt_s: Some(delta.prompt_seconds),
        decode_s: Some(delta.predicted_seconds),
    });
    t.telemetry.requests = requests;
    t.telemetry.server = Some(delta);
    t.agent_run.agent_s = agent_s;
    t.grade.grade_s = rng.gen_range(0.8..2.5);
    t.wall_s = t.agent_run.agent_s + t.grade.grade_s + 0.3;
}

/// Each trial's files, as (path relative to the run folder, contents): its transcript (whose
/// path and stats are set on the trial), a small diff, stdout and stderr. Drawn from a stream of
/// their own, so a store made with them holds the same numbers as one made without.
fn trial_files(run: &mut RunRecord, seed: u64) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    for t in &mut run.trials {
        let digest = Sha256::digest(format!("{seed}/{}/{}", run.run_id, t.id).as_bytes());
        let mut rng = ChaCha12Rng::seed_from_u64(u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")));
        let text = transcript(&mut rng, t);
        let rel = format!("{}/{TRANSCRIPT_FILE}", t.paths.dir);
        t.telemetry.transcript = Some(TranscriptStats {
            turns: t.telemetry.requests.len() as u32,
            bytes: text.len() as u64,
            ..Default::default()
        });
        t.paths.transcript = Some(rel.clone());
        let stdout = (0..rng.gen_range(5..400))
            .map(|i| format!("[{i:04}] {} {}\n", t.id, words(&mut rng, 8)))
            .collect::<String>();
        let diff = format!(
            "diff --git a/{0}/core.py b/{0}/core.py\n--- a/{0}/core.py\n+++ b/{0}/core.py\n@@ -10,7 +10,7 @@ def evaluate(node):\n     if node.kind == \"num\":\n         return node.value\n-    return node.left - node.right\n+    return apply(node.op, node.left, node.right)\n \n@@ -42,3 +42,4 @@ def apply(op, a, b):\n     ops = {{\"+\": add, \"-\": sub}}\n+    ops[\"*\"] = mul\n     return ops[op](a, b)\n",
            t.problem
        );
        t.agent_run.output.stdout_bytes = stdout.len() as u64;
        files.push((t.paths.stdout.clone(), stdout));
        files.push((t.paths.stderr.clone(), format!("warning: {}\n", words(&mut rng, 6))));
        files.push((t.paths.diff.clone(), diff));
        files.push((rel, text));
    }
    files
}

/// `n` words of filler text.
fn words(rng: &mut ChaCha12Rng, n: usize) -> String {
    const WORDS: [&str; 16] = [
        "parse", "token", "value", "the", "node", "returns", "stack", "cell", "error", "test", "fix", "operator",
        "expected", "line", "frame", "range",
    ];
    (0..n).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
}

/// The system prompt every synthetic trial sends first: the same ~4 KB each time.
fn system_prompt() -> String {
    let rule = "You are a careful coding agent working in a Python repository. Read the failing tests, find the \
                bug, change as little as you can, and run the tests before you finish. ";
    (0..4096 / rule.len() + 1).map(|i| format!("{i}. {rule}\n")).collect()
}

/// The tool definitions every synthetic trial sends first: the same ~6 KB each time.
fn tool_definitions() -> serde_json::Value {
    let tools: Vec<serde_json::Value> = ["read", "bash", "edit", "write", "grep", "ls"]
        .iter()
        .map(|name| {
            serde_json::json!({"type": "function", "function": {
                "name": name,
                "description": format!("The {name} tool. ").repeat(40),
                "parameters": {"type": "object", "properties": {
                    "path": {"type": "string", "description": "A path inside the repository, relative to its root."},
                    "command": {"type": "string", "description": "What to run, as one shell line."}
                }, "required": ["path"]}
            }})
        })
        .collect();
    serde_json::json!({ "tools": tools })
}

/// A transcript consistent with the trial's requests: one conversation, the system prompt, the
/// tools and the task on turn 0, then each turn the previous answer's tool call and its result.
fn transcript(rng: &mut ChaCha12Rng, t: &TrialRecord) -> String {
    let tools = ["read", "bash", "edit", "grep"];
    let mut out = String::new();
    let mut items = 0;
    let mut previous: Option<Answer> = None;
    let last = t.telemetry.requests.len().saturating_sub(1);
    for (turn, request) in t.telemetry.requests.iter().enumerate() {
        let new = match &previous {
            None => vec![
                serde_json::json!({"role": "system", "content": system_prompt()}),
                tool_definitions(),
                serde_json::json!({"role": "user", "content": format!("Fix {}: the tests in tests/ fail.", t.problem)}),
            ],
            Some(answer) => {
                let call = &answer.tool_calls[0];
                let mut result: String =
                    (0..rng.gen_range(8..50)).map(|i| format!("{:>4}  {}\n", i + 1, words(rng, 8))).collect::<String>();
                if turn % 5 == 3 {
                    // Tool output is whatever the repository holds, markup included.
                    result.push_str("<script>alert(1)</script> <!-- a comment --> https://example.invalid/x\n");
                }
                vec![
                    serde_json::json!({"role": "assistant", "content": answer.text, "tool_calls": [{
                        "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments}}]}),
                    serde_json::json!({"role": "tool", "tool_call_id": call.id, "content": result}),
                ]
            }
        };
        let kept = items;
        items += new.len();
        let done = turn == last;
        let tool = tools[rng.gen_range(0..tools.len())];
        let (text_words, reasoning_words) = (rng.gen_range(15..50), rng.gen_range(30..70));
        let answer = Answer {
            text: if done { format!("Fixed {}: the tests pass.", t.problem) } else { words(rng, text_words) },
            reasoning: words(rng, reasoning_words),
            tool_calls: if done {
                vec![]
            } else {
                vec![ToolCall {
                    id: Some(format!("call_{turn}")),
                    name: tool.into(),
                    arguments: serde_json::json!({"path": format!("{}/core.py", t.problem), "command": words(rng, 4)})
                        .to_string(),
                }]
            },
            finish_reason: Some(if done { "stop" } else { "tool_calls" }.into()),
        };
        let entry = TranscriptEntry { request: request.clone(), kept, new, answer: answer.clone() };
        out.push_str(&serde_json::to_string(&entry).expect("a transcript entry serializes"));
        out.push('\n');
        previous = Some(answer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_asked_number_of_trials_with_telemetry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let opts = Options { runs: 4, trials: 48, ..Default::default() };
        let ids = generate(&store, &opts).unwrap();
        assert_eq!(ids.len(), 4);
        assert_eq!(store.run_ids().unwrap(), ids);
        let run = store.load(&ids[0]).unwrap();
        assert_eq!(run.trials.len(), 12);
        let t = &run.trials[0];
        assert!(t.telemetry.server.as_ref().unwrap().decode_tps.unwrap() > 0.0);
        assert!(!t.telemetry.requests.is_empty() && t.telemetry.timing.is_some());
        assert_eq!(t.grade.tests.len() as u32, t.grade.total);
        assert_eq!((run.config.isolation, t.isolation), (Isolation::Sandbox, Isolation::Sandbox));
    }

    #[test]
    fn transcripts_follow_the_requests_and_leave_the_numbers_alone() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Store::new(dir.path().join("plain"));
        let with = Store::new(dir.path().join("with"));
        let opts = Options { runs: 1, trials: 6, ..Default::default() };
        let a = plain.load(&generate(&plain, &opts).unwrap()[0]).unwrap();
        let id = generate(&with, &Options { transcripts: true, ..opts }).unwrap().remove(0);
        let b = with.load(&id).unwrap();
        assert_eq!(a.trials[0].telemetry.requests, b.trials[0].telemetry.requests);
        let t = &b.trials[0];
        let text = std::fs::read_to_string(with.run_dir(&id).join(t.paths.transcript.as_ref().unwrap())).unwrap();
        let entries: Vec<TranscriptEntry> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(entries.len(), t.telemetry.requests.len());
        assert_eq!(t.telemetry.transcript.as_ref().unwrap().bytes, text.len() as u64);
        assert_eq!((entries[0].kept, entries[0].new.len(), entries[1].kept), (0, 3, 3));
        assert!(serde_json::to_string(&entries[0].new[0]).unwrap().len() > 4000);
        assert!(with.run_dir(&id).join(&t.paths.diff).exists() && with.run_dir(&id).join(&t.paths.stdout).exists());
    }
}
