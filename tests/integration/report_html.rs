//! `fixbench report`: the one self-contained HTML file, driving the real binary over synthetic
//! stores (with transcripts): nothing fetched, every trial named, its JSON intact whatever the
//! trial's text holds, missing files shown in place, two runs compared, bad runs and paths refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fixbench::store::Store;
use fixbench::synth;
use serde_json::Value;

/// The binary, in `cwd`, without the environment's results folder (reports need no Python).
fn fixbench(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fixbench"))
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("FIXBENCH_RESULTS")
        .args(args)
        .output()
        .expect("fixbench runs")
}

fn expect(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "--- stdout\n{stdout}\n--- stderr\n{stderr}");
    (stdout, stderr)
}

/// A store of `runs` synthetic runs of 12 trials each, with transcripts, diffs and logs.
fn store(runs: usize) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let opts = synth::Options { runs, trials: 12 * runs, transcripts: true, ..Default::default() };
    let ids = synth::generate(&Store::new(&results), &opts).unwrap();
    (tmp, results, ids)
}

/// Every `<script type="application/json">` block of the page, by id, parsed.
fn json_blocks(html: &str) -> Vec<(String, Value)> {
    let re = regex::Regex::new(r#"(?s)<script type="application/json" id="([^"]+)">(.*?)</script>"#).unwrap();
    re.captures_iter(html)
        .map(|c| {
            let json: Value =
                serde_json::from_str(&c[2]).unwrap_or_else(|e| panic!("block {} is not JSON: {e}", &c[1]));
            (c[1].to_string(), json)
        })
        .collect()
}

fn report(results: &Path, out: &Path, runs: &[&str]) -> (String, String) {
    let mut args = vec!["report", "--results", results.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend(runs);
    expect(&fixbench(results.parent().unwrap(), &args), 0)
}

#[test]
fn the_file_is_self_contained_and_names_every_trial() {
    let (tmp, results, ids) = store(1);
    let out = tmp.path().join("r.html");
    let (stdout, _) = report(&results, &out, &[]);
    assert!(
        stdout.starts_with(&format!("wrote {} (", out.display())) && stdout.contains("KB): 1 run, 12 trials"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&out).unwrap();
    for bad in ["http://", "https://", " src=", "url(", "@import", "<link rel=\"stylesheet\"", "fetch("] {
        assert!(!html.contains(bad), "the page holds {bad}");
    }
    assert!(html.contains(r#"<link rel="icon" href="data:,">"#));
    let blocks = json_blocks(&html);
    // The synthetic tool output holds `</script>` and `<!--`: every block still parses, whole.
    let run = Store::new(&results).load(&ids[0]).unwrap();
    for t in &run.trials {
        let id = format!("t-{}/{}", ids[0], t.id);
        let (_, detail) = blocks.iter().find(|(b, _)| *b == id).unwrap_or_else(|| panic!("no block {id}"));
        assert_eq!(detail["id"], t.id.as_str());
        assert_eq!(detail["transcript"]["state"], "ok");
        assert_eq!(detail["transcript"]["turns"].as_array().unwrap().len(), t.telemetry.requests.len());
        assert_eq!(detail["diff"]["state"], "ok");
        assert!(
            html.contains(&format!(r#"data-run="{}" data-problem="{}" data-group="{}""#, ids[0], t.problem, t.agent))
        );
    }
    let text = serde_json::to_string(&blocks).unwrap();
    assert!(text.contains("<script>alert(1)</script>"), "the markup in the tool output survives, escaped");
    // The system prompt and tools every trial sends are stored once, in the shared table.
    let (_, shared) = blocks.iter().find(|(b, _)| b == "shared").unwrap();
    assert_eq!(shared.as_object().unwrap().len(), 2, "{}", shared.as_object().unwrap().keys().len());
    let index = &blocks.iter().find(|(b, _)| b == "index").unwrap().1;
    assert_eq!(index["trials"].as_array().unwrap().len(), 12);
    assert!(html.contains(r#"<table id="matrix">"#) && html.contains(r#"<section id="history">"#));
    assert!(!html.contains(r#"<section id="compare">"#), "one run has nothing to compare");
}

#[test]
fn missing_files_are_shown_in_place() {
    let (tmp, results, ids) = store(1);
    let store = Store::new(&results);
    let run = store.load(&ids[0]).unwrap();
    let t = &run.trials[0];
    let dir = store.run_dir(&ids[0]);
    std::fs::remove_file(dir.join(&t.paths.diff)).unwrap();
    std::fs::remove_file(dir.join(t.paths.transcript.as_ref().unwrap())).unwrap();
    std::fs::remove_file(dir.join(&t.paths.stdout)).unwrap();
    // A run made without transcripts reads too: its trials have none recorded.
    let old = synth::generate(
        &Store::new(results.join("../old")),
        &synth::Options { runs: 1, trials: 6, ..Default::default() },
    )
    .unwrap();
    let out = tmp.path().join("r.html");
    report(&results, &out, &[&ids[0]]);
    let blocks = json_blocks(&std::fs::read_to_string(&out).unwrap());
    let detail = &blocks.iter().find(|(b, _)| *b == format!("t-{}/{}", ids[0], t.id)).unwrap().1;
    assert_eq!(
        (&detail["diff"]["state"], &detail["stdout"]["state"]),
        (&Value::from("missing"), &Value::from("missing"))
    );
    assert_eq!(detail["transcript"]["state"], "missing");
    assert_eq!(detail["stderr"]["state"], "ok");

    let old_results = tmp.path().join("old");
    let out = tmp.path().join("old.html");
    report(&old_results, &out, &[&old[0]]);
    let blocks = json_blocks(&std::fs::read_to_string(&out).unwrap());
    let trial = blocks.iter().find(|(b, _)| b.starts_with("t-")).unwrap();
    assert_eq!(
        (&trial.1["transcript"]["state"], &trial.1["diff"]["state"]),
        (&Value::from("not recorded"), &Value::from("missing"))
    );
}

#[test]
fn two_runs_are_compared_and_their_trials_sorted() {
    let (tmp, results, ids) = store(2);
    let out = tmp.path().join("two.html");
    let (stdout, _) = report(&results, &out, &[&ids[0], &ids[1]]);
    assert!(stdout.contains("2 runs, 24 trials"), "{stdout}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains(r#"<section id="compare">"#) && html.contains(r#"<input type="checkbox" id="different">"#));
    assert!(html.contains(&format!("{} → {}", ids[0], ids[1])) && html.contains("by trial (problem/agent/repeat)"));
    assert!(html.contains("(reference)") && html.contains("class=\"delta "), "deltas against the first run");
    assert_eq!(json_blocks(&html).iter().filter(|(b, _)| b.starts_with("t-")).count(), 24);
}

#[test]
fn an_unknown_run_and_an_unwritable_path_are_refused_clearly() {
    let (tmp, results, _) = store(1);
    let r = results.to_str().unwrap();
    let (_, err) = expect(&fixbench(tmp.path(), &["report", "--results", r, "nope"]), 2);
    assert!(err.contains("no run `nope`"), "{err}");
    // A folder that is a file: the report cannot go there.
    let blocked = tmp.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let out = blocked.join("r.html");
    let (_, err) = expect(&fixbench(tmp.path(), &["report", "--results", r, "-o", out.to_str().unwrap()]), 2);
    assert!(err.contains(&format!("cannot write the report to {}", out.display())), "{err}");
    // The default is report.html where it runs.
    expect(&fixbench(tmp.path(), &["report", "--results", r, "--history", "0"]), 0);
    assert!(tmp.path().join("report.html").exists());
}
