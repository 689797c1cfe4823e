//! `fixbench doctor` and `fixbench show` on the slots a run's requests went to: a conversation
//! moved to another slot and prefilled again (slot thrash), and trials waiting for a slot
//! because `--jobs` exceeds the server's `-np`. Synthetic stores with known requests, so no
//! server is needed.

use std::path::Path;

use chrono::{Duration, TimeZone, Utc};
use fixbench::store::{RequestRecord, RunRecord, ServerDelta, ServerInfo, ServerUse, Store, TrialRecord};
use fixbench::synth;
use serde_json::Value;

use crate::util::*;

const THRASHED: &str = "20261202-100000-0001";
const CLEAN: &str = "20261202-110000-0002";
const OLD: &str = "20261202-120000-0003";

/// Turn `turn` of conversation 0 on `slot`, re-prefilling `re` tokens, having waited `queue_ms`
/// for its slot; prefill runs at 1,000 tokens/s.
fn turn(turn: u32, slot: Option<u32>, re: u64, queue_ms: Option<f64>) -> RequestRecord {
    RequestRecord {
        offset_ms: turn as f64 * 20_000.0,
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        stream: true,
        status: 200,
        total_ms: 3000.0,
        prompt_n: Some(re + 40),
        cache_n: Some(if turn == 0 { 0 } else { 500 }),
        prompt_ms: Some((re + 40) as f64),
        predicted_n: Some(60),
        predicted_ms: Some(600.0),
        reprefilled_tokens: (turn > 0).then_some(re),
        conversation: Some(0),
        turn: Some(turn),
        slot,
        queue_ms,
        ..Default::default()
    }
}

fn trial(repeat: u32, requests: Vec<RequestRecord>) -> TrialRecord {
    let mut t = synth::trial("expr_calc", "pi", repeat, 11, 15, 11);
    t.agent_run.agent_s = 100.0;
    t.wall_s = 102.0;
    t.telemetry.requests = requests;
    t.telemetry.server_url = Some("http://127.0.0.1:8080".into());
    t
}

/// A run with `--jobs jobs` against one llama-server of `slots` slots. The run names no server
/// URL to examine, so the doctor reads only the record.
fn run(id: &str, jobs: u32, slots: u32, trials: Vec<TrialRecord>) -> RunRecord {
    let at = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap();
    let mut r = synth::run_record(id, at, &["pi".into()]);
    r.config.jobs = Some(jobs);
    r.server = Some(ServerInfo {
        url: "http://127.0.0.1:8080".into(),
        total_slots: Some(slots),
        flags: Some(vec!["-np".into(), slots.to_string()]),
        ..Default::default()
    });
    r.servers = vec![ServerUse {
        url: "http://127.0.0.1:8080".into(),
        total_slots: Some(slots),
        trials: trials.len() as u32,
        metrics: Some(ServerDelta {
            prompt_tokens: 2_500.0,
            cached_tokens: 1_500.0,
            predicted_tokens: 300.0,
            ..Default::default()
        }),
        ..Default::default()
    }];
    for (i, t) in trials.into_iter().enumerate() {
        let mut t = t;
        t.started_at = at + Duration::seconds(i as i64);
        r.trials.push(t);
    }
    r
}

/// Three runs: one whose conversation moved slot and whose trials waited 38% of their agent
/// time for a slot (--jobs 4 on -np 2), a clean one, and one recorded before slots and waits
/// were kept.
fn store(results: &Path) -> Store {
    let store = Store::new(results);
    let thrashed = run(
        THRASHED,
        4,
        2,
        vec![
            trial(
                0,
                vec![
                    turn(0, Some(0), 0, Some(30_000.0)),
                    turn(1, Some(1), 2104, Some(8_000.0)),
                    turn(2, Some(1), 0, Some(0.0)),
                ],
            ),
            trial(1, vec![turn(0, Some(0), 0, Some(20_000.0)), turn(1, Some(0), 0, Some(18_000.0))]),
        ],
    );
    let clean = run(
        CLEAN,
        2,
        2,
        vec![
            trial(0, vec![turn(0, Some(0), 0, Some(40.0)), turn(1, Some(0), 100, Some(1_960.0))]),
            trial(1, vec![turn(0, Some(1), 0, Some(0.0)), turn(1, Some(1), 0, Some(0.0))]),
        ],
    );
    let mut old = run(OLD, 1, 1, vec![trial(0, vec![turn(0, None, 0, None), turn(1, None, 2104, None)])]);
    (old.config.jobs, old.servers) = (None, vec![]);
    old.trials[0].telemetry.server_url = None;
    for r in [&thrashed, &clean, &old] {
        store.save(r).unwrap();
    }
    store
}

fn stdout(cwd: &Path, args: &[&str]) -> String {
    String::from_utf8(run_expect(fixbench(cwd).args(args), 0).stdout).unwrap()
}

fn findings(cwd: &Path, id: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&stdout(cwd, &["doctor", id, "--json"])).unwrap();
    assert_eq!(doc["run"], id, "{doc:#}");
    doc["findings"].as_array().unwrap().clone()
}

fn finding<'a>(f: &'a [Value], check: &str) -> &'a Value {
    f.iter().find(|x| x["check"] == check).unwrap_or_else(|| panic!("no {check} finding: {f:#?}"))
}

#[test]
fn doctor_names_the_thrash_and_the_queueing_with_their_fixes() {
    let tmp = tempfile::tempdir().unwrap();
    store(&tmp.path().join("results"));

    let f = findings(tmp.path(), THRASHED);
    let thrash = finding(&f, "slot_thrash");
    assert_eq!(thrash["kind"], "cost", "{thrash:#}");
    assert_eq!(
        thrash["message"],
        "trial expr_calc/pi/0's conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens (about 2 s of \
         prefill)"
    );
    assert_eq!(
        thrash["fix"],
        "-np ≥ --jobs (--jobs 4 with -np 2: -np 4, or --jobs 2, or --jobs auto for as many trials as slots)"
    );
    let wait = finding(&f, "slot_wait");
    assert_eq!(wait["kind"], "cost", "{wait:#}");
    assert_eq!(
        wait["message"],
        "trials waited 38% of their agent time for a slot: --jobs 4 exceeds -np 2 (76.0 s of 200.0 s of agent time \
         over 2 trial(s))"
    );
    assert!(wait["fix"].as_str().unwrap().starts_with("-np ≥ --jobs (--jobs 4 with -np 2"), "{wait:#}");
    // The recorded wait replaces the estimate from time to first token.
    assert!(f.iter().all(|x| x["check"] != "queue"), "{f:#?}");

    let text = stdout(tmp.path(), &["doctor", THRASHED]);
    assert!(
        text.contains("costs time  trial expr_calc/pi/0's conversation moved from slot 0 to slot 1")
            && text.contains("costs time  trials waited 38% of their agent time for a slot: --jobs 4 exceeds -np 2")
            && text.contains("fix: -np ≥ --jobs (--jobs 4 with -np 2"),
        "{text}"
    );

    // A clean run: both ok, with the figure.
    let f = findings(tmp.path(), CLEAN);
    assert_eq!(finding(&f, "slot_thrash")["kind"], "ok", "{f:#?}");
    let wait = finding(&f, "slot_wait");
    assert_eq!(
        (&wait["kind"], wait["message"].as_str().unwrap()),
        (
            &Value::from("ok"),
            "trials waited 1.0% of their agent time for a slot (2.0 s of 200.0 s of agent time over 2 trial(s))"
        )
    );

    // A run recorded before slots and waits were kept: unknown, never 0.
    let f = findings(tmp.path(), OLD);
    for check in ["slot_thrash", "slot_wait"] {
        let x = finding(&f, check);
        assert_eq!(x["kind"], "blind_spot", "{x:#}");
        let m = x["message"].as_str().unwrap();
        assert!(m.contains("unknown") && !m.contains('%'), "{m}");
    }
}

#[test]
fn show_gives_the_jobs_the_pool_and_each_trials_slots_and_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("results"));

    let out = stdout(tmp.path(), &["show", THRASHED]);
    for line in [
        "jobs: 4 trial(s) at once",
        "pool server http://127.0.0.1:8080: 2 slot(s), 2 trial(s); prompt 2,500 tokens, cached 1,500, predicted 300",
        "   slots: 0→1; waited 38.0 s for a slot",
        "   slots: 0; waited 38.0 s for a slot",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    let moved = out.split("── expr_calc/pi/0 ").nth(1).unwrap().split("── ").next().unwrap();
    assert!(
        moved.contains(
            "   slot thrash: its conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens; fix: -np ≥ \
             --jobs (--jobs 4 with -np 2"
        ),
        "{moved}"
    );
    let stayed = out.split("── expr_calc/pi/1 ").nth(1).unwrap();
    assert!(!stayed.contains("slot thrash"), "{stayed}");

    // A run recorded before slots, waits and jobs were kept shows none of them.
    let out = stdout(tmp.path(), &["show", OLD]);
    assert!(!out.contains("slots:") && !out.contains("slot thrash") && !out.contains("jobs:"), "{out}");
    assert!(!out.contains("pool server"), "{out}");
    let out = stdout(tmp.path(), &["show", CLEAN]);
    assert!(out.lines().any(|l| l == "   slots: 1; waited 0.0 s for a slot"), "a recorded 0 is shown: {out}");

    // `show --json` is the stored record, the new fields in it as stored.
    let json: RunRecord = serde_json::from_str(&stdout(tmp.path(), &["show", THRASHED, "--json"])).unwrap();
    assert_eq!(json, store.load(THRASHED).unwrap());
    let raw: Value = serde_json::from_str(&stdout(tmp.path(), &["show", THRASHED, "--json"])).unwrap();
    assert_eq!((&raw["config"]["jobs"], &raw["servers"][0]["total_slots"]), (&Value::from(4), &Value::from(2)));
    assert_eq!(raw["trials"][0]["requests"][1]["slot"], 1);
    assert_eq!(raw["trials"][0]["requests"][1]["queue_ms"], 8000.0);
}
