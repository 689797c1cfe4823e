//! Servers other than a llama-server with `--metrics` (issue #19): the kind fixbench detects
//! (or is told with `--server-kind`), the telemetry each kind gives and the sentences on what
//! it cannot give, driven end to end through the real `fixbench run` and the scripted agent
//! (`tests/agents/multiturn.py`).
//!
//! vLLM, SGLang and Ollama are the replay of `fixtures/servers/replay/replay.py` (recorded
//! answers, not live servers: they cannot run here); llama-server (started without
//! `--metrics`) and llama-cpp-python are real servers on SmolLM2. The last test reaches the
//! replay over HTTPS with an API key, which no file and no agent may ever see.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::llama::{free_port, multiturn_cmd, LlamaServer};
use crate::util::*;

/// `replay.py --kind KIND --port 0 FLAGS`, stopped when dropped; its log is printed when a
/// test fails.
struct Replay {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Replay {
    fn start(kind: &str, flags: &[&str]) -> Replay {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("replay.log");
        let script = repo().join("tests/integration/fixtures/servers/replay/replay.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--kind", kind, "--port", "0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 runs replay.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("READY ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("replay.py --kind {kind} {flags:?} did not say READY: {line:?}\n{}", tail_of(&log));
        };
        Replay { child, url, log, _dir: dir }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- replay log ({}):\n{}", self.log.display(), tail_of(&self.log));
        }
    }
}

/// A real llama-cpp-python server (`python -m llama_cpp.server`) on the test model, in a
/// scrubbed environment (its settings also come from variables such as API_KEY and MODEL).
struct LlamaCppPython {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaCppPython {
    fn start() -> LlamaCppPython {
        let py = llama_cpp_python();
        let model = crate::llama::model();
        assert!(model.is_file(), "the test model is not at {}: run scripts/setup.sh", model.display());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("llama-cpp-python.log");
        let port = free_port();
        let child = Command::new(&py)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--n_ctx", "2048"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("llama-cpp-python.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", py.display()));
        let mut s = LlamaCppPython { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("llama-cpp-python exited while starting ({status}):\n{}", s.logs());
            }
            if agent.get(&format!("{}/v1/models", s.url)).call().is_ok_and(|r| r.status() == 200) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "llama-cpp-python: no /v1/models:\n{}", s.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", tail_of(&self.log), tail_of(&self.log.with_extension("err")))
    }
}

impl Drop for LlamaCppPython {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- llama-cpp-python log:\n{}", self.logs());
        }
    }
}

/// The llama-cpp-python venv's python: `FIXBENCH_LLAMA_CPP_PYTHON` (scripts/test.sh sets
/// it), else what scripts/build-llama-cpp-python.sh prints (cached; it builds when needed).
fn llama_cpp_python() -> PathBuf {
    if let Some(p) = std::env::var_os("FIXBENCH_LLAMA_CPP_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-llama-cpp-python.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs scripts/build-llama-cpp-python.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scripts/build-llama-cpp-python.sh failed: {text}");
    let py = PathBuf::from(text.lines().last().unwrap_or_default().trim());
    assert!(py.is_file(), "scripts/build-llama-cpp-python.sh printed no python: {text:?}");
    py
}

fn tail_of(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `fixbench run` on expr_calc against `url`, one trial at a time, with no API key or CA file
/// from the test's own environment (`env` sets them).
fn run_cmd(sb: &Sandbox, url: &str, agent: &str, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = fixbench(sb.path());
    for v in ["FIXBENCH_API_KEY", "LLAMA_API_KEY", "SSL_CERT_FILE"] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.args(["run", "--server", url, "--problem", "expr_calc", "--isolation", "none", "-j", "1"]);
    cmd.args(["--results", "results", "--cmd", agent]);
    cmd.args(extra);
    cmd
}

/// Runs to exit 0 and returns the stored run with the agent's stdout lines (one JSON object
/// per request: its status and what the answer said).
fn run_ok(sb: &Sandbox, url: &str, agent: &str, extra: &[&str], env: &[(&str, &str)]) -> (Value, Vec<Value>) {
    run_expect(&mut run_cmd(sb, url, agent, extra, env), 0);
    let dir = only_run_dir(&sb.results());
    let trial_dirs: Vec<PathBuf> =
        std::fs::read_dir(dir.join("trials")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert_eq!(trial_dirs.len(), 1, "{trial_dirs:?}");
    let stdout = std::fs::read_to_string(trial_dirs[0].join("stdout.log")).unwrap();
    let lines = stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    (read_run(&dir), lines)
}

fn only_run_dir(results: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("run.json").is_file())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn only_trial(run: &Value) -> &Value {
    let ts = trials(run);
    assert_eq!(ts.len(), 1, "{run:#}");
    &ts[0]
}

fn missing(t: &Value) -> Vec<String> {
    t["telemetry_missing"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// Whether some `telemetry_missing` sentence holds every one of `parts`.
fn says(t: &Value, parts: &[&str]) -> bool {
    missing(t).iter().any(|s| parts.iter().all(|p| s.contains(p)))
}

/// Whether some `telemetry_missing` sentence starts with `prefix`.
fn says_first(t: &Value, prefix: &str) -> bool {
    missing(t).iter().any(|s| s.starts_with(prefix))
}

/// The sum of a per-request count, a request without it counting 0.
fn sum_of(t: &Value, key: &str) -> f64 {
    requests(t).iter().map(|r| r[key].as_u64().unwrap_or(0)).sum::<u64>() as f64
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every request went through and was answered 200, as many as the agent sent.
fn all_answered(t: &Value, agent: &[Value], n: usize) {
    assert_eq!(requests(t).len(), n, "{t:#}");
    assert_eq!(agent.len(), n, "{agent:?}");
    for r in requests(t) {
        assert_eq!(r["status"], 200, "{r}");
    }
    for a in agent {
        assert_eq!((&a["status"], &a["error"]), (&Value::from(200), &Value::Null), "{a}");
    }
}

/// The replay answers as docs/servers/sources.md records each server does (routes, headers,
/// key rules, bodies, counters that advance by each request's usage): its own self-check.
#[test]
fn the_replay_keeps_to_its_recorded_answers() {
    let script = repo().join("tests/integration/fixtures/servers/replay/selfcheck.py");
    let out = Command::new("python3").arg(&script).output().expect("python3 runs selfcheck.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains(" 0 failed"), "{text}");
}

#[test]
fn vllm_counters_and_usage_agree_and_a_stream_without_usage_is_named() {
    let replay = Replay::start("vllm", &["--enable-prompt-tokens-details", "--quiet"]);
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 3 --stream --include-usage --max-tokens 8");
    let (run, said) = run_ok(&sb, &replay.url, &agent, &[], &[]);
    assert_eq!(run["server"]["kind"], "vllm", "{:#}", run["server"]);
    assert_eq!(run["server"]["version"], "0.32.0", "{:#}", run["server"]);
    assert!(run["server"]["kind_evidence"].as_str().unwrap().contains("/version"), "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 3);
    let s = &t["server"];
    assert_eq!(s["source"], "vllm", "read from vLLM's counters: {s:#}");
    assert!(s.get("from_requests").is_none(), "{s:#}");
    // The counters' deltas are what the requests' usage said, token for token.
    assert_eq!(num(&s["prompt_tokens"]), sum_of(t, "prompt_n"), "{t:#}");
    assert_eq!(num(&s["cached_tokens"]), sum_of(t, "cache_n"), "{t:#}");
    assert_eq!(num(&s["predicted_tokens"]), sum_of(t, "predicted_n"), "{t:#}");
    assert_eq!(num(&s["predicted_tokens"]), 15.0, "the replay answers 5 tokens a request: {s:#}");
    assert!(num(&s["prompt_tokens"]) > 0.0, "{s:#}");
    assert!(num(&s["mean_ttft_ms"]) > 0.0 && num(&s["mean_queue_ms"]) > 0.0, "{s:#}");
    assert_eq!(num(&s["requests_finished"]), 3.0, "{s:#}");
    assert!(num(&s["prefill_tps"]) > 0.0 && num(&s["decode_tps"]) > 0.0, "vLLM times both phases: {s:#}");
    let reqs = requests(t);
    for (i, r) in reqs.iter().enumerate() {
        // The agent read the same usage the proxy recorded.
        let usage = &said[i]["usage"];
        let cached = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
        assert_eq!(u(&r["prompt_n"]), u(&usage["prompt_tokens"]) - cached, "prompt_n leaves the cache out: {r}");
        assert_eq!(u(&r["predicted_n"]), u(&usage["completion_tokens"]), "{r}");
        assert!(num(&r["ttft_ms"]) > 0.0 && num(&r["last_token_ms"]) > num(&r["ttft_ms"]), "{r}");
        assert!(r["prompt_ms"].is_null() && r["predicted_ms"].is_null(), "vLLM's answers carry no timings: {r}");
        if i > 0 {
            assert!(u(&r["cache_n"]) > 0, "turn {} hit the prefix cache: {r}", i + 1);
        }
    }
    assert!(says(t, &["prefill time unknown for 3 of 3 request(s)"]), "{:#}", t["telemetry_missing"]);
    assert!(!says_first(t, "tokens unknown"), "{:#}", t["telemetry_missing"]);
    // Turn 1 read nothing from the cache, so vLLM left its details out: 0, known from turn 2's.
    assert_eq!(reqs[0]["cache_n"], 0, "{:#}", reqs[0]);
    assert!(!says_first(t, "cached prompt tokens unknown"), "{:#}", t["telemetry_missing"]);

    // The same conversation with no usage asked for, on a fresh replay: the requests cannot
    // count their tokens, which is said with the fix; the counters still count them all.
    let replay = Replay::start("vllm", &["--enable-prompt-tokens-details", "--quiet"]);
    let sb2 = Sandbox::new();
    let agent = multiturn_cmd("--turns 3 --stream --max-tokens 8");
    let (run2, said2) = run_ok(&sb2, &replay.url, &agent, &[], &[]);
    let t2 = only_trial(&run2);
    all_answered(t2, &said2, 3);
    assert!(
        says(t2, &["tokens unknown for 3 of 3 request(s)", "--enable-force-include-usage"]),
        "{:#}",
        t2["telemetry_missing"]
    );
    for r in requests(t2) {
        assert!(r["prompt_n"].is_null() && r["predicted_n"].is_null(), "no usage in the stream: {r}");
        assert_eq!(r["token_events"], 5, "{r}");
    }
    let s2 = &t2["server"];
    assert_eq!(s2["source"], "vllm", "{s2:#}");
    for k in ["prompt_tokens", "cached_tokens", "predicted_tokens"] {
        assert_eq!(num(&s2[k]), num(&s[k]), "{k}: the counters count what the first run's usage said: {s2:#}");
    }
}

#[test]
fn sglang_without_metrics_sums_requests_and_with_metrics_reads_its_counters() {
    let agent = multiturn_cmd("--turns 2 --stream --include-usage --max-tokens 8");
    let replay = Replay::start("sglang", &["--health-delay", "0.05", "--quiet"]);
    let sb = Sandbox::new();
    let (run, said) = run_ok(&sb, &replay.url, &agent, &[], &[]);
    assert_eq!(run["server"]["kind"], "sglang", "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    assert!(
        says(t, &["server counters unknown", "start SGLang with --enable-metrics"]),
        "{:#}",
        t["telemetry_missing"]
    );
    let s = &t["server"];
    assert_eq!(s["from_requests"], true, "{s:#}");
    assert!(s.get("source").is_none(), "{s:#}");
    assert_eq!(num(&s["predicted_tokens"]), 10.0, "{s:#}");
    assert!(num(&s["decode_tps"]) > 0.0, "the streams time the decode: {s:#}");
    // Without --enable-cache-report, SGLang's usage counts no cached tokens apart.
    assert!(says(t, &["cached prompt tokens unknown", "--enable-cache-report"]), "{:#}", t["telemetry_missing"]);
    // So what turn 2 prefilled again is unknown: never 0, and doctor says it cannot tell.
    assert_eq!(
        (&t["timing"]["reprefill_unknown"], &t["timing"]["reprefilled_tokens"]),
        (&Value::from(1), &Value::from(0))
    );
    let out = run_expect(fixbench(sb.path()).args(["doctor", run["run_id"].as_str().unwrap(), "--json"]), 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let re = doc["findings"].as_array().unwrap().iter().find(|f| f["check"] == "reprefill").unwrap();
    assert_eq!(re["kind"], "blind_spot", "{re:#}");
    let out = run_expect(fixbench(sb.path()).args(["show", run["run_id"].as_str().unwrap()]), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tokens prefilled again unknown (1 follow-up turn(s)"), "{text}");

    let replay =
        Replay::start("sglang", &["--enable-metrics", "--enable-cache-report", "--health-delay", "0.05", "--quiet"]);
    let sb = Sandbox::new();
    let (run, said) = run_ok(&sb, &replay.url, &agent, &[], &[]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    let s = &t["server"];
    assert_eq!(s["source"], "sglang", "read from SGLang's counters: {s:#} {:#}", t["telemetry_missing"]);
    assert!(s.get("from_requests").is_none(), "{s:#}");
    let reqs = requests(t);
    let cached = u(&reqs[1]["cache_n"]);
    assert!(cached > 0, "turn 2 hit the cache: {:#}", reqs[1]);
    assert!(!says_first(t, "cached prompt tokens unknown"), "{:#}", t["telemetry_missing"]);
    assert_eq!(num(&s["cached_tokens"]), sum_of(t, "cache_n"), "cached tokens from the counters: {t:#}");
    assert_eq!(num(&s["prompt_tokens"]), sum_of(t, "prompt_n"), "{t:#}");
    assert_eq!(num(&s["predicted_tokens"]), 10.0, "{s:#}");
    assert!(num(&s["decode_tps"]) > 0.0, "the decode rate from the streams: {s:#}");
    assert!(s["prefill_tps"].is_null(), "SGLang times no prefill: unknown, not 0: {s:#}");
    assert!(num(&s["mean_ttft_ms"]) > 0.0, "{s:#}");
    assert!(says(t, &["decode seconds", "sglang's counters time no decode"]), "{:#}", t["telemetry_missing"]);
    assert!(says(t, &["prefill seconds"]), "{:#}", t["telemetry_missing"]);
    assert!(!says(t, &["--enable-metrics"]) && !says(t, &["server counters"]), "{:#}", t["telemetry_missing"]);
}

#[test]
fn ollama_native_durations_and_its_openai_endpoint_usage() {
    let replay = Replay::start("ollama", &["--quiet"]);
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--api ollama --stream --turns 2 --max-tokens 8");
    let (run, said) = run_ok(&sb, &replay.url, &agent, &[], &[]);
    assert_eq!(run["server"]["kind"], "ollama", "{:#}", run["server"]);
    assert_eq!(run["server"]["version"], "0.33.0-rc2", "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    let reqs = requests(t);
    for (i, r) in reqs.iter().enumerate() {
        let fin = &said[i]["timings"];
        assert_eq!(r["path"], "/api/chat", "{r}");
        assert_eq!(r["stream"], true, "{r}");
        // The proxy read the same final object the agent did: nanoseconds → milliseconds.
        assert_eq!(num(&r["prompt_ms"]), num(&fin["prompt_eval_duration"]) / 1e6, "{r} vs {fin}");
        assert_eq!(num(&r["predicted_ms"]), num(&fin["eval_duration"]) / 1e6, "{r} vs {fin}");
        assert_eq!(u(&r["prompt_n"]), u(&fin["prompt_eval_count"]), "{r}");
        assert_eq!(u(&r["predicted_n"]), u(&fin["eval_count"]), "{r}");
        assert!(r["cache_n"].is_null(), "Ollama counts no cached tokens: {r}");
        assert!(u(&r["token_events"]) > 0 && num(&r["ttft_ms"]) > 0.0, "{r}");
    }
    // Only the first request loaded the model.
    assert_eq!(num(&reqs[0]["load_ms"]), num(&said[0]["timings"]["load_duration"]) / 1e6, "{:#}", reqs[0]);
    assert!(reqs[0]["load_ms"].as_f64().unwrap() >= 30.0, "{:#}", reqs[0]);
    assert!(reqs[1].get("load_ms").is_none() && said[1]["timings"].get("load_duration").is_none(), "{:#}", reqs[1]);
    let s = &t["server"];
    assert_eq!(s["from_requests"], true, "{s:#}");
    assert!(num(&s["prefill_tps"]) > 0.0 && num(&s["decode_tps"]) > 0.0, "{s:#}");
    assert!(says(t, &["server counters unknown", "Ollama has no /metrics"]), "{:#}", t["telemetry_missing"]);
    assert!(
        says(t, &["cached prompt tokens unknown for 2 of 2", "never counts cached tokens"]),
        "{:#}",
        t["telemetry_missing"]
    );
    assert!(!says(t, &["prefill time unknown"]) && !says_first(t, "tokens unknown"), "{:#}", t["telemetry_missing"]);

    // Its OpenAI endpoint, not streamed: tokens from `usage`, no timings.
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 1 --max-tokens 8");
    let (run, said) = run_ok(&sb, &replay.url, &agent, &[], &[]);
    let t = only_trial(&run);
    all_answered(t, &said, 1);
    let r = &requests(t)[0];
    assert_eq!((&r["path"], &r["stream"]), (&Value::from("/v1/chat/completions"), &Value::from(false)), "{r}");
    assert_eq!(u(&r["prompt_n"]), u(&said[0]["usage"]["prompt_tokens"]), "{r}");
    assert_eq!(u(&r["predicted_n"]), u(&said[0]["usage"]["completion_tokens"]), "{r}");
    assert!(r["prompt_ms"].is_null() && r["predicted_ms"].is_null(), "{r}");
    assert!(says(t, &["prefill time unknown for 1 of 1", "only Ollama's native"]), "{:#}", t["telemetry_missing"]);
    assert!(says(t, &["decode time unknown for 1 of 1"]), "{:#}", t["telemetry_missing"]);
}

#[test]
fn llama_server_without_metrics_detected_and_named_other() {
    let server = LlamaServer::start_raw(&["-c", "2048", "-np", "1", "-t", "2"]);
    // (a) Detected: its answers' `timings` still time each request.
    let sb = Sandbox::new();
    let (run, said) = run_ok(&sb, &server.url(), &multiturn_cmd("--turns 2 --stream --max-tokens 8"), &[], &[]);
    assert_eq!(run["server"]["kind"], "llama-server", "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    for r in requests(t) {
        assert!(num(&r["prompt_ms"]) > 0.0 && num(&r["predicted_ms"]) > 0.0, "timings: {r}");
        assert!(u(&r["prompt_n"]) > 0 && u(&r["predicted_n"]) > 0, "{r}");
    }
    assert!(
        says(t, &["server counters unknown", "/metrics is off on this server: start llama-server with --metrics"]),
        "{:#}",
        t["telemetry_missing"]
    );
    let s = &t["server"];
    assert_eq!(s["from_requests"], true, "{s:#}");
    assert!(num(&s["prefill_tps"]) > 0.0 && num(&s["decode_tps"]) > 0.0, "{s:#}");
    assert_eq!(num(&s["prompt_tokens"]), sum_of(t, "prompt_n"), "{s:#}");

    // (b) Named `other`: only OpenAI `usage` and arrival times are read, never `timings`.
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 2 --stream --include-usage --max-tokens 8");
    let (run, said) = run_ok(&sb, &server.url(), &agent, &["--server-kind", "other"], &[]);
    assert_eq!(run["server"]["kind"], "other", "{:#}", run["server"]);
    assert_eq!(run["server"]["kind_evidence"], "named with --server-kind", "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    for (i, r) in requests(t).iter().enumerate() {
        assert!(said[i]["timings"].is_object(), "llama-server did send timings: {}", said[i]);
        assert!(r["prompt_ms"].is_null() && r["predicted_ms"].is_null(), "timings not read for `other`: {r}");
        assert!(r.get("slot").is_none(), "no llama-server fields asked for: {r}");
        let usage = &said[i]["usage"];
        let cached = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
        assert_eq!(u(&r["prompt_n"]), u(&usage["prompt_tokens"]) - cached, "{r} vs {usage}");
        assert_eq!(u(&r["predicted_n"]), u(&usage["completion_tokens"]), "{r} vs {usage}");
        assert!(u(&r["predicted_n"]) > 1, "{r}");
        let (ttft, last) = (num(&r["ttft_ms"]), num(&r["last_token_ms"]));
        assert!(ttft > 0.0 && last > ttft, "{r}");
    }
    let s = &t["server"];
    assert_eq!(s["from_requests"], true, "{s:#}");
    assert!(num(&s["decode_tps"]) > 0.0, "decode rate from arrival times: {s:#}");
    assert!(s["prefill_tps"].is_null(), "prefill unknown, not 0: {s:#}");
    assert!(says(t, &["prefill time unknown for 2 of 2", "(`other`)"]), "{:#}", t["telemetry_missing"]);
    assert!(says(t, &["server counters unknown", "not one fixbench reads"]), "{:#}", t["telemetry_missing"]);
}

#[test]
fn llama_cpp_python_streams_carry_no_usage_and_its_bodies_do() {
    let server = LlamaCppPython::start();
    let sb = Sandbox::new();
    let (run, said) = run_ok(&sb, &server.url, &multiturn_cmd("--turns 2 --stream --max-tokens 8"), &[], &[]);
    assert_eq!(run["server"]["kind"], "llama-cpp-python", "{:#}", run["server"]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    for r in requests(t) {
        assert!(r["prompt_n"].is_null() && r["predicted_n"].is_null(), "its streams carry no usage: {r}");
        assert!(u(&r["token_events"]) > 1 && num(&r["last_token_ms"]) > num(&r["ttft_ms"]), "{r}");
        assert!(r.get("slot").is_none(), "{r}");
    }
    let s = &t["server"];
    assert_eq!(s["from_requests"], true, "{s:#}");
    assert!(num(&s["decode_tps"]) > 0.0, "decode rate from the stream's events: {s:#}");
    assert!(
        says(t, &["tokens unknown for 2 of 2", "llama-cpp-python's streamed answers carry no `usage`"]),
        "{:#}",
        t["telemetry_missing"]
    );
    assert!(
        says(t, &["server counters unknown", "llama-cpp-python's server has no /metrics"]),
        "{:#}",
        t["telemetry_missing"]
    );

    let sb = Sandbox::new();
    let (run, said) = run_ok(&sb, &server.url, &multiturn_cmd("--turns 2 --max-tokens 8"), &[], &[]);
    let t = only_trial(&run);
    all_answered(t, &said, 2);
    for (i, r) in requests(t).iter().enumerate() {
        let usage = &said[i]["usage"];
        assert_eq!(u(&r["prompt_n"]), u(&usage["prompt_tokens"]), "{r} vs {usage}");
        assert_eq!(u(&r["predicted_n"]), u(&usage["completion_tokens"]), "{r} vs {usage}");
        assert!(u(&r["prompt_n"]) > 0 && u(&r["predicted_n"]) > 0, "{r}");
        assert!(r["cache_n"].is_null(), "{r}");
    }
    assert!(!says_first(t, "tokens unknown"), "{:#}", t["telemetry_missing"]);
    assert!(
        says(t, &["cached prompt tokens unknown for 2 of 2", "no `prompt_tokens_details`"]),
        "{:#}",
        t["telemetry_missing"]
    );
    assert_eq!(num(&t["server"]["prompt_tokens"]), sum_of(t, "prompt_n"), "{:#}", t["server"]);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const KEY: &str = "SECRET-xyz";

/// The vLLM replay over HTTPS with a self-signed certificate (its `cert` file), wanting
/// [`KEY`].
struct TlsReplay {
    replay: Replay,
    cert: PathBuf,
    _certs: tempfile::TempDir,
}

impl TlsReplay {
    fn start() -> TlsReplay {
        let certs = tempfile::tempdir().unwrap();
        let (cert, key) = (certs.path().join("c.pem"), certs.path().join("k.pem"));
        // A self-signed leaf: `CA:FALSE`, since webpki (rustls) refuses a CA certificate as the
        // server's own (`CaUsedAsEndEntity`), and `openssl req -x509` makes one by default.
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
        let replay = Replay::start("vllm", &["--api-key", KEY, "--tls", cert_s, key_s, "--quiet"]);
        assert!(replay.url.starts_with("https://127.0.0.1:"), "{}", replay.url);
        // The replay wants the key: a request without it is refused.
        let bare = ureq::AgentBuilder::new().tls_config(trusting(&cert)).build();
        match bare.get(&format!("{}/v1/models", replay.url)).call() {
            Err(ureq::Error::Status(401, _)) => {}
            other => panic!("the replay should want its key: {other:?}"),
        }
        TlsReplay { replay, cert, _certs: certs }
    }

    fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }
}

#[test]
fn https_with_an_api_key_that_no_agent_and_no_file_sees() {
    let tls = TlsReplay::start();
    // Either variable: fixbench's own, or the one llama-server reads; an agent that sends no
    // key, or a placeholder as the agents' presets do (`none`), which the server would refuse.
    for (var, own) in [("FIXBENCH_API_KEY", ""), ("LLAMA_API_KEY", " --api-key none")] {
        let sb = Sandbox::new();
        let outside = tempfile::tempdir().unwrap();
        let (env_file, parent_env, parent_cmd) =
            (outside.path().join("env"), outside.path().join("parent-env"), outside.path().join("parent-cmd"));
        // The agent writes down its environment and its parent's (fixbench, as the kernel
        // shows it in /proc), then talks to the server without any key of its own.
        let agent = format!(
            "sh -c 'env > {}; cat /proc/$PPID/environ > {}; cat /proc/$PPID/cmdline > {}; {}'",
            env_file.display(),
            parent_env.display(),
            parent_cmd.display(),
            multiturn_cmd(&format!("--turns 2 --stream --include-usage --max-tokens 8{own}"))
        );
        let env = [(var, KEY), ("SSL_CERT_FILE", tls.cert())];
        let (run, said) = run_ok(&sb, &tls.replay.url, &agent, &[], &env);
        assert_eq!(run["server"]["kind"], "vllm", "{var}: {:#}", run["server"]);
        // Told by /v1/models, which answers only with the key.
        let evidence = run["server"]["kind_evidence"].as_str().unwrap();
        assert!(evidence.contains("owned_by \"vllm\" in /v1/models"), "{:#}", run["server"]);
        let t = only_trial(&run);
        // The proxy put the key on every request.
        all_answered(t, &said, 2);
        assert_eq!(t["server"]["source"], "vllm", "/metrics over HTTPS: {:#}", t["server"]);
        // No --enable-prompt-tokens-details: each request's prompt_n counts its cached tokens too.
        let seen = num(&t["server"]["prompt_tokens"]) + num(&t["server"]["cached_tokens"]);
        assert_eq!(seen, sum_of(t, "prompt_n"), "{t:#}");
        let agent_env = std::fs::read(&env_file).unwrap();
        assert!(holds(&agent_env, b"FIXBENCH_BASE_URL=http://127.0.0.1:"), "{}", String::from_utf8_lossy(&agent_env));
        assert!(
            !holds(&agent_env, KEY.as_bytes()),
            "{var}: the agent saw the key: {}",
            String::from_utf8_lossy(&agent_env)
        );
        let parent = std::fs::read(&parent_cmd).unwrap();
        assert!(
            holds(&parent, b"fixbench\0run"),
            "the agent's parent is fixbench: {}",
            String::from_utf8_lossy(&parent)
        );
        // Not dumpable while it holds a key: a user's agent cannot read that file at all; root
        // can, and sees the value blanked.
        let parent_env = std::fs::read(&parent_env).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert!(holds(&parent_env, b"SSL_CERT_FILE="), "{}", String::from_utf8_lossy(&parent_env));
        } else {
            assert!(parent_env.is_empty(), "{}", String::from_utf8_lossy(&parent_env));
        }
        assert!(!holds(&parent_env, KEY.as_bytes()), "{var}: fixbench's /proc environ shows the key");
        let files = files_under(&sb.results());
        assert!(files.iter().any(|f| f.ends_with("stdout.log")) && files.len() > 3, "{files:?}");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(!holds(&bytes, KEY.as_bytes()), "{var}: the key is stored in {}", f.display());
        }
    }
}

#[test]
fn https_without_the_key_or_the_ca_fails_and_says_why() {
    let tls = TlsReplay::start();
    let mut wrong = Vec::new();
    // No key: the server refuses it, and the run says which variable to set.
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 1 --max-tokens 8");
    let out = run_cmd(&sb, &tls.replay.url, &agent, &[], &[("SSL_CERT_FILE", tls.cert())]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(fixbench::exit_codes::ENVIRONMENT) || !stderr.contains("FIXBENCH_API_KEY") {
        wrong.push(format!(
            "without FIXBENCH_API_KEY: exit {:?}, want {} naming FIXBENCH_API_KEY; stderr:\n{stderr}",
            out.status.code(),
            fixbench::exit_codes::ENVIRONMENT
        ));
    }
    // doctor says the same, and with the key tells the kind.
    let doctor = |env: &[(&str, &str)]| {
        let mut cmd = fixbench(sb.path());
        cmd.env_remove("FIXBENCH_API_KEY").env_remove("LLAMA_API_KEY").envs(env.iter().copied());
        cmd.args(["doctor", "--server", &tls.replay.url]).output().unwrap()
    };
    let out = doctor(&[("SSL_CERT_FILE", tls.cert())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(fixbench::exit_codes::ENVIRONMENT) || !stderr.contains("FIXBENCH_API_KEY") {
        wrong.push(format!("doctor without the key: exit {:?}; stderr:\n{stderr}", out.status.code()));
    }
    let out = doctor(&[("SSL_CERT_FILE", tls.cert()), ("FIXBENCH_API_KEY", KEY)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains(&format!("server  {}: vllm 0.32.0", tls.replay.url)) {
        wrong.push(format!("doctor with the key: exit {:?}; stdout:\n{stdout}", out.status.code()));
    }
    // A wrong key: refused, said so, and the key is not printed.
    let sb = Sandbox::new();
    let env = [("FIXBENCH_API_KEY", "not-the-key"), ("SSL_CERT_FILE", tls.cert())];
    let out = run_cmd(&sb, &tls.replay.url, &agent, &[], &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(fixbench::exit_codes::ENVIRONMENT)
        || !stderr.contains("refused the API key")
        || stderr.contains("not-the-key")
    {
        wrong.push(format!("with a wrong key: exit {:?}; stderr:\n{stderr}", out.status.code()));
    }
    // The key but not the CA: the certificate is not trusted, and the run says so.
    let sb = Sandbox::new();
    let out = run_cmd(&sb, &tls.replay.url, &agent, &[], &[("FIXBENCH_API_KEY", KEY)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!holds(&out.stderr, KEY.as_bytes()) && !holds(&out.stdout, KEY.as_bytes()), "the key printed: {stderr}");
    if out.status.code() != Some(fixbench::exit_codes::ENVIRONMENT)
        || !stderr.contains("certificate")
        || !stderr.contains("SSL_CERT_FILE")
    {
        wrong.push(format!(
            "without SSL_CERT_FILE: exit {:?}, want {} naming the untrusted certificate and SSL_CERT_FILE; \
             stderr:\n{stderr}",
            out.status.code(),
            fixbench::exit_codes::ENVIRONMENT
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A rustls client configuration trusting only `cert` (for the test's own call).
fn trusting(cert: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}
