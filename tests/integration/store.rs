//! The results store on disk (docs/results.md): each finished trial written on its own
//! (`trials/<trial>/trial.json`) beside the run's header (`run.json`), and runs stored by an
//! earlier fixbench (schema 1, every trial inside `run.json`) still read by every report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Two finished schema-1 runs as fixbench stored them before schema 2: null and oracle on
/// expr_calc, unsandboxed.
const V1_FIRST: &str = "20261201-142718-f2dd";
const V1_SECOND: &str = "20261201-142727-4fb8";

/// A temp folder whose `results/` is a copy of the stored schema-1 runs.
fn v1_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/integration/fixtures/v1-store"), &dir.path().join("results"));
    dir
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn agent(name: &str) -> String {
    repo().join("tests/agents").join(name).to_string_lossy().into_owned()
}

/// The snapshots are those the fixbench that stored these runs printed for them.
#[test]
fn a_v1_run_still_shows_compares_gates_and_exports() {
    let dir = v1_store();
    let results = dir.path().join("results");
    let before = files(&results);
    let report = |args: &[&str]| {
        let out = run_expect(fixbench(dir.path()).args(args).arg("--results").arg(&results), 0);
        String::from_utf8(out.stdout).unwrap().replace(results.to_str().unwrap(), "[RESULTS]")
    };
    insta::assert_snapshot!("v1_show", report(&["show", V1_FIRST]));
    insta::assert_snapshot!("v1_history", report(&["history"]));
    insta::assert_snapshot!("v1_compare", report(&["compare", V1_FIRST, V1_SECOND]));
    insta::assert_snapshot!("v1_compare_json", report(&["compare", V1_FIRST, V1_SECOND, "--format", "json"]));
    insta::assert_snapshot!("v1_gate", report(&["gate", "--baseline", V1_FIRST, V1_SECOND]));
    insta::assert_snapshot!("v1_gate_json", report(&["gate", "--baseline", V1_FIRST, V1_SECOND, "--json"]));
    insta::assert_snapshot!("v1_junit", report(&["junit", V1_SECOND]));

    // Read as this schema: the built-in agents are typed, not `builtin:null` commands.
    let run: Value = serde_json::from_str(&report(&["show", V1_FIRST, "--json"])).unwrap();
    assert_eq!(run["schema_version"], 2);
    let agents = &run["config"]["agents"];
    assert_eq!((agents[0]["builtin"].as_str(), agents[1]["builtin"].as_str()), (Some("null"), Some("oracle")));
    assert!(agents[0].get("command").is_none(), "{agents}");
    assert_eq!(run["trials"][0]["command"], serde_json::json!([]), "a built-in runs no command");
    assert_eq!(files(&results), before, "reading a run changes nothing stored");
}

#[test]
fn an_interrupted_v1_run_resumes_into_the_current_layout_keeping_its_trials() {
    let dir = v1_store();
    let results = dir.path().join("results");
    let run_dir = results.join(V1_FIRST);
    // As if it had been interrupted after its first trial.
    let file = run_dir.join("run.json");
    let mut v1: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v1["status"] = "interrupted".into();
    let first = v1["trials"][0].clone();
    v1["trials"].as_array_mut().unwrap().truncate(1);
    std::fs::write(&file, serde_json::to_string_pretty(&v1).unwrap()).unwrap();
    std::fs::remove_dir_all(run_dir.join("trials/expr_calc__oracle__0")).unwrap();

    let problems = repo().join("problems");
    let out = run_expect(
        fixbench(dir.path())
            .args(["run", "--resume", V1_FIRST, "--json", "--results"])
            .arg(&results)
            .arg("--problems-dir")
            .arg(&problems),
        0,
    );
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["status"], "finished");
    let ids: Vec<&str> = resumed["trials"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["expr_calc/null/0", "expr_calc/oracle/0"]);
    // The trial from before is kept as it was (its built-in's command upgraded), now in a file
    // of its own; the header holds no trials.
    let mut kept = first;
    kept["command"] = serde_json::json!([]);
    assert_eq!(resumed["trials"][0], kept);
    let stored = read_run(&run_dir);
    assert_eq!(stored["schema_version"], 2);
    assert_eq!(stored, resumed, "--json prints the stored run");
    assert_eq!(stored["trials"][1]["grade_s"].as_f64().map(|s| s > 0.0), Some(true));
}

#[test]
fn each_finished_trial_is_written_on_its_own_beside_the_header() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--agent",
            "null",
            "--agent",
            "oracle",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
        ]),
        0,
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_dir = sb.results().join(printed["run_id"].as_str().unwrap());
    let header: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(header["schema_version"], 2);
    assert!(header.get("trials").is_none(), "{header:#}");
    assert_eq!(
        header["config"]["agents"][0],
        serde_json::json!({"name": "null", "builtin": "null", "env": {}, "timeout_s": 600.0})
    );
    assert_eq!(
        (header["config"]["isolation"].as_str(), header["config"]["cache_state"].as_str()),
        (Some("none"), Some("shared"))
    );
    for (i, dir) in ["expr_calc__null__0", "expr_calc__oracle__0"].iter().enumerate() {
        let trial_dir = run_dir.join("trials").join(dir);
        let trial: Value =
            serde_json::from_str(&std::fs::read_to_string(trial_dir.join("trial.json")).unwrap()).unwrap();
        assert_eq!(trial, printed["trials"][i], "trial.json is the trial's record");
        let names: Vec<String> = std::fs::read_dir(&trial_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "no temp file left behind: {names:?}");
    }
    assert_eq!(printed["trials"][1]["resolved"], true);
    assert_eq!(read_run(&run_dir), printed);
    // Finished, the run also has all its trials in one file, for the reports to read.
    let sealed: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("trials.json")).unwrap()).unwrap();
    assert_eq!(sealed, printed["trials"]);
}

/// Killed outright (no chance to mark the run interrupted), a run keeps every trial it
/// finished, whole, and `--resume` continues from them.
#[test]
fn a_killed_run_keeps_every_finished_trial_and_resumes_from_them() {
    let sb = Sandbox::new();
    let mut child = fixbench(sb.path())
        .env("FIXBENCH_TEST_SLEEP", "1")
        .args(["run", "--problem", "expr_calc", "--repeat", "3", "--isolation", "none", "--agent", "null"])
        .args(["--cmd", &agent("slow_fixer.sh")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let run_dir = loop {
        assert!(Instant::now() < deadline, "no trial finished in time");
        let dirs: Vec<PathBuf> = std::fs::read_dir(sb.results())
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("run.json").is_file())
            .collect();
        if let [dir] = dirs.as_slice() {
            if trial_files(dir).len() >= 2 {
                break dir.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Saving a trial rewrites nothing of the run's: the header is the one written at start.
    let header = std::fs::read(run_dir.join("run.json")).unwrap();
    let seen = trial_files(&run_dir).len();
    while trial_files(&run_dir).len() == seen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read(run_dir.join("run.json")).unwrap(), header, "run.json rewritten for a trial");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let killed = read_run(&run_dir);
    assert_eq!(killed["status"], "running", "nothing marked it: it was killed");
    assert!(!run_dir.join("trials.json").exists(), "only a finished run has it");
    let done = killed["trials"].as_array().unwrap().len();
    assert!((3..6).contains(&done), "{done} trials saved");
    let id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let show = run_expect(fixbench(sb.path()).args(["show", &id]), 0);
    assert!(String::from_utf8_lossy(&show.stdout).contains("running"));

    let out =
        run_expect(fixbench(sb.path()).env("FIXBENCH_TEST_SLEEP", "0").args(["run", "--resume", &id, "--json"]), 0);
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["status"], "finished");
    let trials = resumed["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6, "2 agents × 3 repeats");
    assert_eq!(&trials[..done], &killed["trials"].as_array().unwrap()[..], "the finished trials are kept as they were");
    assert_eq!(read_run(&run_dir), resumed);
}
