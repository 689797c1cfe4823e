//! `--isolation sandbox` (the default) with the real bubblewrap: the answers and the host stay
//! hidden and unwritable, the built-ins still work, and the runner's hostile agents behave
//! inside the sandbox as they do outside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn agent(name: &str) -> String {
    repo().join("tests/agents").join(name).to_string_lossy().into_owned()
}

/// A trial's stdout log.
fn stdout_of(sb: &Sandbox, run: &Value, t: &Value) -> String {
    let p = sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["stdout"].as_str().unwrap());
    std::fs::read_to_string(p).unwrap()
}

/// Runs `fixbench run --json ARGS` in `sb` and returns the run.
fn run_json(cmd: &mut std::process::Command) -> Value {
    let out = run_expect(cmd.args(["--json"]), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Pids of live processes whose environment holds `token` (`FIXBENCH_TEST_TOKEN=<token>`):
/// found by environment because pids inside the sandbox are not the host's.
fn processes_with_token(token: &str) -> Vec<i32> {
    let needle = format!("FIXBENCH_TEST_TOKEN={token}");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
            .unwrap_or(true);
        if !zombie && env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn token() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

#[test]
fn the_default_is_the_sandbox_and_null_and_oracle_work_in_it() {
    let sb = Sandbox::new();
    // A bwrap that logs each start, to see the null agent really start a sandbox.
    let log = sb.path().join("bwrap.log");
    let wrapper = sb.path().join("bwrap-logged");
    std::fs::write(&wrapper, format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec bwrap \"$@\"\n", log.display()))
        .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&wrapper).status().unwrap();
    let run = run_json(
        fixbench(sb.path()).env("FIXBENCH_BWRAP", &wrapper).args(["run", "--agent", "null", "--agent", "oracle"]),
    );
    assert_eq!(run["config"]["isolation"], "sandbox");
    assert_eq!(trials(&run).len(), 6);
    for t in trials(&run) {
        assert_eq!(t["isolation"], "sandbox", "{t}");
        assert_eq!(t["error"], Value::Null, "{t}");
        match t["agent"].as_str().unwrap() {
            "null" => assert_eq!(
                (t["passed"].as_u64(), t["resolved"].as_bool()),
                (t["baseline"].as_u64(), Some(false)),
                "{t}"
            ),
            _ => assert_eq!((t["passed"].as_u64(), t["resolved"].as_bool()), (t["total"].as_u64(), Some(true)), "{t}"),
        }
    }
    let starts = std::fs::read_to_string(&log).unwrap();
    let trues: Vec<&str> = starts.lines().filter(|l| l.ends_with("-- /bin/true")).collect();
    assert_eq!(trues.len(), 3, "one sandbox per null trial, none for the in-process oracle:\n{starts}");
    // Grading is sandboxed too: each problem's starter once, then every trial.
    let gradings: Vec<&str> = starts.lines().filter(|l| l.contains("/fixbench_grade.py ")).collect();
    assert_eq!(gradings.len(), 3 + 6, "one sandbox per grading:\n{starts}");
    assert_eq!(starts.lines().count(), 1 + 3 + 9, "the probe runs once per run:\n{starts}");
    let problems = sb.path().join("problems").canonicalize().unwrap();
    for l in trues.into_iter().chain(gradings) {
        assert!(
            l.contains("--unshare-pid")
                && l.contains("--as-pid-1")
                && l.contains("--cap-drop ALL")
                && l.contains("--remount-ro /"),
            "{l}"
        );
        assert!(!l.contains(&*problems.to_string_lossy()) && !l.contains(".reference"), "the answers are mounted: {l}");
    }
}

/// A line of `problem`'s reference fix that none of the files the agent is given holds.
fn needle(problem: &Path, name: &str) -> (String, String) {
    let mut given = String::new();
    for dir in [problem.join(name), problem.join("tests")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            given += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    for e in std::fs::read_dir(problem.join(format!("{name}.reference"))).unwrap().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".py") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        if let Some(line) = text.lines().map(str::trim).find(|l| l.len() > 12 && !given.contains(*l)) {
            return (file, line.to_string());
        }
    }
    panic!("no line of the reference fix is unique to it");
}

#[test]
fn a_snooping_agent_finds_no_answers_in_the_sandbox_but_does_outside() {
    let sb = Sandbox::new();
    let (file, line) = needle(&sb.path().join("problems/expr_calc"), "expr_calc");
    let reference = sb.path().join("problems/expr_calc/expr_calc.reference").canonicalize().unwrap();
    let snoop =
        |isolation: &str| {
            let run =
                run_json(
                    fixbench(sb.path())
                        .env("FIXBENCH_TEST_NEEDLE_FILE", &file)
                        .env("FIXBENCH_TEST_NEEDLE", &line)
                        .args(["run", "--problem", "expr_calc", "--isolation", isolation, "--cmd", &agent("snoop.sh")]),
                );
            let t = &trials(&run)[0];
            assert_eq!(t["isolation"], isolation);
            assert_eq!(t["exit_code"], 0, "{t}");
            stdout_of(&sb, &run, t)
        };
    // Unisolated, the search works: it finds this problem's answers.
    let outside = snoop("none");
    assert!(outside.contains(&format!("found dir: {}\n", reference.display())), "{outside}");
    assert!(outside.contains(&format!("found file: {}\n", reference.join(&file).display())), "{outside}");
    // In the sandbox the same search finds nothing anywhere.
    let inside = snoop("sandbox");
    assert!(inside.ends_with("searched\n"), "{inside}");
    assert!(!inside.contains("found"), "the sandboxed agent found answers:\n{inside}");
}

/// Files this test plants outside the trial and removes however it ends.
struct Planted(Vec<PathBuf>);

impl Drop for Planted {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn writes_to_results_home_and_etc_fail_and_change_nothing() {
    let sb = Sandbox::outside_tmp();
    let tok = token();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    std::fs::create_dir_all(sb.results()).unwrap();
    let kept = [sb.results().join("keep.txt"), home.join(format!(".fixbench-sentinel-{tok}"))];
    let etc_kept = PathBuf::from(format!("/etc/fixbench-sentinel-{tok}"));
    let fresh = [
        sb.results().join("new.txt"),
        home.join(format!(".fixbench-new-{tok}")),
        PathBuf::from(format!("/etc/fixbench-new-{tok}")),
    ];
    let mut planted = Planted(fresh.to_vec());
    let mut existing: Vec<PathBuf> = kept.to_vec();
    if std::fs::write(&etc_kept, "original\n").is_ok() {
        planted.0.push(etc_kept.clone());
        existing.push(etc_kept);
    }
    planted.0.push(kept[1].clone());
    for p in &kept {
        std::fs::write(p, "original\n").unwrap();
    }
    let targets: Vec<String> = existing.iter().chain(&fresh).map(|p| p.to_string_lossy().into_owned()).collect();
    let cmd = format!("{} {}", agent("trespass.sh"), shlex_join(&targets));
    let run = run_json(fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--cmd", &cmd]));
    let t = &trials(&run)[0];
    assert_eq!(t["isolation"], "sandbox");
    let report = stdout_of(&sb, &run, t);
    for target in &targets {
        assert!(report.contains(&format!("refused {target}\n")), "{report}");
    }
    assert!(!report.contains("wrote"), "{report}");
    for p in &existing {
        assert_eq!(std::fs::read_to_string(p).unwrap(), "original\n", "{} changed", p.display());
    }
    for p in &fresh {
        assert!(!p.exists(), "{} was created", p.display());
    }
    drop(planted);
}

fn shlex_join(words: &[String]) -> String {
    words.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ")
}

// The runner's hostile agents (tests/integration/runner.rs), inside the sandbox.

#[test]
fn a_tampering_agent_is_graded_on_the_frozen_tests_in_the_sandbox() {
    let sb = Sandbox::new();
    let run = run_json(fixbench(sb.path()).args([
        "run",
        "--problem",
        "expr_calc",
        "--isolation",
        "sandbox",
        "--cmd",
        &agent("tamper.sh"),
    ]));
    let t = &trials(&run)[0];
    assert_eq!(t["isolation"], "sandbox");
    assert_eq!(t["exit_code"], 0, "{t}");
    assert_eq!(stdout_of(&sb, &run, t), "tampered with the tests\n");
    assert_eq!(t["total"], 15, "the frozen suite, not the agent's one-test rewrite");
    assert_eq!(t["passed"], 11);
    assert_eq!(t["skipped"], 0);
    assert_eq!(t["resolved"], false);
}

#[test]
fn a_hanging_agent_is_killed_with_every_child_in_the_sandbox() {
    let sb = Sandbox::new();
    let tok = token();
    // The scanner sees a live process carrying the token (so an empty scan below means
    // something).
    let mut probe = std::process::Command::new("sleep").arg("30").env("FIXBENCH_TEST_TOKEN", &tok).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_with_token(&tok), vec![probe.id() as i32]);
    probe.kill().unwrap();
    probe.wait().unwrap();

    let start = Instant::now();
    let run = run_json(
        fixbench(sb.path())
            .env("FIXBENCH_TEST_TOKEN", &tok)
            // The children's pids (the sandbox's own) go to the trial's stdout log.
            .env("FIXBENCH_TEST_PIDFILE", "/dev/stdout")
            .args([
                "run",
                "--problem",
                "expr_calc",
                "--isolation",
                "sandbox",
                "--timeout",
                "2",
                "--cmd",
                &agent("hang.sh"),
            ]),
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    let t = &trials(&run)[0];
    assert_eq!(t["timed_out"], true);
    assert!(t["error"].as_str().unwrap().contains("time limit"), "{t}");
    assert_eq!(t["passed"], 11, "a timed-out trial is still graded");
    let pids = stdout_of(&sb, &run, t);
    assert_eq!(pids.lines().count(), 3, "the agent started its three children: {pids}");
    assert_eq!(processes_with_token(&tok), Vec::<i32>::new(), "processes of the hung agent survived the trial");
}

#[test]
fn a_flooding_agent_stays_within_bounded_memory_and_capped_logs_in_the_sandbox() {
    let sb = Sandbox::new();
    let (code, stdout, rss_mb) = run_measuring_rss(fixbench(sb.path()).args([
        "run",
        "--problem",
        "expr_calc",
        "--isolation",
        "sandbox",
        "--json",
        "--cmd",
        &agent("flood.sh"),
    ]));
    assert_eq!(code, 0);
    let run: Value = serde_json::from_slice(&stdout).unwrap();
    let t = &trials(&run)[0];
    assert_eq!(t["isolation"], "sandbox");
    let cap = 10 * 1024 * 1024;
    assert_eq!(t["output"]["stdout_bytes"], cap);
    assert_eq!(t["output"]["stdout_dropped"].as_u64().unwrap(), 300_000_000 - cap);
    assert_eq!(t["output"]["stderr_bytes"], cap);
    assert!(rss_mb < 120, "peak RSS {rss_mb} MB: output is being held in memory");
}

#[test]
fn a_vandal_that_deletes_its_workdir_is_a_recorded_outcome_in_the_sandbox() {
    let sb = Sandbox::new();
    let run = run_json(fixbench(sb.path()).args([
        "run",
        "--problem",
        "expr_calc",
        "--isolation",
        "sandbox",
        "--cmd",
        &agent("vandal.sh"),
    ]));
    let t = &trials(&run)[0];
    assert_eq!(t["exit_code"], 7);
    let err = t["error"].as_str().unwrap();
    assert!(err.contains("exited with code 7") && err.contains("deleted its workdir"), "{err}");
    assert_eq!((t["passed"].as_u64(), t["errors"].as_u64()), (Some(0), Some(15)));
    assert_eq!(t["broken"].as_array().unwrap().len(), 11);
}

#[test]
fn an_agent_that_cannot_start_is_a_recorded_outcome_in_the_sandbox() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("harness.toml"), "[agents.typo]\ncommand = \"/nonexistent/agent {prompt}\"\n")
        .unwrap();
    let run = run_json(fixbench(sb.path()).args(["run", "--problem", "expr_calc", "--agent", "typo"]));
    let t = &trials(&run)[0];
    assert!(t["error"].as_str().unwrap().contains("cannot start `/nonexistent/agent`"), "{t}");
    assert_eq!(t["agent_started"], false);
    assert_eq!(t["passed"], 11);
}

#[test]
fn without_a_working_bubblewrap_the_run_stops_and_names_the_ways_out() {
    let sb = Sandbox::new();
    // No bwrap at all, and one that cannot make namespaces (as where user namespaces are off).
    let broken = sb.path().join("bwrap-no-userns");
    std::fs::write(&broken, "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&broken).status().unwrap();
    for (bwrap, why) in [
        (PathBuf::from("/nonexistent/bwrap"), "is not installed"),
        (broken, "No permissions to creating new namespace"),
    ] {
        let out = run_expect(
            fixbench(sb.path()).env("FIXBENCH_BWRAP", &bwrap).args([
                "run",
                "--agent",
                "null",
                "--problem",
                "expr_calc",
            ]),
            3,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why) && err.contains("--isolation none") && err.contains("scripts/setup.sh"), "{err}");
        assert!(!sb.results().exists(), "nothing ran, nothing is stored");
    }
    // Agents unisolated, grading still needs it, and says how to do without.
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_BWRAP", "/nonexistent/bwrap").args([
            "run",
            "--agent",
            "null",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
        ]),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start the grading sandbox") && err.contains("--grade-isolation none"), "{err}");
    assert!(!sb.results().exists(), "nothing ran, nothing is stored");
    // Asked for no isolation of either, it needs no bubblewrap.
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_BWRAP", "/nonexistent/bwrap").args([
            "run",
            "--agent",
            "null",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--grade-isolation",
            "none",
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trials(&run)[0]["isolation"], "none");
    assert_eq!(run["config"]["grade_isolation"], "none");
}

#[test]
fn harness_toml_adds_read_only_folders_but_never_the_answers() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path().join("tools")).unwrap();
    std::fs::write(sb.path().join("tools/data.txt"), "tool data\n").unwrap();
    let data = sb.path().join("tools/data.txt").to_string_lossy().into_owned();
    let cat = |toml: &str| {
        std::fs::write(sb.path().join("harness.toml"), toml).unwrap();
        // The path inside one word: a file the command names as a word of its own is shown.
        let run = run_json(fixbench(sb.path()).args([
            "run",
            "--problem",
            "expr_calc",
            "--cmd",
            &format!("bash -c 'cat {data}'"),
        ]));
        let t = trials(&run)[0].clone();
        (t["exit_code"].clone(), stdout_of(&sb, &run, &t))
    };
    assert_eq!(cat("[run]\nisolation = \"sandbox\"\n").0, 1, "tools/ is hidden unless listed");
    assert_eq!(cat("[sandbox]\nro = [\"tools\"]\n"), (Value::from(0), "tool data\n".to_string()));

    for (ro, says) in [("problems/expr_calc", "answers"), (".", "answers"), ("nope", "does not exist")] {
        std::fs::write(sb.path().join("harness.toml"), format!("[sandbox]\nro = [\"{ro}\"]\n")).unwrap();
        let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null"]), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("harness.toml") && err.contains("sandbox.ro") && err.contains(says), "{err}");
    }
}

#[test]
fn dry_run_shows_what_the_sandbox_mounts() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).env("FIXBENCH_BWRAP", "/nonexistent/bwrap").args([
            "run",
            "--problem",
            "expr_calc",
            "--dry-run",
            "--cmd",
            &agent("tamper.sh"),
        ]),
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("isolation: sandbox"), "{text}");
    assert!(text.contains(&format!("sandbox read-only: {}\n", repo().join("tests/agents").display())), "{text}");
    assert!(text.contains("sandbox read-write: <tmp>/fixbench-expr_calc__cmd__0/"), "{text}");
    assert!(!text.contains("problems"), "{text}");
}

/// pi (installed by scripts/install-agents.sh into `.agents/`, or `$FIXBENCH_AGENTS_DIR`) runs
/// by its preset inside the sandbox against a real llama-server: its node runtime and install
/// folder are found, it reaches the proxy on loopback, and it is graded.
#[test]
fn pi_runs_in_the_sandbox_against_the_real_server() {
    let agents = std::env::var_os("FIXBENCH_AGENTS_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".agents"));
    let pi = agents.join("bin/pi");
    assert!(pi.exists(), "{} not found: run scripts/install-agents.sh (or set FIXBENCH_AGENTS_DIR)", pi.display());
    let server = crate::llama::LlamaServer::start(&["-c", "8192"]);
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    let run = run_json(fixbench(sb.path()).env("FIXBENCH_AGENTS_DIR", &agents).env("HOME", home.path()).args([
        "run",
        "--agent",
        "pi",
        "--problem",
        "expr_calc",
        "--server",
        &server.url(),
        "--timeout",
        "60",
    ]));
    let t = &trials(&run)[0];
    assert_eq!(t["isolation"], "sandbox");
    let error = t["error"].as_str().unwrap_or("");
    assert!(!error.contains("not installed") && !error.contains("cannot start"), "{t:#}");
    assert_eq!(t["command"][0], pi.to_string_lossy().as_ref());
    assert_eq!(t["agent_version"], "0.73.1", "{t:#}");
    assert_eq!(t["total"], 15, "the trial is graded: {t:#}");
    let reqs = t["requests"].as_array().unwrap();
    assert!(!reqs.is_empty(), "pi reached the proxy from inside the sandbox: {t:#}\n{}", stdout_of(&sb, &run, t));
    for r in reqs {
        assert_eq!((r["path"].as_str(), r["status"].as_u64()), (Some("/v1/chat/completions"), Some(200)), "{r}");
    }
    // fixbench keeps its own cache there (model hashes); nothing else may appear.
    let left: Vec<_> = walkdir::WalkDir::new(home.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            !home.path().join(".cache/fixbench").starts_with(p) && !p.starts_with(home.path().join(".cache/fixbench"))
        })
        .collect();
    assert!(left.is_empty(), "pi wrote to the user's HOME: {left:?}");
}

/// The version probe is the agent's own code too: it runs in the same sandbox as the trials,
/// and unisolated only under `--isolation none`.
#[test]
fn the_version_probe_runs_in_the_sandbox() {
    let sb = Sandbox::outside_tmp();
    let target = sb.path().join("probe-was-here");
    let toml =
        format!("[agents.curious]\ncommand = \"true\"\nversion = \"{} {}\"\n", agent("trespass.sh"), target.display());
    std::fs::write(sb.path().join("harness.toml"), toml).unwrap();
    let version = |isolation: &str| {
        let run = run_json(fixbench(sb.path()).args([
            "run",
            "--agent",
            "curious",
            "--problem",
            "expr_calc",
            "--isolation",
            isolation,
        ]));
        trials(&run)[0]["agent_version"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(version("sandbox"), format!("refused {}", target.display()));
    assert!(!target.exists(), "the probe wrote outside its sandbox");
    assert_eq!(version("none"), format!("wrote {}", target.display()));
    assert!(target.exists());
}
