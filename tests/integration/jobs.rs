//! `fixbench run --jobs N`: trials at once, without a server (the real-server cases are in
//! telemetry.rs): nothing finished is lost or run twice, no two trials share a folder, and
//! gradings keep to `--grade-jobs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn agent(name: &str) -> String {
    repo().join("tests/agents").join(name).to_string_lossy().into_owned()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead too: only a process still running counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn ctrl_c_with_three_trials_in_flight_kills_all_three_and_resume_runs_exactly_the_rest() {
    let sb = Sandbox::new();
    let marks = sb.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let child = fixbench(sb.path())
        .env("FIXBENCH_TEST_MARKS", &marks)
        .args(["run", "--isolation", "none", "--repeat", "2", "--jobs", "3", "--agent", "null", "--cmd"])
        .arg(agent("parked.sh"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The null trials finish at once; the parked ones fill the three jobs and stay.
    let deadline = Instant::now() + Duration::from_secs(120);
    let parked = loop {
        assert!(Instant::now() < deadline, "three agents never ran at once");
        let found: Vec<(i32, i32)> = std::fs::read_dir(&marks)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .filter_map(|s| {
                let mut w = s.split_whitespace().map(|x| x.parse::<i32>().unwrap());
                Some((w.next()?, w.next()?))
            })
            .collect();
        if found.len() >= 3 {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(parked.len(), 3, "never more than --jobs at once: {parked:?}");
    for &(agent, its_child) in &parked {
        assert!(alive(agent) && alive(its_child), "{agent} and {its_child} run before the Ctrl-C");
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    for &(agent, its_child) in &parked {
        assert!(!alive(agent) && !alive(its_child), "agent {agent} and its child {its_child} were killed");
    }
    let run = sb.only_run();
    assert_eq!(run["status"], "interrupted");
    let saved: Vec<String> = trials(&run).iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert!(saved.iter().any(|id| id.contains("/null/")), "the finished null trials are kept: {saved:?}");
    assert!(!saved.iter().any(|id| id.contains("/cmd/")), "no parked trial counts as finished: {saved:?}");
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let dir = sb.results().join(&run_id);
    let folders = trial_files(&dir).len();
    assert_eq!(folders, saved.len(), "an interrupted trial leaves no folder behind");

    let out = run_expect(
        fixbench(sb.path())
            .env("FIXBENCH_TEST_MARKS", &marks)
            .env("FIXBENCH_TEST_PARK", "0")
            .args(["run", "--resume", &run_id, "--jobs", "3", "--json"]),
        0,
    );
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["status"], "finished");
    let ids: Vec<&str> = trials(&resumed).iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 12, "3 problems × 2 agents × 2 repeats: {ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 12, "no trial run twice: {ids:?}");
    for t in trials(&run) {
        let same = trials(&resumed).iter().find(|r| r["id"] == t["id"]).unwrap();
        assert_eq!(same, t, "a trial finished before the Ctrl-C is kept as it was");
    }
    // Every trial had a workdir, a home and logs of its own.
    let dir = sb.results().join(&run_id);
    let mut seen = BTreeSet::new();
    for t in trials(&resumed).iter().filter(|t| t["agent"] == "cmd") {
        let stdout = std::fs::read_to_string(dir.join(t["paths"]["stdout"].as_str().unwrap())).unwrap();
        let line = stdout.lines().next().unwrap().to_string();
        for part in line.split_whitespace().take(2) {
            assert!(seen.insert(part.to_string()), "{part} is shared by two trials");
        }
    }
    assert_eq!(seen.len(), 12, "6 trials × (workdir, home)");
}

/// The tiny problem, whose test notes when it starts and ends in `log` (grading runs outside
/// the sandbox here, so it can), taking `secs` in between.
fn timed_problem(root: &Path, log: &Path, secs: f64) {
    let tests = format!(
        "import time\nfrom tiny import add\n\ndef test_add():\n    with open({log:?}, 'a') as f:\n        f.write('start %f\\n' % time.time())\n    time.sleep({secs})\n    with open({log:?}, 'a') as f:\n        f.write('end %f\\n' % time.time())\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n",
        log = log.to_string_lossy()
    );
    tiny_problem(root, &tests, 2);
}

/// The most gradings that ran at once, from the log's start/end lines.
fn most_at_once(log: &Path) -> usize {
    let mut events: Vec<(f64, i32)> = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let (what, at) = l.split_once(' ').unwrap();
            (at.parse().unwrap(), if what == "start" { 1 } else { -1 })
        })
        .collect();
    events.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut most) = (0, 0);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn grading_keeps_to_grade_jobs_while_more_agents_run() {
    for (grade_jobs, expect) in [("1", 1), ("3", 3)] {
        let sb = Sandbox::new();
        let log = sb.path().join(format!("grading-{grade_jobs}.log"));
        timed_problem(sb.path(), &log, 1.0);
        run_expect(
            fixbench(sb.path()).args([
                "run",
                "--problem",
                "tiny",
                "--agent",
                "null",
                "--repeat",
                "3",
                "--jobs",
                "3",
                "--grade-jobs",
                grade_jobs,
                "--isolation",
                "none",
                "--grade-isolation",
                "none",
            ]),
            0,
        );
        // The starter's grading, then the three trials'.
        let lines = std::fs::read_to_string(&log).unwrap().lines().count();
        assert_eq!(lines, 8, "four gradings: {}", std::fs::read_to_string(&log).unwrap());
        assert_eq!(most_at_once(&log), expect, "--grade-jobs {grade_jobs}");
    }
}

#[test]
fn jobs_come_from_the_flag_or_harness_toml_and_are_stored() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("harness.toml"),
        "[run]\njobs = 2\nagents = [\"null\"]\nproblems = [\"expr_calc\"]\n",
    )
    .unwrap();
    run_expect(fixbench(sb.path()).args(["run", "--isolation", "none"]), 0);
    assert_eq!(sb.only_run()["config"]["jobs"], 2);
    let out = run_expect(fixbench(sb.path()).args(["run", "--isolation", "none", "--jobs", "auto", "--json"]), 0);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(run["config"]["jobs"], cores as u64, "auto without a server: the cores");
    for (bad, says) in [("0", "1 or more"), ("many", "auto"), ("-1", "1 or more")] {
        let out = run_expect(fixbench(sb.path()).args(["run", "--jobs", bad]), 2);
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(sb.path().join("harness.toml"), "[run]\njobs = 0\n").unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--isolation", "none"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("harness.toml") && err.contains("jobs"), "{err}");
}

#[test]
fn a_pool_names_each_server_once_and_a_resume_keeps_what_a_trial_is() {
    let sb = Sandbox::new();
    for (servers, says) in [
        (["http://127.0.0.1:1/", "http://localhost:1/v1"], "name the same server"),
        (["http://127.0.0.1:notaport", "http://127.0.0.1:2"], "host and port"),
    ] {
        let mut cmd = fixbench(sb.path());
        cmd.args(["run", "--agent", "null", "--isolation", "none"]);
        for s in servers {
            cmd.args(["--server", s]);
        }
        let out = run_expect(&mut cmd, 2);
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none", "--json"]),
        0,
    );
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["run_id"].as_str().unwrap().to_string();
    for (flags, says) in [
        (vec!["--isolation", "sandbox"], "--isolation"),
        (vec!["--cache-state", "cold"], "--cache-state"),
        (vec!["--server", "http://127.0.0.1:1"], "the run had no server"),
    ] {
        let out = run_expect(fixbench(sb.path()).args(["run", "--resume", &id]).args(&flags), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.contains("own configuration"), "{flags:?}: {err}");
    }
    // Naming what it already is changes nothing.
    run_expect(fixbench(sb.path()).args(["run", "--resume", &id, "--isolation", "none"]), 0);
}
