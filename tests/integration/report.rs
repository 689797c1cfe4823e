//! Reports over the results store, driving the real binary: `show`, `history`, `compare`,
//! `gate`, `baseline`, `junit`, `plot`. Real runs (null and oracle agents, real pytest) where
//! the numbers come from grading; synthetic stores (`fixbench::synth`) where a test
//! needs known numbers or server figures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{Duration, TimeZone, Utc};
use fixbench::store::{RunRecord, ServerDelta, Store};
use fixbench::synth;
use serde_json::Value;

use crate::util::*;

/// A real run (null + oracle, 2 repeats, no server), made once per test process and only read.
fn real_store() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = process_dir("report-real");
        std::fs::create_dir_all(&dir).unwrap();
        copy_dir(&repo().join("problems"), &dir.join("problems"));
        run_expect(
            fixbench(&dir).args([
                "run",
                "--agent",
                "null",
                "--agent",
                "oracle",
                "--repeat",
                "2",
                "--isolation",
                "none",
            ]),
            0,
        );
        dir
    })
}

fn report(cwd: &Path, args: &[&str], code: i32) -> (String, String) {
    let out = run_expect(fixbench(cwd).args(args), code);
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Run ids, wall times and the relative wall deltas vary from run to run, and the table's
/// padding follows their widths: all redacted, so a snapshot holds only what must not change.
pub(crate) fn redact(text: &str) -> String {
    let rules: [(&str, &str); 6] = [
        (r"\d{8}-\d{6}-[0-9a-f]{4}", "[RUN_ID]"),
        (r"\d+\.\d s ± \d+\.\d", "[WALL]"),
        (r"\d+\.\d s\b", "[WALL]"),
        (r"(?:[+-]\d+|±0)%(?: (?:better|worse)\??)?", "[WALL DELTA]"),
        (r" {2,}", " "),
        (r"-{3,}", "---"),
    ];
    rules
        .iter()
        .fold(text.to_string(), |s, (re, with)| regex::Regex::new(re).unwrap().replace_all(&s, *with).into_owned())
}

/// CSV with the wall columns (and the wall entry of the noise column) blanked.
pub(crate) fn redact_csv(text: &str) -> String {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(redact).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        let row: Vec<String> = rec
            .iter()
            .zip(&header)
            .map(|(v, h)| {
                if h.contains("wall_s") && !v.is_empty() {
                    "[WALL]".to_string()
                } else if h.ends_with(":noise") {
                    v.split(' ').filter(|x| *x != "wall").collect::<Vec<_>>().join(" ")
                } else {
                    v.to_string()
                }
            })
            .collect();
        w.write_record(&row).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn compare_table_markdown_and_csv_of_a_real_run() {
    let dir = real_store();
    let (table, _) = report(dir, &["compare", "latest"], 0);
    insta::assert_snapshot!("compare_table", redact(&table));
    let (md, _) = report(dir, &["compare", "latest", "--format", "markdown"], 0);
    insta::assert_snapshot!("compare_markdown", redact(&md));
    let (csv, _) = report(dir, &["compare", "latest", "--format", "csv"], 0);
    insta::assert_snapshot!("compare_csv", redact_csv(&csv));
    // No server: the server figures say so, never 0.
    assert!(table.contains("no server") && md.contains("no server"), "{table}");
    let (json, _) = report(dir, &["compare", "latest", "--format", "json"], 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    for row in v["rows"].as_array().unwrap() {
        for c in row["cells"].as_array().unwrap() {
            assert!(c["decode_tps"].is_null() && c["server_trials"] == 0, "{c}");
        }
    }
}

/// Two agents on expr_calc with known outcomes: a passes 11, 15, 11, 11 (1 of 4 resolved) in
/// 10, 12, 14, 16 s; b passes 15, 15, 15, 11 (3 of 4) in 20, 22, 24, 26 s, with server figures.
fn known_store(dir: &Path) {
    let at = Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap();
    let mut run = synth::run_record("20260201-120000-0001", at, &["a".into(), "b".into()]);
    for (agent, passed, walls) in
        [("a", [11, 15, 11, 11], [10.0, 12.0, 14.0, 16.0]), ("b", [15, 15, 15, 11], [20.0, 22.0, 24.0, 26.0])]
    {
        for rep in 0..4 {
            let mut t = synth::trial("expr_calc", agent, rep as u32, passed[rep], 15, 11);
            t.wall_s = walls[rep];
            t.started_at = at + Duration::minutes(rep as i64);
            if agent == "b" {
                t.telemetry.server = Some(ServerDelta {
                    decode_tps: Some(40.0 + rep as f64),
                    prefill_tps: Some(800.0),
                    cache_hit_ratio: Some(0.5),
                    ..Default::default()
                });
            }
            run.trials.push(t);
        }
    }
    Store::new(dir).save(&run).unwrap();
}

fn close(v: &Value, want: f64) -> bool {
    (v.as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-4
}

#[test]
fn known_numbers_give_known_intervals_and_deltas() {
    let tmp = tempfile::tempdir().unwrap();
    known_store(&tmp.path().join("results"));
    let (json, _) = report(tmp.path(), &["compare", "latest", "--k", "2", "--format", "json"], 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["groups"][0]["name"], "a");
    let row = &v["rows"][0];
    assert_eq!(row["problem"], "expr_calc");
    let (a, b) = (&row["cells"][0], &row["cells"][1]);
    // Wilson 95%: 1/4 → 0.0456–0.6994; 3/4 → 0.3006–0.9544.
    assert!(close(&a["resolved_ci"][0], 0.045587) && close(&a["resolved_ci"][1], 0.699358), "{a}");
    assert!(close(&b["resolved_ci"][0], 0.300642) && close(&b["resolved_ci"][1], 0.954413), "{b}");
    // pass@2: 1 - C(3,2)/C(4,2) = 0.5 for a; b has fewer than 2 failures, so 1.
    assert!(close(&a["pass_at_k"], 0.5) && close(&b["pass_at_k"], 1.0));
    let d = &b["delta"];
    // Resolved +50 points, Newcombe interval -0.1355…0.7891: could be noise.
    assert!(close(&d["resolved_rate"]["diff"], 0.5));
    assert!(close(&d["resolved_rate"]["ci"][0], -0.135488) && close(&d["resolved_rate"]["ci"][1], 0.789083));
    assert_eq!(
        (d["resolved_rate"]["verdict"].as_str(), d["resolved_rate"]["noise"].as_bool()),
        (Some("better"), Some(true))
    );
    // Passed: 12 → 14, Welch: se √2, df 6, t 2.4469 → 2 ± 3.4605, noise.
    assert!(
        close(&d["passed"]["diff"], 2.0)
            && close(&d["passed"]["ci"][0], -1.460_474)
            && close(&d["passed"]["ci"][1], 5.460_474),
        "{d}"
    );
    assert_eq!(d["passed"]["noise"], true);
    // Wall: 13 → 23 s, se √(10/3), df 6 → 10 ± 4.4674: worse, and not noise.
    assert!(
        close(&d["wall_s"]["diff"], 10.0)
            && close(&d["wall_s"]["ci"][0], 5.532_646)
            && close(&d["wall_s"]["ci"][1], 14.467_354),
        "{d}"
    );
    assert_eq!((d["wall_s"]["verdict"].as_str(), d["wall_s"]["noise"].as_bool()), (Some("worse"), Some(false)));
    assert!(close(&d["wall_s"]["relative"], 10.0 / 13.0));
    // a has no server: its figures are null and there is no delta to take.
    assert!(a["decode_tps"].is_null() && d["decode_tps"].is_null());
    assert!(close(&b["decode_tps"]["mean"], 41.5));

    let (table, _) = report(tmp.path(), &["compare", "latest", "--k", "2"], 0);
    insta::assert_snapshot!("compare_known_table", table);
}

#[test]
fn compare_against_a_named_group_marks_it_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    known_store(&tmp.path().join("results"));
    let compare = |extra: &[&str], code: i32| {
        let mut args = vec!["compare", "latest", "--against", "b"];
        args.extend(extra);
        report(tmp.path(), &args, code)
    };
    // JSON: b is marked and has no deltas; a's are taken against it (12 → 14 passed, so -2).
    let (json, _) = compare(&["--format", "json"], 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((&v["groups"][0]["reference"], &v["groups"][1]["reference"]), (&Value::Bool(false), &Value::Bool(true)));
    let (a, b) = (&v["rows"][0]["cells"][0], &v["rows"][0]["cells"][1]);
    assert!(b["delta"].is_null(), "{b}");
    assert!(close(&a["delta"]["passed"]["diff"], -2.0), "{a}");
    assert_eq!(a["delta"]["wall_s"]["verdict"], "better");
    // Table and Markdown name it in the legend; the header's `agent=b` spelling works too.
    let (table, _) = compare(&[], 0);
    assert!(table.contains("deltas are against agent=b;"), "{table}");
    assert!(table.contains("-2.0 worse?"), "{table}");
    let (md, _) = report(tmp.path(), &["compare", "latest", "--against", "agent=b", "--format", "markdown"], 0);
    assert!(md.contains("- deltas are against agent=b;"), "{md}");
    // CSV: b's delta columns are empty, a's filled.
    let (csv, _) = compare(&["--format", "csv"], 0);
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header = r.headers().unwrap().clone();
    let row = r.records().next().unwrap().unwrap();
    let field = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(field("agent=b:passed_delta"), "");
    assert_eq!(field("agent=a:passed_delta"), "-2");

    // An unknown group is bad input that lists the groups there are.
    let (out, err) = report(tmp.path(), &["compare", "latest", "--against", "nope"], 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("--against `nope`") && err.contains("`a`, `b`") && err.contains("--by"), "{err}");
}

#[test]
fn history_is_newest_first_and_names_a_corrupt_run() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let store = Store::new(&results);
    let ids = synth::generate(&store, &synth::Options { runs: 4, trials: 48, ..Default::default() }).unwrap();
    let bad = results.join("20260301-000000-dead");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("run.json"), "{ not json").unwrap();

    let (out, err) = report(tmp.path(), &["history"], 0);
    insta::assert_snapshot!("history", out);
    let pos = |id: &str| out.find(id).unwrap_or_else(|| panic!("{id} missing:\n{out}"));
    assert!(pos("20260301-000000-dead") < pos(&ids[3]) && pos(&ids[3]) < pos(&ids[0]), "newest first");
    assert!(err.contains("20260301-000000-dead") && err.contains("not a fixbench run record"), "{err}");

    // compare reads every run it is named, or refuses: a missing or corrupt one is bad input.
    let (out, _) = report(tmp.path(), &["compare", "latest~1", "latest~2"], 0);
    assert!(out.contains("agent=aider"), "{out}");
    let (out, err) = report(tmp.path(), &["compare", "latest~1", "nope"], 2);
    assert!(out.is_empty() && err.contains("no run `nope`"), "{err}");
    let (_, err) = report(tmp.path(), &["compare", "latest~1", "latest"], 2);
    assert!(err.contains("20260301-000000-dead") && err.contains("not a fixbench run record"), "{err}");
    let (_, err) = report(tmp.path(), &["compare", "nope"], 2);
    assert!(err.contains("no run `nope`") && err.contains("fixbench history"), "{err}");
}

#[test]
fn show_gives_each_trial_its_details_and_paths() {
    let dir = real_store();
    let (out, _) = report(dir, &["show", "latest"], 0);
    assert!(out.contains("server: no server"), "{out}");
    for id in ["expr_calc/null/0", "mini_sheet/oracle/1", "mini_stackvm/null/1"] {
        assert!(out.contains(&format!("── {id} ")), "{id}:\n{out}");
    }
    assert!(out.contains("isolation none; cache shared"), "{out}");
    assert!(out.contains("fixed: tests.test_expr_calc::"), "the oracle's flipped tests are listed");
    assert!(out.contains("failing: tests.test_expr_calc::") && out.contains("AssertionError"), "{out}");
    let diff = out.lines().find_map(|l| l.trim().strip_prefix("diff: ")).unwrap().split("  ").next().unwrap();
    assert!(dir.join(diff).is_file(), "paths are under --results: {diff}");
    // With server figures (synthetic): requests and speeds are shown.
    let tmp = tempfile::tempdir().unwrap();
    synth::generate(
        &Store::new(tmp.path().join("results")),
        &synth::Options { runs: 1, trials: 6, ..Default::default() },
    )
    .unwrap();
    let (out, _) = report(tmp.path(), &["show"], 0);
    assert!(out.contains("request(s); prefill") && out.contains("waiting on the server"), "{out}");
    assert!(out.contains("model Qwen3-8B  quant Q4_K_M"), "{out}");
}

/// Counts from the JUnit file by Python's junitparser (the independent parser from PyPI).
fn junitparser_counts(path: &Path) -> Value {
    let script = r#"
import json, sys
try:
    from junitparser import JUnitXml, Failure, Error, Skipped
except ImportError:
    sys.exit("junitparser is not installed in this Python: run scripts/setup-python.sh")
xml = JUnitXml.fromfile(sys.argv[1])
out = {"suites": 0, "cases": 0, "failures": 0, "errors": 0, "skipped": 0, "agent_cases": 0, "props": {}}
for suite in xml:
    out["suites"] += 1
    for case in suite:
        out["cases"] += 1
        if case.name == "agent run":
            out["agent_cases"] += 1
        for r in case.result:
            if isinstance(r, Failure): out["failures"] += 1
            elif isinstance(r, Error): out["errors"] += 1
            elif isinstance(r, Skipped): out["skipped"] += 1
    if suite.name == "expr_calc/null/0":
        out["props"] = {p.name: p.value for p in suite.properties()}
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python()).arg("-c").arg(script).arg(path).output().unwrap();
    assert!(out.status.success(), "junitparser: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn junit_parses_back_with_quick_junit_and_junitparser() {
    let dir = real_store();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("report.xml");
    report(dir, &["junit", "latest", "-o", file.to_str().unwrap()], 0);
    let xml = std::fs::read_to_string(&file).unwrap();
    let run: Value = {
        let store = Store::new(dir.join("results"));
        let id = store.run_ids().unwrap().pop().unwrap();
        read_run(&store.run_dir(&id))
    };
    let trials = run["trials"].as_array().unwrap();
    let tests: usize = trials.iter().map(|t| t["tests"].as_array().unwrap().len()).sum();
    let failed: u64 = trials.iter().map(|t| t["failed"].as_u64().unwrap()).sum();
    assert_eq!((trials.len(), tests, failed), (12, 2 * (15 + 24 + 22) * 2, 52));

    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(report.test_suites.len(), trials.len());
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"expr_calc/oracle/1"), "{names:?}");
    let cases: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(cases, tests + trials.len(), "one case per frozen test plus one per agent run");
    let failures: usize = report.test_suites.iter().map(|s| s.failures).sum();
    assert_eq!(failures as u64, failed);
    let suite = report.test_suites.iter().find(|s| s.name.as_str() == "expr_calc/null/0").unwrap();
    let failing = suite.test_cases.iter().find(|c| c.name.as_str() == "test_power_is_right_associative").unwrap();
    assert_eq!(failing.classname.as_ref().map(|c| c.as_str()), Some("tests.test_expr_calc"));
    match &failing.status {
        quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
            assert!(message.as_ref().unwrap().as_str().contains("right-associative"), "pytest's message is kept")
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    let py = junitparser_counts(&file);
    assert_eq!(py["suites"], trials.len());
    assert_eq!(py["cases"], tests + trials.len());
    assert_eq!(py["failures"], failed);
    assert_eq!(
        (py["errors"].as_u64(), py["skipped"].as_u64(), py["agent_cases"].as_u64()),
        (Some(0), Some(0), Some(12))
    );
    assert_eq!(py["props"]["problem"], "expr_calc");
    assert_eq!(py["props"]["server"], "no server");
    assert_eq!(py["props"]["model"], "no server");
}

#[test]
fn junit_agent_case_fails_on_timeout_and_errors_on_a_harness_error() {
    let tmp = tempfile::tempdir().unwrap();
    let at = Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap();
    let mut run = synth::run_record("20260201-120000-0002", at, &["a".into()]);
    let mut slow = synth::trial("expr_calc", "a", 0, 11, 15, 11);
    slow.agent_run.timed_out = true;
    slow.error = Some("the agent ran past its time limit after 600 s and was killed".into());
    let mut broken = synth::trial("expr_calc", "a", 1, 0, 15, 11);
    broken.error = Some("not installed: pip install aider-chat".into());
    run.labels.insert("model".into(), "Qwen3-8B".into());
    run.trials = vec![slow, broken];
    Store::new(tmp.path().join("results")).save(&run).unwrap();
    let file = tmp.path().join("j.xml");
    report(tmp.path(), &["junit", "latest", "-o", file.to_str().unwrap()], 0);
    let py = junitparser_counts(&file);
    // 4 + 15 failing tests, the timeout's agent case a failure, the other an error.
    assert_eq!((py["failures"].as_u64(), py["errors"].as_u64()), (Some(4 + 15 + 1), Some(1)));
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.contains("type=\"timeout\"") && xml.contains("not installed: pip install aider-chat"), "{xml}");
    assert!(xml.contains("name=\"label.model\" value=\"Qwen3-8B\""), "labels travel as properties");
}

#[test]
fn gate_passes_the_same_configuration_and_fails_a_planted_regression() {
    let sb = Sandbox::new();
    let run = |agent: &str, extra: &[&str]| {
        let mut args = vec!["run", "--agent", agent, "--repeat", "2", "--isolation", "none"];
        args.extend(extra);
        run_expect(fixbench(sb.path()).args(&args), 0);
    };
    run("oracle", &[]);
    let junit = sb.path().join("ci/junit.xml");
    run("oracle", &["--junit", junit.to_str().unwrap()]);
    // `run --junit` wrote the same report `junit` would.
    let r = quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    assert_eq!(r.test_suites.len(), 6);

    let (out, _) = report(sb.path(), &["gate", "--baseline", "latest~1", "latest", "--max-slowdown", "20"], 0);
    assert!(out.contains("gate: PASSED") && out.contains("0 pass→fail"), "{out}");
    let (out, _) = report(sb.path(), &["baseline", "save", "main", "latest"], 0);
    assert!(out.contains("saved baseline `main`"), "{out}");

    // The regression: an agent that changes nothing, against the saved oracle baseline.
    run("null", &[]);
    let (out, err) = report(sb.path(), &["gate", "--baseline", "main", "latest"], 5);
    assert!(out.contains("gate: FAILED (exit 5)"), "{out}");
    assert!(out.contains("61.0 → 35.0 tests passed per suite repeat"), "{out}");
    assert!(out.contains("52 pass→fail") && out.contains("REGRESSED"), "{out}");
    assert!(out.contains("broke: test_"), "the tests that broke are named: {out}");
    assert!(out.contains("paired by problem"), "one agent a side under different names: {out}");
    assert!(err.contains("gate failed: the score dropped by 26.0 tests"), "{err}");
    // Allowing the whole drop passes.
    report(sb.path(), &["gate", "--baseline", "main", "latest", "--max-drop", "26"], 0);

    let (out, _) = report(sb.path(), &["baseline", "list"], 0);
    assert!(out.contains("main") && out.contains("100.0% (122/122)"), "{out}");
    let (_, err) = report(sb.path(), &["gate", "--baseline", "nope", "latest"], 2);
    assert!(err.contains("baseline list"), "{err}");
    let (_, err) = report(sb.path(), &["gate", "--baseline", "main", "--max-slowdown", "0.5"], 2);
    assert!(err.contains("--max-slowdown 0.5"), "{err}");
}

/// A small synthetic store with server figures: 6 runs, both agents in each.
fn synth_store() -> (tempfile::TempDir, Vec<RunRecord>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("results"));
    let ids = synth::generate(&store, &synth::Options { runs: 6, trials: 72, ..Default::default() }).unwrap();
    let runs = ids.iter().map(|id| store.load(id).unwrap()).collect();
    (tmp, runs)
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(buf.iter().any(|&b| b != 255), "the picture is not blank");
    (info.width, info.height)
}

fn svg_texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants().filter(|n| n.has_tag_name("text")).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
}

#[test]
fn plots_decode_as_png_and_parse_as_svg_with_their_series() {
    let (tmp, runs) = synth_store();
    let dir = tmp.path();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();

    report(dir, &["plot", "-o", &p("time.png")], 0);
    assert_eq!(png_size(&dir.join("time.png")), (1280, 720));
    report(dir, &["plot", "--kind", "bars", "latest", "latest~1", "--size", "800x450", "-o", &p("bars.png")], 0);
    assert_eq!(png_size(&dir.join("bars.png")), (800, 450));
    report(dir, &["plot", "--kind", "timeline", "-o", &p("tl.png")], 0);
    assert_eq!(png_size(&dir.join("tl.png")), (1280, 720));

    // Over time, by agent: one polyline of 6 points per agent, both named in the legend.
    report(dir, &["plot", "--metric", "decode_tps", "-o", &p("time.svg")], 0);
    let text = std::fs::read_to_string(dir.join("time.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts = svg_texts(&doc);
    for want in ["aider", "opencode", "decode speed (tokens/s)", "run date (UTC)"] {
        assert!(texts.iter().any(|t| t == want), "{want} not in {texts:?}");
    }
    let series = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| n.attribute("points").is_some_and(|p| p.split_whitespace().count() == 6))
        .count();
    assert_eq!(series, 2);

    // Bars: one bar per problem (and all problems) and model; the 6 runs cycle 2 models.
    report(
        dir,
        &[
            "plot",
            "--kind",
            "bars",
            "latest",
            "latest~1",
            "latest~2",
            "latest~3",
            "--by",
            "model",
            "-o",
            &p("bars.svg"),
        ],
        0,
    );
    let text = std::fs::read_to_string(dir.join("bars.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts = svg_texts(&doc);
    assert!(texts.iter().any(|t| t == "Qwen3-8B") && texts.iter().any(|t| t == "SmolLM2-135M-Instruct"), "{texts:?}");
    let blue = doc.descendants().filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#0072B2")).count();
    assert_eq!(blue, 4 + 1, "4 clusters of the first model, and its legend box");

    // Timeline of a named trial: one prefill bar per request.
    let trial = &runs[5].trials[0];
    report(dir, &["plot", "--kind", "timeline", "latest", "--trial", &trial.id, "-o", &p("tl.svg")], 0);
    let text = std::fs::read_to_string(dir.join("tl.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let prefill =
        doc.descendants().filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#E69F00")).count();
    assert_eq!(prefill, trial.telemetry.requests.len() + 1, "a prefill bar per request, and the legend's");
    assert!(svg_texts(&doc).iter().any(|t| t.starts_with(&format!("Trial {}", trial.id))));
}

#[test]
fn plots_of_missing_figures_say_why() {
    let dir = real_store();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("x.png");
    let (_, err) = report(dir, &["plot", "--metric", "decode_tps", "-o", file.to_str().unwrap()], 2);
    // The error names the metric, the run looked at, and the fix.
    assert!(
        err.contains("no `decode_tps` figure to plot in run ")
            && err.contains("runs without a server record none")
            && err.contains("fixbench run --server URL"),
        "{err}"
    );
    let (_, err) = report(dir, &["plot", "--kind", "timeline", "-o", file.to_str().unwrap()], 2);
    assert!(err.contains("no recorded requests"), "{err}");
    let (_, err) = report(dir, &["plot", "-o", out.path().join("x.gif").to_str().unwrap()], 2);
    assert!(err.contains(".png or .svg"), "{err}");
    assert!(!file.exists());
}

/// Every report command reads the store harness.toml's `run.results` names, as `run` writes
/// it, and `--config` picks another harness file; without either they look in `results/`.
#[test]
fn every_report_command_reads_harness_tomls_results_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    known_store(&dir.join("elsewhere"));
    std::fs::write(dir.join("harness.toml"), "[run]\nresults = \"elsewhere\"\n").unwrap();
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let commands: Vec<Vec<String>> = vec![
        vec!["show".into(), "latest".into()],
        vec!["history".into()],
        vec!["compare".into(), "latest".into()],
        vec!["gate".into(), "--baseline".into(), "latest".into(), "latest".into()],
        vec!["junit".into(), "latest".into(), "-o".into(), out("r.xml")],
        vec!["plot".into(), "--kind".into(), "bars".into(), "latest".into(), "-o".into(), out("r.svg")],
        vec!["baseline".into(), "list".into()],
        vec!["doctor".into(), "latest".into()],
    ];
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (stdout, stderr) = report(dir, &args, 0);
        let said = format!("{stdout}{stderr}");
        assert!(!said.contains("no runs") && !said.contains("cannot read"), "{args:?}: {said}");
    }
    assert!(std::fs::read_to_string(dir.join("r.xml")).unwrap().contains("expr_calc"));
    assert!(std::fs::read_to_string(dir.join("r.svg")).unwrap().contains("<svg"));
    let (shown, _) = report(dir, &["show", "latest"], 0);
    assert!(shown.contains("20260201-120000-0001"), "{shown}");

    // From another folder, --config names the file; the folder is relative to it.
    let other = tempfile::tempdir().unwrap();
    let config = dir.join("harness.toml");
    let (shown, _) = report(other.path(), &["show", "latest", "--config", config.to_str().unwrap()], 0);
    assert!(shown.contains("20260201-120000-0001"), "{shown}");
    // Without it, the default folder holds nothing there.
    report(other.path(), &["show", "latest"], 2);
}
