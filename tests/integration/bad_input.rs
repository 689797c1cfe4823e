//! Bad input found by a hostile campaign (issue 13): each is refused with exit 2 and a message
//! naming the flag, or the file and key, and the fix; a run that has started always ends on disk
//! as `finished` or `interrupted`, never `running`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn agent(name: &str) -> String {
    repo().join("tests/agents").join(name).to_string_lossy().into_owned()
}

/// The run folders under `results/`, each with its run.json.
/// The stored runs, oldest first: by the start time in their records (two runs started in the
/// same second have ids that sort by their random suffix, not by which started first).
fn run_dirs(results: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(results) else { return vec![] };
    let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.join("run.json").is_file()).collect();
    let started = |d: &PathBuf| {
        let text = std::fs::read_to_string(d.join("run.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["started_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    dirs.sort_by_cached_key(|d| (started(d), d.clone()));
    dirs
}

fn write_harness(sb: &Sandbox, text: &str) {
    std::fs::write(sb.path().join("harness.toml"), text).unwrap();
}

// Item 7.
#[test]
fn an_error_after_the_run_started_leaves_it_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    tiny_problem(dir.path(), "# no tests at all\n", 2);
    let out = run_expect(fixbench(dir.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
    assert!(stderr(&out).contains("tiny"), "{}", stderr(&out));
    let runs = run_dirs(&dir.path().join("results"));
    assert_eq!(runs.len(), 1);
    let run: Value = serde_json::from_str(&std::fs::read_to_string(runs[0].join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "interrupted", "docs/results.md: a crash leaves the run interrupted");
    assert!(run["ended_at"].is_string());
}

// Item 6.
#[test]
fn unusable_time_limits_are_refused_before_anything_starts() {
    let sb = Sandbox::new();
    for t in ["1e300", "inf", "nan", "-5", "0", "9223372036854775807"] {
        let out = run_expect(
            fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none", &format!("--timeout={t}")]),
            2,
        );
        assert!(stderr(&out).contains("--timeout is"), "{t}: {}", stderr(&out));
    }
    for (text, key) in [
        ("[run]\ntimeout = 9223372036854775807\n", "`run.timeout`"),
        ("[run]\ntimeout = inf\n", "`run.timeout`"),
        ("[run]\ntimeout = nan\n", "`run.timeout`"),
        ("[agents.slow]\ncommand = \"true\"\ntimeout = 1e300\n", "`agents.slow.timeout`"),
        ("[agents.slow]\ncommand = \"true\"\ntimeout = -5\n", "`agents.slow.timeout`"),
    ] {
        write_harness(&sb, text);
        let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
        let err = stderr(&out);
        assert!(err.contains("harness.toml") && err.contains(key), "{text}: {err}");
    }
    assert!(run_dirs(&sb.results()).is_empty(), "nothing started");

    // A stored run whose limit cannot be used is refused by --resume, naming its record.
    std::fs::remove_file(sb.path().join("harness.toml")).unwrap();
    run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none"]),
        0,
    );
    let dir = &run_dirs(&sb.results())[0];
    keep_trials(dir, 0);
    set_header(dir, |run| run["config"]["timeout_s"] = serde_json::json!(1e300));
    let out = run_expect(fixbench(sb.path()).args(["run", "--resume", "latest"]), 2);
    assert!(stderr(&out).contains("run.json") && stderr(&out).contains("`config.timeout_s`"), "{}", stderr(&out));
}

// Item 1.
#[test]
fn a_problem_named_twice_is_refused() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--cmd",
            "true",
        ]),
        2,
    );
    assert!(stderr(&out).contains("problem `expr_calc` is named twice"), "{}", stderr(&out));
    write_harness(&sb, "[run]\nproblems = [\"expr_calc\", \"expr_calc\"]\n");
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
    assert!(stderr(&out).contains("harness.toml: `run.problems` names `expr_calc` twice"), "{}", stderr(&out));
    assert!(run_dirs(&sb.results()).is_empty());
}

// Item 5.
#[test]
fn agent_names_and_file_keys_that_leave_their_folder_are_refused() {
    let sb = Sandbox::new();
    for (text, expect) in [
        (
            "[agents.\"../../x\"]\ncommand = \"true\"\n",
            "[agents.\"../../x\"]: the agent's name `../../x` may hold only",
        ),
        ("[agents.\"a/b\"]\ncommand = \"true\"\n", "[agents.\"a/b\"]: the agent's name `a/b` may hold only"),
        (
            "[agents.ok]\ncommand = \"true\"\nfiles = { \"../../escape.txt\" = \"x\" }\n",
            "`agents.ok.files` has the key `../../escape.txt`",
        ),
        (
            "[agents.ok]\ncommand = \"true\"\nfiles = { \"/tmp/escape.txt\" = \"x\" }\n",
            "`agents.ok.files` has the key `/tmp/escape.txt`, which is absolute",
        ),
    ] {
        write_harness(&sb, text);
        let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
        let err = stderr(&out);
        assert!(err.contains("harness.toml") && err.contains(expect), "{text}: {err}");
    }
    assert!(run_dirs(&sb.results()).is_empty());

    // A key that leaves the home only once filled in is refused before anything is written.
    write_harness(&sb, "[agents.ok]\ncommand = \"true\"\nfiles = { \"{model}.json\" = \"x\" }\n");
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--agent",
            "ok",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--model",
            "../../../escaped",
        ]),
        2,
    );
    assert!(
        stderr(&out).contains("agent `ok`: the generated file `../../../escaped.json` leaves the folder"),
        "{}",
        stderr(&out)
    );
    let tmp = std::env::temp_dir();
    assert!(!tmp.join("escaped.json").exists() && !tmp.parent().unwrap().join("escaped.json").exists());
}

// Items 11 and 12.
#[test]
fn empty_agent_lists_zero_limits_and_built_in_names_are_refused() {
    let sb = Sandbox::new();
    for (text, expect) in [
        ("[run]\nagents = []\n", "harness.toml: `run.agents` is empty"),
        (
            "[run]\nagents = [\"slow\"]\n[agents.slow]\ncommand = \"true\"\ntimeout = 0\n",
            "harness.toml: `agents.slow.timeout` is 0.0",
        ),
        ("[agents.null]\ncommand = \"true\"\n", "harness.toml: [agents.\"null\"]: `null` is a built-in agent's name"),
        ("[agents.oracle]\ncommand = \"true\"\n", "`oracle` is a built-in agent's name"),
    ] {
        write_harness(&sb, text);
        let out = run_expect(fixbench(sb.path()).args(["run", "--isolation", "none"]), 2);
        assert!(stderr(&out).contains(expect), "{text}: {}", stderr(&out));
    }
    assert!(run_dirs(&sb.results()).is_empty());
}

// Item 14.
#[test]
fn config_errors_name_the_file_the_key_and_the_agent() {
    let sb = Sandbox::new();
    write_harness(&sb, "[run]\ntimeout = -1\n");
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
    let err = stderr(&out);
    assert!(err.contains("harness.toml: `run.timeout` is -1.0") && !err.contains("--timeout"), "{err}");
    write_harness(&sb, "[run]\ntranscript_cap_mib = 0\n");
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
    let err = stderr(&out);
    assert!(err.contains("harness.toml: `run.transcript_cap_mib` is 0: give a size in MiB above 0"), "{err}");
    for text in ["[agents.mine]\ncommand = \"\"\n", "[agents.mine]\ncommand = []\n", "[agents.mine]\ncommand = \"'\"\n"]
    {
        write_harness(&sb, text);
        let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "mine", "--isolation", "none"]), 2);
        assert!(
            stderr(&out).contains("harness.toml: `agents.mine.command` is empty or does not split"),
            "{text}: {}",
            stderr(&out)
        );
    }
    std::fs::remove_file(sb.path().join("harness.toml")).unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--isolation", "none", "--cmd", " "]), 2);
    assert!(stderr(&out).contains("--cmd ` `: the agent command is empty"), "{}", stderr(&out));
}

// Item 13.
#[test]
fn resuming_an_unknown_corrupt_or_newer_run_is_bad_input() {
    let sb = Sandbox::new();
    let out = run_expect(fixbench(sb.path()).args(["run", "--resume", "20990101-000000-dead"]), 2);
    assert!(stderr(&out).contains("no run `20990101-000000-dead`"), "{}", stderr(&out));
    run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none"]),
        0,
    );
    let file = run_dirs(&sb.results())[0].join("run.json");
    let good = std::fs::read_to_string(&file).unwrap();
    let mut newer: Value = serde_json::from_str(&good).unwrap();
    newer["schema_version"] = 99.into();
    for (text, expect) in
        [("{ not json".to_string(), "not a fixbench run record"), (newer.to_string(), "newer than this fixbench")]
    {
        std::fs::write(&file, &text).unwrap();
        let out = run_expect(fixbench(sb.path()).args(["run", "--resume", "latest"]), 2);
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    }
}

// Item 4.
#[test]
fn resuming_a_finished_run_changes_nothing() {
    let sb = Sandbox::new();
    run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none"]),
        0,
    );
    let file = run_dirs(&sb.results())[0].join("run.json");
    let before = std::fs::read(&file).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let out = run_expect(fixbench(sb.path()).args(["run", "--resume", "latest"]), 0);
    assert!(stderr(&out).contains("is finished: nothing to resume"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), before, "the record, ended_at included, is untouched");
}

// Item 3.
#[test]
fn a_run_in_progress_cannot_be_resumed_a_second_time() {
    let sb = Sandbox::new();
    let mut first = fixbench(sb.path())
        .env("FIXBENCH_TEST_SLEEP", "30")
        .args(["run", "--problem", "expr_calc", "--isolation", "none", "--cmd", &agent("slow_fixer.sh")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run_dirs(&sb.results()).is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = run_dirs(&sb.results())[0].file_name().unwrap().to_string_lossy().into_owned();
    let out = run_expect(fixbench(sb.path()).args(["run", "--resume", &id]), 2);
    let err = stderr(&out);
    assert!(err.contains(&format!("run {id} is being run by another fixbench (process {}", first.id())), "{err}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(130));
}

// Item 9 is in report.rs (`history_is_newest_first_and_names_a_corrupt_run`).

// Item 10.
#[test]
fn gate_fails_an_incomplete_run_unless_told_otherwise() {
    let sb = Sandbox::new();
    for _ in 0..2 {
        run_expect(
            fixbench(sb.path()).args([
                "run",
                "--agent",
                "null",
                "--problem",
                "expr_calc",
                "--repeat",
                "2",
                "--isolation",
                "none",
            ]),
            0,
        );
    }
    keep_trials(&run_dirs(&sb.results())[1], 1);
    let out = run_expect(fixbench(sb.path()).args(["gate", "--baseline", "latest~1", "latest"]), 5);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gate: FAILED") && text.contains("the run is incomplete (interrupted, 1 of 2 trials)"),
        "{text}"
    );
    let out =
        run_expect(fixbench(sb.path()).args(["gate", "--baseline", "latest~1", "latest", "--allow-incomplete"]), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("gated anyway"), "{}", String::from_utf8_lossy(&out.stdout));
    // A baseline that is itself incomplete fails the gate too.
    let out = run_expect(fixbench(sb.path()).args(["gate", "--baseline", "latest", "latest~1"]), 5);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the baseline is incomplete"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// Item 18 (a configured agent that cannot start: runner.rs `an_agent_that_cannot_start_is_a_recorded_outcome`).
#[test]
fn a_cmd_whose_program_is_missing_is_refused_before_the_run() {
    let sb = Sandbox::new();
    for (cmd, expect) in [
        ("./typo.sh {prompt}", "typo.sh does not exist"),
        ("no-such-agent-anywhere {prompt}", "`no-such-agent-anywhere` is not on PATH"),
    ] {
        let out = run_expect(
            fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--isolation", "none", "--cmd", cmd]),
            2,
        );
        assert!(stderr(&out).contains(&format!("--cmd `{cmd}`")) && stderr(&out).contains(expect), "{}", stderr(&out));
    }
    std::fs::write(sb.path().join("plain.sh"), "echo hi\n").unwrap();
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--isolation", "none", "--cmd", "./plain.sh"]),
        2,
    );
    assert!(stderr(&out).contains("is not executable"), "{}", stderr(&out));
    assert!(run_dirs(&sb.results()).is_empty(), "nothing started");
}

// Item 19, unsandboxed: a relative script path is taken from the current folder, and an agent
// that fails at once is flagged.
#[test]
fn a_script_named_relative_to_here_runs_and_a_quick_failure_is_flagged() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("my_agent.sh"), "echo \"ran in $PWD\"\nexit 2\n").unwrap();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
            "--cmd",
            "bash my_agent.sh",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &run["trials"][0];
    assert_eq!(t["exit_code"], 2, "{t}");
    assert_eq!(t["command"][1], sb.path().join("my_agent.sh").to_string_lossy().as_ref());
    assert!(stderr(&out).contains("agent exited in 0."), "{}", stderr(&out));
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--isolation", "none", "--cmd", "bash my_agent.sh"]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("exited in 0.") && table.contains("(code 2)"), "{table}");
}

// Item 19, in the sandbox: the files a command names are shown read-only, never the problems'.
#[test]
fn a_script_the_command_names_is_shown_to_the_sandboxed_agent() {
    let sb = Sandbox::outside_tmp();
    std::fs::create_dir_all(sb.path().join("agents")).unwrap();
    std::fs::write(sb.path().join("agents/lib.sh"), "echo \"helper seen\"\n").unwrap();
    std::fs::write(sb.path().join("agents/my_agent.sh"), "source \"$(dirname \"$0\")/lib.sh\"\necho \"script seen\"\n")
        .unwrap();
    std::fs::write(sb.path().join("top.sh"), "echo \"top seen\"\necho x > \"$0\" || echo \"cannot write\"\n").unwrap();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--json",
            "--cmd",
            "bash agents/my_agent.sh",
            "--cmd",
            "bash top.sh",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let log = |i: usize| {
        let t = &run["trials"][i];
        assert_eq!(t["isolation"], "sandbox");
        std::fs::read_to_string(
            sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["stdout"].as_str().unwrap()),
        )
        .unwrap()
    };
    assert_eq!(log(0), "helper seen\nscript seen\n", "the script's folder comes along");
    assert_eq!(log(1), "top seen\ncannot write\n", "a file in the project folder is shown alone, read-only");
    assert_eq!(std::fs::read_to_string(sb.path().join("top.sh")).unwrap().lines().count(), 2);

    // One inside problems/ stays hidden: the agent fails at once, and the table says so.
    let hidden = sb.path().join("problems/expr_calc/PROBLEM.md");
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--cmd", &format!("cat {}", hidden.display())]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("exited in 0.") && table.contains("(code 1)"), "{table}");
}

// Item 20.
#[test]
fn an_unsandboxed_agent_dies_with_a_killed_fixbench() {
    let sb = Sandbox::new();
    let pidfile = sb.path().join("agent.pid");
    std::fs::write(
        sb.path().join("sleeper.sh"),
        "#!/usr/bin/env bash\necho $$ > \"$FIXBENCH_TEST_PIDFILE\"\nexec sleep 300\n",
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(sb.path().join("sleeper.sh")).status().unwrap();
    let mut fb = fixbench(sb.path())
        .env("FIXBENCH_TEST_PIDFILE", &pidfile)
        .args(["run", "--problem", "expr_calc", "--isolation", "none", "--cmd", "./sleeper.sh"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid: i32 = loop {
        assert!(Instant::now() < deadline, "the agent never started");
        if let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse().ok()) {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    fb.kill().unwrap(); // SIGKILL: fixbench cleans nothing up itself
    fb.wait().unwrap();
    let gone = Instant::now() + Duration::from_secs(5);
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
            .unwrap_or(false)
    };
    while alive(pid) {
        if Instant::now() > gone {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("the agent {pid} outlived the fixbench that started it");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Item 8.
#[test]
fn a_suite_that_collects_other_than_problem_toml_says_is_refused() {
    for (tests, why) in [
        ("def test_add(:\n    pass\n", "does not parse"),
        ("from tiny.missing import add\n\ndef test_add():\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n", "cannot import"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        tiny_problem(dir.path(), tests, 2);
        let out = run_expect(fixbench(dir.path()).args(["run", "--agent", "null", "--agent", "oracle", "--isolation", "none"]), 2);
        let err = stderr(&out);
        assert!(
            err.contains("problem `tiny` (problems/tiny): its tests collect 1 test(s)") && err.contains("problem.toml says `tests = 2`"),
            "{why}: {err}"
        );
        let run = read_run(&run_dirs(&dir.path().join("results"))[0]);
        assert_eq!(run["trials"].as_array().unwrap().len(), 0, "{why}: no trial is graded against it");
    }
    // The sound version of the same problem runs.
    let dir = tempfile::tempdir().unwrap();
    tiny_problem(dir.path(), TINY_TESTS, 2);
    run_expect(fixbench(dir.path()).args(["run", "--agent", "null", "--isolation", "none"]), 0);
}

// Item 17.
#[test]
fn validate_of_a_suite_that_does_not_parse_counts_consistently() {
    let dir = tempfile::tempdir().unwrap();
    tiny_problem(dir.path(), "def test_add(:\n    pass\n", 2);
    let out = run_expect(fixbench(dir.path()).args(["validate"]), 4);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("not checked") && !table.contains("1/1"), "no bug is counted as caught: {table}");
    let out = run_expect(fixbench(dir.path()).args(["validate", "--json"]), 4);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<&str> =
        v["problems"][0]["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let unique: std::collections::BTreeSet<&&str> = reasons.iter().collect();
    assert_eq!(unique.len(), reasons.len(), "no line twice: {reasons:?}");
    assert_eq!(reasons.iter().filter(|r| r.contains("collects 1 test(s)")).count(), 1, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("were not checked")), "{reasons:?}");
    assert_eq!(v["problems"][0]["bugs_checked"], false);
}

// Also: a link in a problem's package is left out of every trial, so validate says so.
#[test]
fn validate_names_links_that_trials_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    tiny_problem(dir.path(), TINY_TESTS, 2);
    run_expect(fixbench(dir.path()).args(["validate"]), 0);
    std::os::unix::fs::symlink("__init__.py", dir.path().join("problems/tiny/tiny/alias.py")).unwrap();
    let out = run_expect(fixbench(dir.path()).args(["validate"]), 4);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("symbolic links") && text.contains("alias.py"), "{text}");
}

// Item 15.
#[test]
fn a_run_resumes_from_another_folder() {
    let sb = Sandbox::new();
    std::fs::rename(sb.path().join("problems"), sb.path().join("probs")).unwrap();
    run_expect(
        fixbench(sb.path()).args([
            "run",
            "--agent",
            "null",
            "--problem",
            "expr_calc",
            "--repeat",
            "2",
            "--isolation",
            "none",
            "--problems-dir",
            "probs",
        ]),
        0,
    );
    let dir = &run_dirs(&sb.results())[0];
    let interrupt = |problems_dir: Option<&str>| {
        keep_trials(dir, 1);
        if let Some(d) = problems_dir {
            set_header(dir, |run| run["config"]["problems_dir"] = d.into()); // as records stored it before
        }
    };
    interrupt(None);
    let elsewhere = tempfile::tempdir().unwrap();
    let results = sb.results().to_string_lossy().into_owned();
    let out =
        run_expect(fixbench(elsewhere.path()).args(["run", "--resume", "latest", "--results", &results, "--json"]), 0);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((run["status"].as_str(), run["trials"].as_array().unwrap().len()), (Some("finished"), 2));

    // A record holding a relative path resumes with --problems-dir.
    interrupt(Some("probs"));
    let probs = sb.path().join("probs").to_string_lossy().into_owned();
    let out = run_expect(fixbench(elsewhere.path()).args(["run", "--resume", "latest", "--results", &results]), 2);
    assert!(stderr(&out).contains("pass --problems-dir"), "{}", stderr(&out));
    run_expect(
        fixbench(elsewhere.path()).args(["run", "--resume", "latest", "--results", &results, "--problems-dir", &probs]),
        0,
    );
}

// Also: run.json has the mode of the trial files beside it (docs/results.md).
#[test]
fn run_json_has_the_mode_of_the_files_beside_it() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none"]),
        0,
    );
    let dir = &run_dirs(&sb.results())[0];
    let mode = |p: PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    let trial = std::fs::read_dir(dir.join("trials")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(mode(dir.join("run.json")), mode(trial.join("stdout.log")), "not a temp file's 0600");
    assert_eq!(mode(trial.join("trial.json")), mode(trial.join("stdout.log")), "not a temp file's 0600");
}

// Item 6, for sweeps: their server wait is a time limit too.
#[test]
fn a_sweep_with_an_unusable_health_timeout_is_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("sweep.toml"), "[[server]]\nlabel = \"a\"\nmodel = \"m.gguf\"\n").unwrap();
    for t in ["-1", "inf", "nan", "1e300"] {
        let out = run_expect(
            fixbench(sb.path()).args(["sweep", "sweep.toml", "--agent", "null", &format!("--health-timeout={t}")]),
            2,
        );
        assert!(stderr(&out).contains("--health-timeout is"), "{t}: {}", stderr(&out));
    }
}
