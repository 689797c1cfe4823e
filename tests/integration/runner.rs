//! `fixbench run` with real pytest and real processes: built-in agents, hostile agents,
//! bad input, Ctrl-C and `--resume`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn agent(name: &str) -> String {
    repo().join("tests/agents").join(name).to_string_lossy().into_owned()
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn null_grades_at_baseline_and_oracle_resolves_every_shipped_problem() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--agent", "oracle", "--isolation", "none", "--json"]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run, sb.only_run(), "--json prints exactly the stored record");
    assert_eq!(run["status"], "finished");
    assert_eq!(trials(&run).len(), 6);
    for t in trials(&run) {
        let baseline = t["baseline"].as_u64().unwrap();
        let total = t["total"].as_u64().unwrap();
        match t["agent"].as_str().unwrap() {
            "null" => {
                assert_eq!(t["passed"].as_u64().unwrap(), baseline, "{t}");
                assert_eq!(t["fixed"].as_array().unwrap().len(), 0);
                assert_eq!(t["resolved"], false);
            }
            "oracle" => {
                assert_eq!(t["passed"].as_u64().unwrap(), total, "{t}");
                assert_eq!(t["fixed"].as_array().unwrap().len() as u64, total - baseline);
                assert_eq!(t["broken"].as_array().unwrap().len(), 0);
                assert_eq!(t["resolved"], true);
                let diff = std::fs::read_to_string(
                    sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["diff"].as_str().unwrap()),
                )
                .unwrap();
                assert!(diff.contains("+++ b/"), "the oracle's change is saved as a diff");
            }
            other => panic!("unexpected agent {other}"),
        }
        assert_eq!(t["tests"].as_array().unwrap().len() as u64, total);
    }
    let expected = [("expr_calc", 15, 11), ("mini_sheet", 24, 12), ("mini_stackvm", 22, 12)];
    for (name, total, baseline) in expected {
        let t = trials(&run).iter().find(|t| t["problem"] == name).unwrap();
        assert_eq!((t["total"].as_u64(), t["baseline"].as_u64()), (Some(total), Some(baseline)), "{name}");
    }
    // The original problem folders are never modified.
    let status = std::process::Command::new("diff")
        .arg("-r")
        .arg(repo().join("problems"))
        .arg(sb.path().join("problems"))
        .output()
        .unwrap();
    assert!(status.status.success(), "problems/ changed: {}", String::from_utf8_lossy(&status.stdout));
}

#[test]
fn a_problem_made_here_runs_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    tiny_problem(dir.path(), TINY_TESTS, 2);
    run_expect(fixbench(dir.path()).args(["validate"]), 0);
    let out = run_expect(
        fixbench(dir.path()).args(["run", "--agent", "null", "--agent", "oracle", "--isolation", "none", "--json"]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = trials(&run);
    assert_eq!(
        (t[0]["agent"].as_str(), t[0]["passed"].as_u64(), t[0]["total"].as_u64()),
        (Some("null"), Some(1), Some(2))
    );
    assert_eq!((t[1]["agent"].as_str(), t[1]["resolved"].as_bool()), (Some("oracle"), Some(true)));
    assert_eq!(t[1]["fixed"], serde_json::json!(["tests.test_tiny::test_add"]));
}

#[test]
fn a_tampering_agent_is_graded_on_the_frozen_tests() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
            "--cmd",
            &agent("tamper.sh"),
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &trials(&run)[0];
    assert_eq!(t["exit_code"], 0);
    assert_eq!(t["total"], 15, "the frozen suite, not the agent's one-test rewrite");
    assert_eq!(t["passed"], 11, "the starter's score: the tamper changed no code");
    assert_eq!(t["skipped"], 0, "the agent's conftest.py took no part");
    assert_eq!(t["resolved"], false);
}

#[test]
fn a_hanging_agent_is_killed_with_every_child() {
    let sb = Sandbox::new();
    let pidfile = sb.path().join("pids");
    let start = Instant::now();
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_TEST_PIDFILE", &pidfile).args([
            "run",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--timeout",
            "2",
            "--json",
            "--cmd",
            &agent("hang.sh"),
        ]),
        0,
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &trials(&run)[0];
    assert_eq!(t["timed_out"], true);
    assert!(t["error"].as_str().unwrap().contains("time limit"), "{t}");
    assert_eq!(t["passed"], 11, "a timed-out trial is still graded");
    let pids: Vec<i32> =
        std::fs::read_to_string(&pidfile).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "the agent started its three children");
    for p in pids {
        assert!(!alive(p), "child {p} of the hung agent survived the trial");
    }
}

#[test]
fn a_flooding_agent_stays_within_bounded_memory_and_capped_logs() {
    let sb = Sandbox::new();
    let (code, stdout, rss_mb) = run_measuring_rss(fixbench(sb.path()).args([
        "run",
        "--problem",
        "expr_calc",
        "--isolation",
        "none",
        "--json",
        "--cmd",
        &agent("flood.sh"),
    ]));
    assert_eq!(code, 0);
    let run: Value = serde_json::from_slice(&stdout).unwrap();
    let t = &trials(&run)[0];
    let cap = 10 * 1024 * 1024;
    assert_eq!(t["output"]["stdout_bytes"], cap);
    assert_eq!(t["output"]["stdout_dropped"].as_u64().unwrap(), 300_000_000 - cap);
    assert_eq!(t["output"]["stderr_bytes"], cap);
    let log = sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["stdout"].as_str().unwrap());
    assert_eq!(std::fs::metadata(log).unwrap().len(), cap);
    // fixbench (and pytest under it) stayed far below the 300 MB the agent printed.
    assert!(rss_mb < 120, "peak RSS {rss_mb} MB: output is being held in memory");
}

#[test]
fn a_vandal_that_deletes_its_workdir_is_a_recorded_outcome() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
            "--cmd",
            &agent("vandal.sh"),
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &trials(&run)[0];
    assert_eq!(t["exit_code"], 7);
    let err = t["error"].as_str().unwrap();
    assert!(err.contains("exited with code 7") && err.contains("deleted its workdir"), "{err}");
    assert_eq!((t["passed"].as_u64(), t["errors"].as_u64()), (Some(0), Some(15)));
    assert_eq!(t["broken"].as_array().unwrap().len(), 11);
}

#[test]
fn an_agent_that_cannot_start_is_a_recorded_outcome() {
    let sb = Sandbox::new();
    // A configured agent (a `--cmd` whose program is missing is refused before the run).
    std::fs::write(sb.path().join("harness.toml"), "[agents.typo]\ncommand = \"/nonexistent/agent {prompt}\"\n")
        .unwrap();
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--isolation", "none", "--json", "--agent", "typo"]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &trials(&run)[0];
    assert!(t["error"].as_str().unwrap().contains("cannot start `/nonexistent/agent`"), "{t}");
    assert_eq!(t["agent_started"], false);
    assert_eq!(t["passed"], 11);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("11/15 passed, agent cannot start"),
        "the progress line says so"
    );
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--isolation", "none", "--agent", "typo"]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("agent run") && table.contains("cannot start"), "{table}");
    let out = run_expect(fixbench(sb.path()).args(["show", "latest"]), 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the agent could not start"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_prompt_reaches_the_agent_as_one_argument() {
    let sb = Sandbox::new();
    let script = sb.path().join("argv.sh");
    std::fs::write(&script, "#!/usr/bin/env bash\necho \"argc=$#\"\nprintf '%s' \"$1\" > \"$FIXBENCH_TEST_OUT\"\n")
        .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let got = sb.path().join("got");
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_TEST_OUT", &got).args([
            "run",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
            "--cmd",
            &format!("{} {{prompt}}", script.display()),
        ]),
        0,
    );
    let prompt = std::fs::read_to_string(repo().join("problems/expr_calc/PROBLEM.md")).unwrap();
    assert_eq!(std::fs::read_to_string(&got).unwrap(), prompt);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trials(&run)[0]["command"][1], "{prompt}", "the record shows the placeholder, not the text");
}

#[test]
fn bad_input_names_the_fix() {
    let sb = Sandbox::new();
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "nope"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown agent `nope`") && err.contains("null") && err.contains("oracle"), "{err}");

    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "nope"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown problem `nope`") && err.contains("expr_calc, mini_sheet, mini_stackvm"), "{err}");

    std::fs::write(sb.path().join("harness.toml"), "[run]\nrepeat = \"two\"\n").unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("harness.toml: line 2, column 10"), "{err}");
    std::fs::remove_file(sb.path().join("harness.toml")).unwrap();

    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_PYTHON", "/nonexistent/python").args([
            "run",
            "--agent",
            "null",
            "--isolation",
            "none",
        ]),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/setup.sh"), "{err}");
    assert!(
        !sb.results().exists() || std::fs::read_dir(sb.results()).unwrap().count() == 0,
        "nothing half-made is stored"
    );
}

#[test]
fn harness_toml_defines_agents_and_defaults() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("harness.toml"),
        format!(
            "[run]\nproblems = [\"expr_calc\"]\nagents = [\"echo\"]\nrepeat = 2\nisolation = \"none\"\n[run.labels]\nsetup = \"toml\"\n\n[agents.echo]\ncommand = \"{} {{problem}}\"\nenv = {{ FIXBENCH_TEST_SLEEP = \"0\" }}\n",
            agent("slow_fixer.sh")
        ),
    )
    .unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--json", "--label", "who=test"]), 0);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trials(&run).len(), 2);
    assert_eq!(run["labels"], serde_json::json!({"setup": "toml", "who": "test"}));
    let log =
        sb.results().join(run["run_id"].as_str().unwrap()).join(trials(&run)[0]["paths"]["stdout"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(log).unwrap(), "problem: expr_calc\n");
}

fn stored_run(results: &Path) -> (PathBuf, Value) {
    let dir = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let v = read_run(&dir);
    (dir, v)
}

#[test]
fn ctrl_c_then_resume_completes_the_run_without_loss_or_duplicates() {
    let sb = Sandbox::new();
    let child = fixbench(sb.path())
        .env("FIXBENCH_TEST_SLEEP", "1")
        .args(["run", "--isolation", "none", "--repeat", "2", "--agent", "null", "--cmd", &agent("slow_fixer.sh")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until at least two trials are saved, then interrupt in the middle of the next.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no trial finished in time");
        if sb.results().exists()
            && std::fs::read_dir(sb.results())
                .unwrap()
                .any(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'))
        {
            let (_, run) = stored_run(&sb.results());
            if run["trials"].as_array().map(|t| t.len()).unwrap_or(0) >= 2 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let (dir, run) = stored_run(&sb.results());
    assert_eq!(run["status"], "interrupted");
    let done = trials(&run).len();
    assert!((2..12).contains(&done), "{done} trials saved");

    let run_id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let out =
        run_expect(fixbench(sb.path()).env("FIXBENCH_TEST_SLEEP", "0").args(["run", "--resume", &run_id, "--json"]), 0);
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["status"], "finished");
    let ids: Vec<&str> = trials(&resumed).iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 12, "3 problems × 2 agents × 2 repeats");
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), 12, "no trial duplicated: {ids:?}");
    // The trials finished before Ctrl-C are kept as they were.
    assert_eq!(&trials(&resumed)[..done], &trials(&run)[..]);
    // `latest` names the same run.
    run_expect(fixbench(sb.path()).args(["run", "--resume", "latest"]), 0);
}

#[test]
fn an_agent_that_rewrites_the_problem_folder_voids_its_trial_and_stops_the_run() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_TEST_PROBLEMS", sb.path().join("problems")).args([
            "run",
            "--problem",
            "expr_calc",
            "--problem",
            "mini_sheet",
            "--isolation",
            "none",
            "--cmd",
            &agent("overreach.sh"),
        ]),
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed during trial expr_calc/cmd/0") && err.contains("--isolation sandbox"), "{err}");
    let run = sb.only_run();
    assert_eq!(run["status"], "interrupted");
    let t = trials(&run);
    assert_eq!(t.len(), 1, "the run stops at the void trial");
    assert_eq!(t[0]["resolved"], false);
    assert!(t[0]["error"].as_str().unwrap().contains("grade is void"), "{}", t[0]);
}

#[test]
fn a_relative_python_path_is_taken_from_the_current_folder() {
    let sb = Sandbox::new();
    // A venv-style relative path, as harness.toml's `python = ".venv/bin/python"` gives.
    let venv = python().parent().unwrap().parent().unwrap().to_path_buf();
    std::os::unix::fs::symlink(&venv, sb.path().join("venv")).unwrap();
    let out = run_expect(
        fixbench(sb.path()).env_remove("FIXBENCH_PYTHON").args([
            "run",
            "--agent",
            "null",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--python",
            "venv/bin/python",
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trials(&run)[0]["passed"], 11);
    run_expect(
        fixbench(sb.path()).env_remove("FIXBENCH_PYTHON").args([
            "validate",
            "--problem",
            "expr_calc",
            "--python",
            "venv/bin/python",
        ]),
        0,
    );
}

/// The real grading Python's check is cached with the stamps that invalidate it: the
/// interpreter, its site-packages and pytest's own folder.
#[test]
fn the_python_check_is_cached_with_the_real_interpreters_stamps() {
    let sb = Sandbox::new();
    run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none"]),
        0,
    );
    let cached: Vec<PathBuf> = std::fs::read_dir(sb.results().join(".cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("python-"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&cached[0]).unwrap()).unwrap();
    let version = String::from_utf8(
        std::process::Command::new(python())
            .args(["-c", "import pytest; print(pytest.__version__)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(c["pytest_version"], version.trim());
    let stamps = c["stamps"].as_object().unwrap();
    let has = |end: &str| stamps.iter().any(|(p, s)| p.ends_with(end) && s.is_object());
    assert!(has("site-packages") && has("site-packages/pytest"), "{stamps:?}");
    assert!(stamps.contains_key(&*python().to_string_lossy()), "{stamps:?}");
}
