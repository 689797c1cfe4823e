//! Grading contains the agent's code: its package runs inside pytest, in bubblewrap, and the
//! grade is believed only when the JUnit file, fixbench's own channel and pytest's summary
//! agree. With the real pytest and bubblewrap, against agents that plant code for grading time.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn hook(mode: &str) -> String {
    format!("{} {mode}", repo().join("tests/agents/grade_hook.py").display())
}

fn only_trial(out: &std::process::Output) -> Value {
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    run["trials"][0].clone()
}

/// A finished run of the null agent to be the forger's victim; returns its run.json's path.
fn earlier_run(sb: &Sandbox) -> std::path::PathBuf {
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc", "--json"]), 0);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    sb.results().join(run["run_id"].as_str().unwrap()).join("run.json")
}

fn forge(sb: &Sandbox, victim: &std::path::Path, extra: &[&str]) -> (Value, String) {
    let answers = sb.path().join("problems/expr_calc/expr_calc.reference").canonicalize().unwrap();
    let mut cmd = fixbench(sb.path());
    cmd.env("FIXBENCH_TEST_VICTIM", victim).env("FIXBENCH_TEST_ANSWERS", &answers);
    cmd.args(["run", "--problem", "expr_calc", "--cmd", &hook("forge"), "--json"]).args(extra);
    let out = run_expect(&mut cmd, 0);
    let t = only_trial(&out);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let junit = sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["junit"].as_str().unwrap());
    (t, std::fs::read_to_string(junit).unwrap_or_default())
}

#[test]
fn an_exit_hook_that_forges_the_junit_report_is_void_sees_no_answers_and_writes_nothing() {
    let sb = Sandbox::outside_tmp();
    let victim = earlier_run(&sb);
    let before = std::fs::read_to_string(&victim).unwrap();
    let (t, junit) = forge(&sb, &victim, &[]);
    // The hook ran (it rewrote the JUnit file) but, in the grading sandbox, saw no answers and
    // could not touch the earlier run.
    assert!(junit.contains("<!-- saw-answers: no wrote-victim: no -->"), "{junit}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), before, "the earlier run.json was changed");
    // The forged 15/15 is not believed: the channel's outcomes stand, and the trial is void.
    assert_eq!(t["resolved"], false, "{t}");
    assert_eq!((t["passed"].as_u64(), t["total"].as_u64()), (Some(11), Some(15)), "{t}");
    let void = t["void"].as_str().unwrap_or_else(|| panic!("not void: {t}"));
    assert!(void.contains("the JUnit report and fixbench's channel disagree on 4 test(s)"), "{void}");
    // The change is flagged for what it reaches for.
    let flags: Vec<&str> = t["suspicious"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    for what in
        ["registers an exit hook (atexit)", "reads the grader's command line (sys.argv)", "names the JUnit report"]
    {
        assert!(
            flags.iter().any(|f| f.starts_with("expr_calc/__init__.py:") && f.ends_with(what)),
            "{what} not in {flags:?}"
        );
    }
    // `show` says so.
    let out = run_expect(fixbench(sb.path()).args(["show", "latest"]), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VOID") && text.contains("suspicious: expr_calc/__init__.py:"), "{text}");
}

#[test]
fn unsandboxed_grading_is_only_on_request_and_then_the_hook_reaches_everything() {
    let sb = Sandbox::outside_tmp();
    let victim = earlier_run(&sb);
    // `--isolation none` alone still grades in the sandbox.
    let (t, junit) = forge(&sb, &victim, &["--isolation", "none"]);
    assert_eq!(t["isolation"], "none");
    assert!(junit.contains("saw-answers: no wrote-victim: no"), "{junit}");
    // `--grade-isolation none` is what turns it off: the same hook then sees the answers and
    // overwrites the earlier run, which is why it is not the default. The channel still
    // catches the forged report.
    let (t, junit) = forge(&sb, &victim, &["--isolation", "none", "--grade-isolation", "none"]);
    assert!(junit.contains("saw-answers: yes wrote-victim: yes"), "{junit}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "{}");
    assert!(t["void"].as_str().is_some_and(|v| v.contains("disagree")), "{t}");
}

#[test]
fn a_package_that_ends_pytest_with_exit_0_is_no_pass_and_says_exit_0() {
    let sb = Sandbox::new();
    let out =
        run_expect(fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--cmd", &hook("exit0"), "--json"]), 0);
    let t = only_trial(&out);
    assert_eq!((t["passed"].as_u64(), t["resolved"].as_bool()), (Some(0), Some(false)), "{t}");
    let err = t["error"].as_str().unwrap();
    assert!(err.contains("pytest wrote no report (exit 0)"), "{err}");
}

#[test]
fn a_hanging_grading_obeys_grade_timeout() {
    let sb = Sandbox::new();
    let start = Instant::now();
    let out = run_expect(
        fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--cmd",
            &hook("hang"),
            "--grade-timeout",
            "3",
            "--json",
        ]),
        0,
    );
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    let t = only_trial(&out);
    assert!(t["error"].as_str().unwrap().contains("pytest ran past its 3 s limit (--grade-timeout)"), "{t}");
    assert_eq!(t["resolved"], false);
    // harness.toml's value is used, and a bad one names the file and key.
    std::fs::write(sb.path().join("harness.toml"), "[run]\ngrade_timeout = -1\n").unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--problem", "expr_calc"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("harness.toml: `run.grade_timeout` is -1.0"), "{err}");
    std::fs::remove_file(sb.path().join("harness.toml")).unwrap();
    for bad in ["inf", "nan", "0", "1e300"] {
        let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--grade-timeout", bad]), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--grade-timeout is ") && err.contains("at most 604800 (a week)"), "{bad}: {err}");
    }
}

#[test]
fn one_ctrl_c_stops_a_hanging_grading_at_once() {
    let sb = Sandbox::new();
    let mut child = fixbench(sb.path())
        .args(["run", "--problem", "expr_calc", "--cmd", &hook("hang")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The agent takes well under a second; then pytest imports the sleeping package.
    std::thread::sleep(Duration::from_secs(4));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "still grading 10 s after one SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let run = sb.only_run();
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["trials"].as_array().unwrap().len(), 0, "the interrupted trial is not kept");
}
