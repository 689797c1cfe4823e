//! Trials at once against real llama-servers: exact attribution of every request under
//! overlap, a pool of two servers (one of which dies mid-run), `--jobs auto`, and trials that
//! own their slot under `--cache-state cold`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::llama::{multiturn_cmd, LlamaServer};
use crate::util::*;

/// When a trial's agent ran, in seconds since the epoch.
fn agent_span(t: &Value) -> (f64, f64) {
    let start = chrono::DateTime::parse_from_rfc3339(t["started_at"].as_str().unwrap()).unwrap();
    let s = start.timestamp_millis() as f64 / 1000.0;
    (s, s + t["wall_s"].as_f64().unwrap())
}

fn overlapping(ts: &[Value]) -> bool {
    let spans: Vec<(f64, f64)> = ts.iter().map(agent_span).collect();
    spans.iter().enumerate().any(|(i, a)| spans[i + 1..].iter().any(|b| a.0 < b.1 && b.0 < a.1))
}

#[test]
fn overlapping_trials_record_their_own_requests_and_sum_to_the_runs_counters_exactly() {
    let server = LlamaServer::start(&["-np", "2", "-c", "4096"]);
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_TEST_PARK", "0").args([
            "run",
            "--server",
            &server.url(),
            "--isolation",
            "none",
            "--jobs",
            "3",
            "--cmd",
            &multiturn_cmd("--turns 3 --max-tokens 6 --stream"),
            "--cmd",
            &repo().join("tests/agents/parked.sh").to_string_lossy(),
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["config"]["jobs"], 3);
    let ts = trials(&run);
    assert_eq!(ts.len(), 6);
    let talkers: Vec<Value> = ts.iter().filter(|t| t["agent"] == "cmd").cloned().collect();
    assert!(overlapping(&talkers), "the trials ran at once");
    for t in ts {
        assert_eq!(t["server_url"], server.url(), "{t:#}");
        assert_eq!(t["telemetry_missing"], serde_json::json!([]), "{t:#}");
    }
    for t in &talkers {
        // Exactly its own three turns, in one conversation: no neighbour's request.
        assert_eq!(requests(t).len(), 3, "{t:#}");
        assert!(requests(t).iter().all(|r| r["conversation"] == 0), "{t:#}");
        assert_eq!(t["server"]["from_requests"], true, "overlapping: the figures are the requests' own");
    }
    // The sums over every trial's requests equal the run's /metrics deltas exactly.
    let sum = |k: &str| ts.iter().flat_map(requests).map(|r| u(&r[k])).sum::<u64>() as f64;
    let m = &run["servers"][0]["metrics"];
    assert_eq!(m["prompt_tokens"].as_f64().unwrap(), sum("prompt_n"), "{m}");
    assert_eq!(m["cached_tokens"].as_f64().unwrap(), sum("cache_n"), "{m}");
    assert_eq!(m["predicted_tokens"].as_f64().unwrap(), sum("predicted_n"), "{m}");
    assert_eq!(run["servers"][0]["trials"], 6);
    assert_eq!(run["servers"][0]["total_slots"], 2);
    // Each trial had a proxy port of its own.
    let dir = sb.results().join(run["run_id"].as_str().unwrap());
    let ports: BTreeSet<String> = ts
        .iter()
        .filter(|t| t["agent"] == "cmd2")
        .map(|t| std::fs::read_to_string(dir.join(t["paths"]["stdout"].as_str().unwrap())).unwrap())
        .map(|s| s.split("base=").nth(1).unwrap().trim().to_string())
        .collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
}

#[test]
fn a_pool_of_two_servers_shares_the_trials_and_goes_on_when_one_dies() {
    let a = LlamaServer::start(&[]);
    let mut b = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    let child = fixbench(sb.path())
        .args(["run", "--server", &a.url(), "--server", &b.url(), "--isolation", "none", "--repeat", "2"])
        .args(["--jobs", "2", "--cmd", &multiturn_cmd("--turns 3 --max-tokens 6 --think 0.5")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a trial on b is saved, the next one has started there: kill b under it.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "no trial on the second server finished");
        let on_b = std::fs::read_dir(sb.results()).ok().and_then(|runs| {
            let dir = runs.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.join("run.json").is_file())?;
            Some(trial_files(&dir).iter().any(|(_, t)| t["server_url"] == b.url()))
        });
        if on_b == Some(true) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    b.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the run goes on without it"), "{err}");
    let run = sb.only_run();
    assert_eq!(run["status"], "finished");
    let ts = trials(&run);
    assert_eq!(ts.len(), 6, "every trial ran, on the server left");
    assert!(ts.iter().all(|t| t["total"] == 15 || t["total"] == 24 || t["total"] == 22), "every trial is graded");
    let servers = run["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    assert!(servers[0]["dropped"].is_null() && servers[0]["metrics"].is_object(), "{servers:?}");
    assert!(servers[1]["dropped"].as_str().unwrap().contains("stopped answering"), "{servers:?}");
    assert!(servers[1]["metrics"].is_null());
    let hit: Vec<&Value> = ts.iter().filter(|t| t["server_url"] == b.url()).collect();
    assert!(
        hit.iter().any(|t| t["telemetry_missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("stopped or failed"))),
        "the trial in flight on the dead server keeps its grade, its telemetry marked missing: {hit:#?}"
    );
    let counts = (servers[0]["trials"].as_u64().unwrap(), servers[1]["trials"].as_u64().unwrap());
    assert_eq!(counts.0 + counts.1, 6);
    assert!(counts.1 >= 2, "b ran trials before it died: {counts:?}");
}

#[test]
fn jobs_auto_is_the_servers_slots_and_cold_trials_own_their_slot() {
    let save = tempfile::tempdir().unwrap();
    let server =
        LlamaServer::start(&["-np", "2", "--cache-ram", "0", "--slot-save-path", &save.path().to_string_lossy()]);
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--server",
            &server.url(),
            "--isolation",
            "none",
            "--jobs",
            "auto",
            "--cache-state",
            "cold",
            "--problem",
            "expr_calc",
            "--repeat",
            "4",
            "--cmd",
            &multiturn_cmd("--turns 2 --max-tokens 4"),
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["config"]["jobs"], 2, "auto: the server's two slots");
    for t in trials(&run) {
        let slot = t["pinned_slot"].as_u64().unwrap_or_else(|| panic!("cold with trials at once pins: {t:#}"));
        assert!(slot < 2);
        for r in requests(t) {
            assert_eq!(r["slot"].as_u64(), Some(slot), "every request is served by the trial's slot: {r}");
        }
        // Its slot was erased before it started: the first request finds nothing of before.
        assert!(u(&requests(t)[0]["cache_n"]) < 8, "{t:#}");
        assert_eq!(t["telemetry_missing"], serde_json::json!([]), "{t:#}");
    }
    let slots: BTreeSet<u64> = trials(&run).iter().map(|t| t["pinned_slot"].as_u64().unwrap()).collect();
    assert_eq!(slots.len(), 2, "both slots were used");
}

#[test]
fn an_agent_that_reaches_the_server_past_its_proxy_is_noticed() {
    let server = LlamaServer::start(&["-np", "2"]);
    let sb = Sandbox::new();
    // The scripted agent, pointed at the server itself instead of its trial's proxy.
    let direct = multiturn_cmd(&format!("--turns 1 --max-tokens 2 --base-url {}/v1", server.url()));
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--server", &server.url(), "--isolation", "none", "--jobs", "2"]).args([
            "--problem",
            "expr_calc",
            "--repeat",
            "2",
            "--cmd",
            &direct,
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(trials(&run).iter().all(|t| requests(t).is_empty()), "nothing went through the proxies");
    let missing = run["servers"][0]["missing"].as_array().unwrap();
    assert!(
        missing.iter().any(|m| m.as_str().unwrap().contains("past its proxy")),
        "the server's counters exceed the kept requests: {missing:?}"
    );
}

#[test]
fn more_sessions_than_slots_queue_at_the_server_and_doctor_names_the_flag() {
    // One slot, three agents at once, each a three-turn conversation of long answers: most of
    // the time some request waits for the slot, which llama-server's gauges show.
    let server = LlamaServer::start(&["-np", "1", "-c", "4096"]);
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 3 --max-tokens 48 --stream");
    let run_with = |jobs: &str, problems: &[&str]| -> Value {
        let mut cmd = fixbench(sb.path());
        cmd.args(["run", "--server", &server.url(), "--isolation", "none", "--jobs", jobs, "--cmd", &agent, "--json"]);
        for p in problems {
            cmd.args(["--problem", p]);
        }
        serde_json::from_slice(&run_expect(&mut cmd, 0).stdout).unwrap()
    };
    let run = run_with("3", &["expr_calc", "mini_sheet", "mini_stackvm"]);
    assert!(overlapping(trials(&run)), "the trials ran at once");
    let load = &run["servers"][0]["load"];
    assert!(load["samples"].as_u64().unwrap() >= 2, "{load:#}");
    assert_eq!(load["peak_running"], 1.0, "one slot runs one request: {load:#}");
    assert!(load["peak_waiting"].as_f64().unwrap() >= 1.0, "the others waited: {load:#}");
    assert!(load["waiting_share"].as_f64().unwrap() > 0.0, "{load:#}");
    let out = run_expect(fixbench(sb.path()).args(["doctor", run["run_id"].as_str().unwrap(), "--json"]), 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let queue = doc["findings"].as_array().unwrap().iter().find(|f| f["check"] == "server_queue").unwrap();
    assert_eq!(queue["kind"], "cost", "{queue:#}");
    let fix = queue["fix"].as_str().unwrap();
    let n: u64 = fix.strip_prefix("-np ").unwrap().parse().unwrap();
    assert!(n >= 2, "{fix}");
    // One agent at a time: nothing ever waits.
    let run = run_with("1", &["expr_calc"]);
    let load = &run["servers"][0]["load"];
    assert!(load["samples"].as_u64().unwrap() >= 1, "{load:#}");
    assert_eq!((&load["peak_waiting"], &load["waiting_share"]), (&Value::from(0.0), &Value::from(0.0)), "{load:#}");
}
