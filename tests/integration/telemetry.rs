//! Server-side truth against a real llama-server (SmolLM2 on CPU) with the scripted
//! multi-turn agent: counter deltas, the recording proxy, re-prefill, cache states, a server
//! that dies mid-trial, the fingerprint on `--resume`, `fixbench proxy` and `fixbench doctor`,
//! requests whose client hangs up, and the slot each request got and its wait for it (the
//! proxy driven directly).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fixbench::store::RequestRecord;
use fixbench::telemetry::client::Server;
use fixbench::telemetry::metrics::{self, Counters};
use fixbench::telemetry::proxy::{Inject, Proxy};
use serde_json::Value;

use crate::llama::{free_port, multiturn_cmd, LlamaServer};
use crate::util::*;

/// `fixbench run` on expr_calc against `server` with `--cmd` agents; returns the stored run.
fn run(sb: &Sandbox, results: &str, server: &LlamaServer, agents: &[String], extra: &[&str]) -> Value {
    let mut cmd = fixbench(sb.path());
    cmd.args(["run", "--server", &server.url(), "--problem", "expr_calc", "--isolation", "none", "--results", results]);
    for a in agents {
        cmd.args(["--cmd", a]);
    }
    cmd.args(extra);
    run_expect(&mut cmd, 0);
    only_run_in(&sb.path().join(results))
}

fn only_run_in(dir: &Path) -> Value {
    let runs: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("run.json").is_file()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    read_run(&runs[0])
}

/// The proxy's per-request sums equal the server's counter deltas, exactly.
fn assert_sums_match_metrics(t: &Value) {
    let sum = |k: &str| requests(t).iter().map(|r| u(&r[k])).sum::<u64>();
    assert_eq!(t["server"]["prompt_tokens"].as_f64().unwrap(), sum("prompt_n") as f64, "prompt tokens: {t:#}");
    assert_eq!(t["server"]["cached_tokens"].as_f64().unwrap(), sum("cache_n") as f64, "cached tokens: {t:#}");
    assert_eq!(t["server"]["predicted_tokens"].as_f64().unwrap(), sum("predicted_n") as f64, "predicted: {t:#}");
}

#[test]
fn multiturn_agent_sums_match_metrics_and_follow_ups_hit_the_cache() {
    let server = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    let run = run(&sb, "results", &server, &[multiturn_cmd("--turns 3 --stream")], &[]);

    let info = &run["server"];
    assert_eq!(info["model"], "SmolLM2-135M-Instruct");
    assert_eq!(info["quant"], "Q4_1");
    assert_eq!(info["total_slots"], 1);
    assert_eq!(info["n_ctx_per_slot"], 2048);
    assert_eq!(info["model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(info["model_size_bytes"].as_u64(), Some(std::fs::metadata(crate::llama::model()).unwrap().len()));
    assert_eq!(info["chat_template_sha256"].as_str().unwrap().len(), 64);
    assert!(info["build_info"].is_string() && info["slots"].is_array());

    let t = &trials(&run)[0];
    assert_eq!(t["total"], 15, "the trial is graded: {t:#}");
    assert_eq!(t["telemetry_missing"], serde_json::json!([]), "{t:#}");
    assert_eq!(t["cache_state"], "shared");
    let reqs = requests(t);
    assert_eq!(reqs.len(), 3);
    assert_sums_match_metrics(t);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r["status"], 200);
        assert_eq!(r["path"], "/v1/chat/completions");
        assert_eq!((u(&r["conversation"]), u(&r["turn"])), (0, i as u64));
        assert_eq!(r["stream"], true);
        let (ttft, total) = (r["ttft_ms"].as_f64().unwrap(), r["total_ms"].as_f64().unwrap());
        assert!(ttft > 0.0 && ttft < total, "a streamed request's TTFT is below its total: {r}");
        assert!(r["prompt_ms"].as_f64().unwrap() > 0.0 && u(&r["predicted_n"]) > 0);
        if i > 0 {
            let prev = &reqs[i - 1];
            assert!(u(&r["cache_n"]) >= u(&prev["prompt_n"]) + u(&prev["cache_n"]), "turn {i} reuses the cache: {r}");
            assert_eq!(r["reprefilled_tokens"], 0, "{r}");
        }
    }
    let s = &t["server"];
    let ratio = s["cache_hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.3 && ratio < 1.0, "{s}");
    assert!(s["prefill_tps"].as_f64().unwrap() > 0.0 && s["decode_tps"].as_f64().unwrap() > 0.0);
    let timing = &t["timing"];
    assert_eq!(timing["requests"], 3);
    assert_eq!(timing["conversations"], 1);
    assert_eq!(timing["reprefilled_tokens"], 0);
    let wait = timing["server_wait_s"].as_f64().unwrap();
    let agent_s = t["agent_s"].as_f64().unwrap();
    assert!(wait > 0.0 && wait <= agent_s + 0.5, "{timing} vs agent_s {agent_s}");

    // The doctor reads the same run: one slot for one conversation, nothing re-prefilled.
    let out = run_expect(fixbench(sb.path()).args(["doctor", "latest", "--json"]), 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = |check: &str| doc["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).cloned();
    assert_eq!(finding("slots").unwrap()["kind"], "ok", "{doc:#}");
    assert_eq!(finding("reprefill").unwrap()["kind"], "ok", "{doc:#}");
    assert_eq!(finding("slot_save_path").unwrap()["fix"], "--slot-save-path DIR");
}

#[test]
fn forced_cache_misses_are_reported_as_reprefilled_tokens() {
    // One slot and no host-memory prompt cache: interleaved conversations evict each other.
    let server = LlamaServer::start(&["-cram", "0"]);
    let sb = Sandbox::new();
    let run = run(
        &sb,
        "results",
        &server,
        &[multiturn_cmd("--turns 2 --no-cache-prompt"), multiturn_cmd("--turns 2 --conversations 2")],
        &[],
    );
    let by_agent = |name: &str| trials(&run).iter().find(|t| t["agent"] == name).unwrap();

    // cache_prompt: false — every turn prefills everything again.
    let t = by_agent("cmd");
    assert_sums_match_metrics(t);
    let reqs = requests(t);
    assert_eq!(reqs.len(), 2);
    let first_total = u(&reqs[0]["prompt_n"]) + u(&reqs[0]["cache_n"]);
    assert_eq!(u(&reqs[1]["reprefilled_tokens"]), first_total - u(&reqs[1]["cache_n"]), "{reqs:#?}");
    assert!(u(&t["timing"]["reprefilled_tokens"]) > 100);

    // Two interleaved conversations on one slot.
    let t = by_agent("cmd2");
    assert_sums_match_metrics(t);
    let reqs = requests(t);
    assert_eq!(reqs.len(), 4);
    let convs: Vec<(u64, u64)> = reqs.iter().map(|r| (u(&r["conversation"]), u(&r["turn"]))).collect();
    assert_eq!(convs, [(0, 0), (1, 0), (0, 1), (1, 1)]);
    for r in &reqs[2..] {
        assert!(u(&r["reprefilled_tokens"]) > 50, "the other conversation evicted this one's prefix: {r}");
    }
    assert_eq!(t["timing"]["conversations"], 2);

    // The doctor sees the re-prefill share from the stored run.
    let out = run_expect(fixbench(sb.path()).args(["doctor", "latest", "--server", &server.url(), "--json"]), 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding =
        |check: &str| doc["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).cloned().unwrap();
    // The interleaved conversations lost their prefixes to each other (eviction); the
    // cache_prompt: false turns found nothing cached at all (the prompt cache is off).
    assert_eq!(finding("reprefill")["kind"], "cost", "{doc:#}");
    assert_eq!(finding("prompt_cache")["kind"], "cost", "{doc:#}");
    assert!(finding("prompt_cache")["message"].as_str().unwrap().contains("1 of the 3 follow-up"), "{doc:#}");
    let text = run_expect(fixbench(sb.path()).args(["doctor", "latest", "--server", &server.url()]), 0);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("costs time") && text.contains("fix: -np 1"), "{text}");
}

#[test]
fn a_server_killed_mid_trial_leaves_a_graded_trial_with_telemetry_marked_missing() {
    let server = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    let agent = multiturn_cmd(&format!("--turns 3 --kill-pid {} --kill-after 1", server.pid()));
    let run = run(&sb, "results", &server, &[agent], &[]);
    let t = &trials(&run)[0];
    assert_eq!(t["total"], 15, "still graded: {t:#}");
    assert_eq!(t["server"], Value::Null, "no counters after the server died: {t:#}");
    let missing = t["telemetry_missing"].as_array().unwrap();
    let joined = missing.iter().map(|m| m.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(joined.contains("at trial end") && joined.contains("stopped or failed"), "{joined}");
    assert!(joined.contains("got no answer from the server"), "{joined}");
    let reqs = requests(t);
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0]["status"], 200);
    for r in &reqs[1..] {
        assert_eq!(r["status"], 502, "{r}");
        assert!(r["error"].as_str().unwrap().contains("did not answer"), "{r}");
        assert_eq!(r["prompt_n"], Value::Null, "unknown, not zero: {r}");
    }
    assert!(
        t["error"].as_str().unwrap_or("").contains("exited with code 1"),
        "the agent's failure is the trial's error"
    );
}

#[test]
fn cache_states_cold_and_warm_prepare_the_cache() {
    // cold needs --slot-save-path: without it the run refuses up front and names the flag.
    let plain = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--server",
            &plain.url(),
            "--agent",
            "null",
            "--cache-state",
            "cold",
            "--isolation",
            "none",
        ]),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--slot-save-path"), "{err}");
    drop(plain);

    let slots_dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&["-cram", "0", "--slot-save-path", &slots_dir.path().to_string_lossy()]);
    let first_cached =
        |run: &Value| -> Vec<u64> { trials(run).iter().map(|t| u(&requests(t)[0]["cache_n"])).collect() };

    // shared: the second trial finds the first one's prompt cached (all but one token).
    let shared = run(&sb, "shared", &server, &[multiturn_cmd("--turns 1")], &["--repeat", "2"]);
    let c = first_cached(&shared);
    assert!(c[1] > 100, "shared keeps the cache between trials: {c:?}");
    // cold: every trial starts from erased slots.
    let cold = run(&sb, "cold", &server, &[multiturn_cmd("--turns 1")], &["--repeat", "2", "--cache-state", "cold"]);
    assert_eq!(first_cached(&cold), [0, 0]);
    for t in trials(&cold) {
        assert_eq!(t["cache_state"], "cold");
        assert_eq!(t["telemetry_missing"], serde_json::json!([]), "{t:#}");
        assert_sums_match_metrics(t);
    }
    // warm: two agents alternate on one slot, so without a warm-up each finds the other's
    // prompt; the warm-up copies the agent's own first request of its previous trial.
    let agents = [multiturn_cmd("--turns 1 --filler 4"), multiturn_cmd("--turns 1 --filler 6")];
    let warm = run(&sb, "warm", &server, &agents, &["--repeat", "2", "--cache-state", "warm"]);
    for t in trials(&warm).iter().filter(|t| t["repeat"] == 1) {
        let r = &requests(t)[0];
        let total = u(&r["prompt_n"]) + u(&r["cache_n"]);
        assert_eq!(u(&r["cache_n"]), total - 1, "the warm-up prefilled this agent's first prompt: {r}");
        assert_sums_match_metrics(t);
    }
}

#[test]
fn resume_refuses_a_server_whose_fingerprint_changed() {
    let sb = Sandbox::new();
    let one = LlamaServer::start(&[]);
    let run = run(&sb, "results", &one, &[], &["--agent", "null", "--repeat", "2"]);
    drop(one);
    // Make it an unfinished run: drop its last trial.
    let id = run["run_id"].as_str().unwrap();
    keep_trials(&sb.path().join("results").join(id), 1);

    let two = LlamaServer::start(&["-np", "2"]);
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--resume",
            id,
            "--server",
            &two.url(),
            "--results",
            "results",
            "--isolation",
            "none",
        ]),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("slots: 1 → 2") && err.contains("--resume"), "{err}");
}

#[test]
fn proxy_command_records_openai_and_anthropic_requests() {
    let server = LlamaServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let proxy = Command::new(env!("CARGO_BIN_EXE_fixbench"))
        .args(["proxy", "--server", &server.url(), "--listen", &listen, "--log"])
        .arg(&log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let start = Instant::now();
    while ureq::get(&format!("{base}/health")).call().is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "fixbench proxy did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("python3")
        .arg(repo().join("tests/agents/multiturn.py"))
        .args(["--base-url", &format!("{base}/v1"), "--turns", "2", "--stream"])
        .status()
        .unwrap();
    assert!(status.success());
    let models: Value = ureq::get(&format!("{base}/v1/models")).call().unwrap().into_json().unwrap();
    assert!(models["data"].is_array());
    let msg: Value = ureq::post(&format!("{base}/v1/messages"))
        .send_json(serde_json::json!({"model": "local", "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]}))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(msg["type"], "message", "{msg}");

    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(proxy.id() as i32), nix::sys::signal::Signal::SIGINT);
    let out = proxy.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("POST /v1/chat/completions 200 stream ttft"), "one line per request: {stderr}");
    assert!(stderr.contains(" queued ") && stderr.contains(" slot 0 "), "the wait for a slot and the slot: {stderr}");

    // Every request is logged; the readiness polls of /health are left out here.
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["path"] != "/health")
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!((u(&lines[1]["conversation"]), u(&lines[1]["turn"])), (0, 1));
    assert!(u(&lines[1]["cache_n"]) > 0);
    assert!(lines[1]["ttft_ms"].as_f64().unwrap() < lines[1]["total_ms"].as_f64().unwrap());
    assert_eq!(lines[1]["slot"], 0, "named by the server: {}", lines[1]);
    assert!(lines[1]["queue_ms"].as_f64().unwrap() < lines[1]["ttft_ms"].as_f64().unwrap());
    assert_eq!(lines[2]["path"], "/v1/models");
    let m = &lines[3];
    assert_eq!(m["path"], "/v1/messages");
    assert_eq!(m["status"], 200);
    assert_eq!(u(&m["prompt_n"]) as f64, msg["usage"]["input_tokens"].as_f64().unwrap(), "from Anthropic usage: {m}");
    assert_eq!(m["prompt_ms"], Value::Null, "/v1/messages has no timings");
}

#[test]
fn doctor_on_a_live_server_and_a_run_without_metrics() {
    // No --metrics, two slots.
    let server = LlamaServer::start_raw(&["-c", "2048", "-np", "2", "-t", "2"]);
    let sb = Sandbox::new();
    let out = run_expect(fixbench(sb.path()).args(["doctor", "--server", &server.url(), "--json"]), 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding =
        |check: &str| doc["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).cloned().unwrap();
    assert_eq!(finding("metrics_endpoint")["kind"], "blind_spot");
    assert_eq!(finding("metrics_endpoint")["fix"], "--metrics");
    assert_eq!(finding("slots")["kind"], "note");
    assert!(finding("slots")["fix"].as_str().unwrap().starts_with("-np 1"));

    // A trial on that server is still graded; its counters are missing and say why.
    let run = run(&sb, "results", &server, &[multiturn_cmd("--turns 1")], &[]);
    let t = &trials(&run)[0];
    assert_eq!(t["total"], 15);
    // Its figures come from the requests' own answers, and the sentence says what is lost.
    assert_eq!(t["server"]["from_requests"], true, "{:#}", t["server"]);
    assert!(t["server"]["predicted_tokens"].as_f64().unwrap() > 0.0, "{:#}", t["server"]);
    let missing = &t["telemetry_missing"];
    let said = missing.as_array().unwrap().iter().filter_map(Value::as_str);
    assert!(
        said.into_iter().any(|m| m.starts_with("server counters unknown")
            && m.contains("/metrics is off")
            && m.contains("--metrics")),
        "{missing:#}"
    );
    assert_eq!(requests(t).len(), 1, "the proxy still records requests");

    // No server and no run: nothing to examine.
    let out = run_expect(fixbench(sb.path()).args(["doctor"]), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server"));
}

/// A chat request sent through `proxy` on a connection of its own, which the caller drops to
/// hang up (as a killed agent does).
fn chat_raw(proxy: &Proxy, body: &Value) -> std::net::TcpStream {
    use std::io::Write;
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

fn generate(tokens: u32, stream: bool) -> Value {
    serde_json::json!({
        "messages": [{"role": "user", "content": "Count from one to one thousand in words."}],
        "max_tokens": tokens,
        "ignore_eos": true,
        "stream": stream,
    })
}

fn counters(server: &LlamaServer) -> Counters {
    metrics::scrape(&Server::new(&server.url()).unwrap(), fixbench::telemetry::kind::ServerKind::LlamaServer).unwrap()
}

#[test]
fn requests_abandoned_by_their_client_are_recorded_with_the_servers_timings() {
    let server = LlamaServer::start(&[]);
    let proxy = Proxy::start(&server.url(), SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
    for stream in [false, true] {
        let before = counters(&server);
        proxy.begin(true);
        let mut client = chat_raw(&proxy, &generate(64, stream));
        if stream {
            // Hang up once the first token has arrived.
            use std::io::Read;
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !String::from_utf8_lossy(&got).contains("data: ") {
                let n = client.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended early");
                got.extend_from_slice(&buf[..n]);
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(client);
        let t = Instant::now();
        let got = proxy.end(Duration::from_secs(60));
        let waited = t.elapsed();
        let after = counters(&server);
        assert_eq!((got.records.len(), got.unfinished), (1, 0), "{got:?}");
        let r = &got.records[0];
        eprintln!("stream {stream}: end waited {waited:?} for {r:?}");
        let gone = r.abandoned_ms.expect("marked as abandoned");
        assert!(gone + 100.0 < r.total_ms, "the client left first: {r:?}");
        assert!(waited < Duration::from_secs(50), "end waited for the server, not the whole grace: {waited:?}");
        assert_eq!((r.status, r.stream), (200, stream), "{r:?}");
        assert_eq!(r.predicted_n, Some(64), "{r:?}");
        assert!(r.error.as_deref().unwrap().contains("client closed"), "{r:?}");
        let d = metrics::delta(&before, &after).unwrap();
        assert_eq!(d.prompt_tokens, r.prompt_n.unwrap() as f64, "{d:?} vs {r:?}");
        assert_eq!(d.cached_tokens, r.cache_n.unwrap() as f64, "{d:?} vs {r:?}");
        assert_eq!(d.predicted_tokens, r.predicted_n.unwrap() as f64, "{d:?} vs {r:?}");
    }
}

#[test]
fn a_request_abandoned_past_the_grace_is_cut_short_and_the_server_stops() {
    let server = LlamaServer::start(&[]);
    let proxy = Proxy::start(&server.url(), SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
    proxy.begin(true);
    let client = chat_raw(&proxy, &generate(1500, false));
    std::thread::sleep(Duration::from_millis(200));
    drop(client);
    let t = Instant::now();
    let got = proxy.end(Duration::from_secs(1));
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!((got.records.len(), got.unfinished), (1, 0), "{got:?}");
    let r = &got.records[0];
    assert!(r.abandoned_ms.is_some(), "{r:?}");
    assert_eq!((r.status, r.prompt_n, r.predicted_n), (0, None, None), "unknown, not zero: {r:?}");
    assert!(r.error.as_deref().unwrap().contains("cancelled"), "{r:?}");

    // The closed connection told the server to stop generating. Watched in its log: polling
    // /slots this often would itself keep llama-server from noticing the closed connection
    // (it checks only when no other result arrived for a second).
    let t = Instant::now();
    while !server.log_text().contains("cancel task") {
        assert!(t.elapsed() < Duration::from_secs(10), "the server kept generating");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("the server cancelled the task {:?} after the cut", t.elapsed());
    // The slot is released just after the log line: give it a moment.
    let t = Instant::now();
    while server.get_json("/slots")[0]["is_processing"] != false {
        assert!(t.elapsed() < Duration::from_secs(5), "the slot stayed busy after the cancel");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Nothing is left counted: the next trial ends at once.
    proxy.begin(true);
    let t = Instant::now();
    let next = proxy.end(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!((next.records.len(), next.unfinished), (0, 0));
}

/// `bodies` sent to `/v1/chat/completions` through `proxy` all at once, each from a thread
/// of its own, as one trial; their records, ordered by their wait for a slot.
fn at_once(proxy: &Proxy, bodies: &[Value]) -> Vec<RequestRecord> {
    proxy.begin(true);
    let url = format!("{}/chat/completions", proxy.base_url());
    let go = Arc::new(Barrier::new(bodies.len()));
    let threads: Vec<_> = bodies
        .iter()
        .cloned()
        .map(|body| {
            let (url, go) = (url.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                ureq::post(&url).send_json(body).unwrap().into_string().unwrap()
            })
        })
        .collect();
    for t in threads {
        let answer = t.join().unwrap();
        // The proxy asked for `verbose`: the agent gets llama-server's debug object too.
        assert!(answer.contains("\"__verbose\"") && answer.contains("\"id_slot\""), "{answer}");
    }
    let mut got = proxy.end(Duration::from_secs(60)).records;
    assert_eq!(got.len(), bodies.len(), "{got:#?}");
    for r in &got {
        assert_eq!((r.status, r.error.as_deref()), (200, None), "{r:?}");
        eprintln!(
            "stream {} slot {:?} queue_ms {:.0} prompt_ms {:.0} predicted_ms {:.0} ttft_ms {:.0} total_ms {:.0}",
            r.stream,
            r.slot,
            r.queue_ms.unwrap(),
            r.prompt_ms.unwrap(),
            r.predicted_ms.unwrap(),
            r.ttft_ms.unwrap(),
            r.total_ms
        );
    }
    got.sort_by(|a, b| a.queue_ms.unwrap().total_cmp(&b.queue_ms.unwrap()));
    got
}

fn ask(question: &str, stream: bool) -> Value {
    serde_json::json!({
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 16,
        "ignore_eos": true,
        "stream": stream,
    })
}

/// The first request's time on its slot; the second waited for that slot at least about as
/// long, the first hardly at all.
fn assert_second_waited_for_the_first(first: &RequestRecord, second: &RequestRecord) {
    let served = first.prompt_ms.unwrap() + first.predicted_ms.unwrap();
    let (q1, q2) = (first.queue_ms.unwrap(), second.queue_ms.unwrap());
    assert!(q2 >= 0.8 * served, "the second waited {q2:.0} ms for a slot the first held {served:.0} ms");
    assert!(q1 < 0.25 * q2, "the first hardly waited: {q1:.0} ms vs {q2:.0} ms");
}

#[test]
fn requests_at_once_record_their_slot_and_their_wait_for_it() {
    let count = "Count from one to one thousand in words.";
    let colors = "Name every color you know.";
    let streamed = [ask(count, true), ask(colors, true)];

    // One slot: the second request waits for the first to finish.
    let one = LlamaServer::start(&[]);
    let proxy = Proxy::start(&one.url(), SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
    let got = at_once(&proxy, &streamed);
    assert_eq!(got.iter().map(|r| r.slot).collect::<Vec<_>>(), [Some(0), Some(0)]);
    assert_second_waited_for_the_first(&got[0], &got[1]);
    drop(proxy);
    drop(one);

    // Two slots: one each.
    let two = LlamaServer::start(&["-np", "2"]);
    let proxy = Proxy::start(&two.url(), SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
    let got = at_once(&proxy, &streamed);
    let mut slots: Vec<_> = got.iter().map(|r| r.slot.unwrap()).collect();
    slots.sort();
    assert_eq!(slots, [0, 1], "{got:#?}");

    // Pinned to slot 1: both take it, one after the other, though slot 0 is free; a plain
    // answer's wait is what its prefill and decode leave of its time.
    let pin = Inject { verbose: true, id_slot: Some(1), ..Default::default() };
    let pinned = Proxy::start_with(&two.url(), SocketAddr::from(([127, 0, 0, 1], 0)), None, pin).unwrap();
    let got = at_once(&pinned, &[ask(count, true), ask(colors, false)]);
    assert_eq!(got.iter().map(|r| r.slot).collect::<Vec<_>>(), [Some(1), Some(1)], "{got:#?}");
    assert_second_waited_for_the_first(&got[0], &got[1]);
}

#[test]
fn doctor_says_whether_the_agent_sandbox_starts_here() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixbench::synth::run_record("r1", chrono::Utc::now(), &["a".into()]);
    fixbench::store::Store::new(dir.path().join("results")).save(&run).unwrap();
    let doctor = |bwrap: Option<&str>, json: bool| {
        let mut cmd = fixbench(dir.path());
        cmd.args(["doctor", "latest"]);
        if json {
            cmd.arg("--json");
        }
        match bwrap {
            Some(b) => cmd.env("FIXBENCH_BWRAP", b),
            None => cmd.env_remove("FIXBENCH_BWRAP"),
        };
        run_expect(&mut cmd, 0).stdout
    };
    let sandbox_finding = |bwrap: Option<&str>| {
        let doc: Value = serde_json::from_slice(&doctor(bwrap, true)).unwrap();
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "sandbox")
            .cloned()
            .unwrap_or_else(|| panic!("no sandbox finding: {doc:#}"))
    };

    // bubblewrap is installed on this machine (scripts/setup.sh).
    let here = sandbox_finding(None);
    assert_eq!(here["kind"], "ok", "{here}");
    assert!(here["message"].as_str().unwrap().contains("--unshare-pid"), "{here}");

    let missing = sandbox_finding(Some("/nonexistent/bwrap"));
    assert_eq!(missing["kind"], "blocker", "{missing}");
    assert!(missing["message"].as_str().unwrap().contains("`/nonexistent/bwrap` is not installed"), "{missing}");
    let fix = missing["fix"].as_str().unwrap();
    for part in ["scripts/setup.sh", "user namespaces", "--isolation none"] {
        assert!(fix.contains(part), "{fix}");
    }
    let text = String::from_utf8(doctor(Some("/nonexistent/bwrap"), false)).unwrap();
    assert!(
        text.contains("   blocker  the agent sandbox cannot start here")
            && text.contains("fix: install bubblewrap with scripts/setup.sh")
            && !text.contains("nothing found"),
        "{text}"
    );
}

/// An agent that leaves with a request still running: the proxy reads the rest of the answer
/// for the server's timings, but the agent's time and its wait on the server end when it left.
#[test]
fn an_agent_that_leaves_a_request_running_is_timed_to_when_it_left() {
    let server = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    let agent = format!("{} {{base_url}}", repo().join("tests/agents/walk-away.sh").display());
    let run = run(&sb, "results", &server, &[agent], &[]);
    let t = &trials(&run)[0];
    let reqs = requests(t);
    assert_eq!(reqs.len(), 1, "{t:#}");
    let abandoned = reqs[0]["abandoned_ms"].as_f64().unwrap_or_else(|| panic!("not marked abandoned: {t:#}"));
    let agent_s = t["agent_s"].as_f64().unwrap();
    assert!(abandoned < agent_s * 1000.0 + 100.0, "{abandoned} ms vs agent {agent_s} s");
    let timing = &t["timing"];
    let (wait, own) = (timing["server_wait_s"].as_f64().unwrap(), timing["agent_own_s"].as_f64().unwrap());
    assert!(wait <= agent_s + 0.05, "the wait on the server ({wait} s) outlasts the agent ({agent_s} s): {timing}");
    assert!(
        (wait + own - agent_s).abs() < 0.5,
        "wait {wait} + own {own} should make the agent's {agent_s} s: {timing}"
    );
}

fn transcript_of(sb: &Sandbox, results: &str, run: &Value, t: &Value) -> Vec<Value> {
    let rel = t["paths"]["transcript"].as_str().unwrap_or_else(|| panic!("no transcript recorded: {t:#}"));
    let path = sb.path().join(results).join(run["run_id"].as_str().unwrap()).join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len() as u64, u(&t["transcript"]["bytes"]), "the stats are the file's");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_transcript_keeps_each_turn_once_with_the_servers_answer_and_its_figures() {
    let server = LlamaServer::start(&["--parallel", "2"]);
    let sb = Sandbox::new();
    let stored = run(&sb, "results", &server, &[multiturn_cmd("--turns 3 --stream --max-tokens 12")], &[]);
    let t = &trials(&stored)[0];
    let entries = transcript_of(&sb, "results", &stored, t);
    let reqs = requests(t);
    assert_eq!((entries.len(), reqs.len()), (3, 3));
    assert_eq!((u(&t["transcript"]["turns"]), u(&t["transcript"]["dropped_turns"])), (3, 0));
    let roles = |e: &Value| {
        e["new"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(roles(&entries[0]), ["system", "user"]);
    assert_eq!(entries[0]["kept"], 0);
    for i in 1..3 {
        let e = &entries[i];
        assert_eq!(roles(e), ["assistant", "user"], "only what is new since turn {}: {e:#}", i - 1);
        assert_eq!(u(&e["kept"]), 2 * i as u64, "{e:#}");
        let said = entries[i - 1]["answer"]["text"].as_str().unwrap();
        assert!(!said.is_empty(), "the streamed answer was pieced together: {:#}", entries[i - 1]);
        assert_eq!(e["new"][0]["content"], said, "the agent sent back what the server answered");
    }
    for (e, r) in entries.iter().zip(reqs) {
        for k in ["prompt_n", "cache_n", "predicted_n", "turn", "slot"] {
            assert_eq!(e[k], r[k], "{k}: {e:#} vs {r:#}");
        }
    }
    let id = t["id"].as_str().unwrap();
    let out = run_expect(fixbench(sb.path()).args(["show", "latest", "--trial", id, "--transcript"]), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("conversation 0 turn 2") && text.contains("[system] You are a terse assistant"), "{text}");
    assert!(text.contains(entries[2]["answer"]["text"].as_str().unwrap()), "{text}");

    // Two conversations, plain answers, and a cap of 4 KiB: what it drops is counted.
    std::fs::write(sb.path().join("harness.toml"), "[run]\ntranscript_cap_mib = 0.004\n").unwrap();
    let stored = run(&sb, "capped", &server, &[multiturn_cmd("--turns 3 --conversations 2 --filler 6")], &[]);
    let t = &trials(&stored)[0];
    let entries = transcript_of(&sb, "capped", &stored, t);
    let stats = &t["transcript"];
    assert!(u(&stats["bytes"]) <= 4194 && u(&stats["dropped_turns"]) > 0, "{stats}");
    assert_eq!(entries.len() as u64 + u(&stats["dropped_turns"]), 6, "{stats}");
    assert!(entries.iter().all(|e| !e["answer"]["text"].as_str().unwrap_or("").is_empty() || e["predicted_n"] == 0));
    let convs: Vec<u64> = entries.iter().map(|e| u(&e["conversation"])).collect();
    assert!(convs.contains(&0) && convs.contains(&1), "{convs:?}");

    // Off: no file, no path.
    std::fs::remove_file(sb.path().join("harness.toml")).unwrap();
    let stored = run(&sb, "off", &server, &[multiturn_cmd("--turns 1")], &["--no-transcript"]);
    let t = &trials(&stored)[0];
    assert!(t["paths"].get("transcript").is_none() && t.get("transcript").is_none(), "{t:#}");
    let dir = sb.path().join("off").join(stored["run_id"].as_str().unwrap()).join(t["paths"]["dir"].as_str().unwrap());
    assert!(!dir.join("transcript.jsonl").exists());
    let out = run_expect(
        fixbench(sb.path()).args([
            "show",
            "latest",
            "--results",
            "off",
            "--trial",
            t["id"].as_str().unwrap(),
            "--transcript",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-transcript"), "{out:?}");
}
