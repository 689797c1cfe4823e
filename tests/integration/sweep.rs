//! `fixbench sweep` with the real llama-server and SmolLM2: every configuration runs the
//! suite, a broken configuration is reported and skipped, and no server outlives fixbench.

use std::path::Path;

use serde_json::Value;

use crate::llama;
use crate::util::*;

/// A symlink to the model under a name unique to this test, so the test can tell its own
/// servers from any other test's by their command line.
fn unique_model(dir: &Path) -> String {
    let link = dir.join(format!("smollm2-sweep-{}.gguf", std::process::id()));
    std::os::unix::fs::symlink(llama::model(), &link).unwrap();
    link.to_string_lossy().into_owned()
}

fn servers_running(model: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(model))
                .unwrap_or(false)
        })
        .collect()
}

fn multiturn_cmd() -> String {
    format!("python3 {} --turns 2 --max-tokens 4", repo().join("tests/agents/multiturn.py").display())
}

fn write_sweep(dir: &Path, model: &str, servers: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (label, args) in servers {
        text.push_str(&format!(
            "[[server]]\nlabel = \"{label}\"\nbinary = \"{}\"\nmodel = \"{model}\"\nargs = [{args}]\n\n",
            llama::server_binary().display()
        ));
    }
    let p = dir.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn two_configurations_both_run_with_telemetry_and_labels() {
    let sb = Sandbox::new();
    let model = unique_model(sb.path());
    let file = write_sweep(
        sb.path(),
        &model,
        &[
            ("one-slot", r#""-np", "1", "-c", "2048", "-t", "2""#),
            ("two-slots", r#""-np", "2", "-c", "4096", "-t", "2""#),
        ],
    );
    let out = run_expect(
        fixbench(sb.path()).arg("sweep").arg(&file).args([
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
            "--cmd",
            &multiturn_cmd(),
        ]),
        0,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, label) in runs.iter().zip(["one-slot", "two-slots"]) {
        assert_eq!(run["labels"]["server"], label);
        assert_eq!(run["server"]["label"], label);
        let flags = run["server"]["flags"].as_array().unwrap();
        assert!(flags.iter().any(|f| f == "-np"), "the server's flags are part of the record");
        assert!(!flags.iter().any(|f| f == "--host" || f == "--port"), "the address changes every start: {flags:?}");
        assert_eq!(flags.last().unwrap(), "--metrics", "{flags:?}");
        for t in run["trials"].as_array().unwrap() {
            assert_eq!(t["server_label"], label);
            let server = &t["server"];
            assert!(server["prompt_tokens"].as_f64().unwrap() + server["cached_tokens"].as_f64().unwrap() > 0.0, "{t}");
            assert_eq!(t["requests"].as_array().unwrap().len(), 2, "two turns through the proxy");
            assert_eq!(t["telemetry_missing"].as_array().unwrap().len(), 0, "{t}");
        }
        let log = sb.results().join(run["run_id"].as_str().unwrap()).join("server.log");
        assert!(std::fs::metadata(&log).unwrap().len() > 0, "the server's log is kept with its run");
    }
    assert!(servers_running(&model).is_empty(), "a llama-server outlived the sweep");

    // The comparison is grouped by server configuration.
    let out = run_expect(
        fixbench(sb.path()).arg("sweep").arg(&file).args([
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--agent",
            "null",
        ]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("one-slot") && table.contains("two-slots") && table.contains("finished"), "{table}");
    assert!(servers_running(&model).is_empty());
}

#[test]
fn a_configuration_with_a_bad_flag_is_reported_and_skipped() {
    let sb = Sandbox::new();
    let model = unique_model(sb.path());
    let file = write_sweep(
        sb.path(),
        &model,
        &[("broken", r#""--no-such-flag""#), ("ok", r#""-np", "1", "-c", "2048", "-t", "2""#)],
    );
    let out = run_expect(
        fixbench(sb.path()).arg("sweep").arg(&file).args([
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--agent",
            "null",
            "--health-timeout",
            "60",
        ]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("broken")
            && table.contains("failed: llama-server exited with code 1 during start-up (its log says why)"),
        "{table}"
    );
    assert!(table.contains("ok") && table.contains("finished"), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-flag"), "the log tail says why: {stderr}");
    let sweeps: Vec<_> = std::fs::read_dir(sb.results().join("sweeps")).unwrap().collect();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(sweeps[0].as_ref().unwrap().path()).unwrap()).unwrap();
    assert_eq!(record["configs"][0]["status"], "failed");
    assert!(record["configs"][0]["log_tail"].as_str().unwrap().contains("no-such-flag"));
    assert_eq!(record["configs"][1]["status"], "finished");
    assert!(servers_running(&model).is_empty());
}

#[test]
fn ctrl_c_stops_the_server_and_resume_finishes_the_sweep() {
    let sb = Sandbox::new();
    let model = unique_model(sb.path());
    let file = write_sweep(
        sb.path(),
        &model,
        &[("a", r#""-np", "1", "-c", "2048", "-t", "2""#), ("b", r#""-np", "1", "-c", "2048", "-t", "2""#)],
    );
    let slow = format!("{} && sleep 6", multiturn_cmd());
    let child = fixbench(sb.path())
        .arg("sweep")
        .arg(&file)
        .args(["--problem", "expr_calc", "--isolation", "none", "--cmd", &format!("bash -c '{slow}'")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the first server is up and its run (and agent) has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let run_started = || {
        std::fs::read_dir(sb.results())
            .map(|d| d.flatten().any(|e| e.path().join("run.json").is_file()))
            .unwrap_or(false)
    };
    while !run_started() {
        assert!(std::time::Instant::now() < deadline, "the sweep never started a run");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!servers_running(&model).is_empty());
    std::thread::sleep(std::time::Duration::from_secs(2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(servers_running(&model).is_empty(), "Ctrl-C left a llama-server running");

    let sweep_id = std::fs::read_dir(sb.results().join("sweeps")).unwrap().next().unwrap().unwrap().path();
    let sweep_id = sweep_id.file_stem().unwrap().to_string_lossy().into_owned();
    let out = run_expect(
        fixbench(sb.path()).arg("sweep").arg(&file).args(["--resume", &sweep_id, "--json", "--health-timeout", "120"]),
        0,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["status"], "finished");
        assert_eq!(run["trials"].as_array().unwrap().len(), 1, "one trial per configuration, none duplicated");
    }
    assert!(servers_running(&model).is_empty());
}

/// The sweep's record goes to the store its runs go to: harness.toml's `run.results` when no
/// `--results` is given.
#[test]
fn the_sweep_record_goes_to_harness_tomls_results() {
    let sb = Sandbox::new();
    let model = unique_model(sb.path());
    std::fs::write(sb.path().join("harness.toml"), "[run]\nresults = \"store\"\n").unwrap();
    let file = write_sweep(sb.path(), &model, &[("broken", r#""--no-such-flag""#)]);
    let out = fixbench(sb.path())
        .arg("sweep")
        .arg(&file)
        .args(["--problem", "expr_calc", "--isolation", "none", "--agent", "null"])
        .output()
        .unwrap();
    let sweeps: Vec<_> = std::fs::read_dir(sb.path().join("store/sweeps"))
        .unwrap_or_else(|e| panic!("no store/sweeps ({e}): {}", String::from_utf8_lossy(&out.stderr)))
        .collect();
    assert_eq!(sweeps.len(), 1);
    assert!(!sb.results().exists(), "nothing in ./results");
    assert!(servers_running(&model).is_empty());
}

/// What a run of the shipped sweeps/overlap.toml found for one configuration.
struct Overlap {
    label: String,
    /// Per trial: each request's (turn, reprefilled_tokens, prompt_n + cache_n), in turn order.
    turns: Vec<Vec<(u64, u64, u64)>>,
    /// Per trial: when its first request started and its last one ended (ms since the epoch).
    span: Vec<(f64, f64)>,
}

/// Runs the shipped sweeps/overlap.toml with this test's binary and model, two trials at once
/// of the scripted agent; returns the sweep's table and each configuration's findings.
fn overlap_runs(sb: &Sandbox, model: &str) -> (String, Vec<Overlap>) {
    let shipped = std::fs::read_to_string(repo().join("sweeps/overlap.toml")).unwrap();
    let mut file: toml::Table = toml::from_str(&shipped).unwrap();
    let servers = file.get_mut("server").and_then(|s| s.as_array_mut()).unwrap();
    assert_eq!(servers.len(), 3, "{shipped}");
    for s in servers.iter_mut() {
        let s = s.as_table_mut().unwrap();
        s.insert("binary".into(), llama::server_binary().to_string_lossy().into_owned().into());
        s.insert("model".into(), model.into());
        // One thread: on a busy 2-core machine two spinning threads slow llama-server to a crawl.
        let args = s.get_mut("args").and_then(|a| a.as_array_mut()).unwrap();
        args.extend(["-t".into(), "1".into()]);
    }
    let path = sb.path().join("overlap.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    let agent = format!("python3 {} --max-tokens 4", repo().join("agents/scripted-multiturn.py").display());
    let out = run_expect(
        fixbench(sb.path()).arg("sweep").arg(&path).args([
            "--jobs",
            "2",
            "--problem",
            "expr_calc",
            "--repeat",
            "2",
            "--isolation",
            "none",
            "--timeout",
            "300",
            "--cmd",
            &agent,
        ]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let sweeps: Vec<_> = std::fs::read_dir(sb.results().join("sweeps")).unwrap().collect();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(sweeps[0].as_ref().unwrap().path()).unwrap()).unwrap();
    let runs = record["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "finished", "{c}\n{table}");
            let run = read_run(&sb.results().join(c["run_id"].as_str().unwrap()));
            let trials = run["trials"].as_array().unwrap();
            assert_eq!(trials.len(), 2, "{run:#}");
            let mut o = Overlap { label: c["label"].as_str().unwrap().into(), turns: vec![], span: vec![] };
            for t in trials {
                assert_eq!(t["exit_code"], 0, "the agent's requests all succeeded: {t:#}");
                let requests = t["requests"].as_array().unwrap();
                assert_eq!(requests.len(), 4, "four turns through the proxy: {t:#}");
                let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or_else(|| panic!("no {k} in {r}"));
                let mut turns: Vec<_> = requests
                    .iter()
                    .map(|r| {
                        assert_eq!(r["conversation"], 0, "one conversation per trial: {r}");
                        (
                            n(r, "turn"),
                            r["reprefilled_tokens"].as_u64().unwrap_or(0),
                            n(r, "prompt_n") + n(r, "cache_n"),
                        )
                    })
                    .collect();
                turns.sort();
                assert_eq!(turns.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
                let ms = |r: &Value| {
                    chrono::DateTime::parse_from_rfc3339(r["start"].as_str().unwrap()).unwrap().timestamp_millis()
                        as f64
                };
                let first = requests.iter().map(ms).fold(f64::INFINITY, f64::min);
                let last = requests.iter().map(|r| ms(r) + r["total_ms"].as_f64().unwrap()).fold(0.0, f64::max);
                o.turns.push(turns);
                o.span.push((first, last));
            }
            o
        })
        .collect();
    (table, runs)
}

/// Issue 15's story for real: two 4-turn conversations at once (`--jobs 2`) on one slot with no
/// host-memory cache re-prefill every follow-up turn; a slot each, or the host-memory prompt
/// cache of llama-server's default, keeps them. The sweep's table shows the re-prefilled sum.
#[test]
fn two_trials_at_once_evict_each_other_only_from_one_slot_without_the_ram_cache() {
    let sb = Sandbox::new();
    let model = unique_model(sb.path());
    let (table, runs) = overlap_runs(&sb, &model);
    assert!(servers_running(&model).is_empty(), "a llama-server outlived the sweep");
    assert!(table.contains("re-prefilled"), "{table}");
    let labels: Vec<_> = runs.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["one-slot-no-ram-cache", "two-slots-no-ram-cache", "one-slot-ram-cache"]);
    for o in &runs {
        let follow_ups: Vec<Vec<u64>> = o.turns.iter().map(|t| t[1..].iter().map(|x| x.1).collect()).collect();
        eprintln!("{}: re-prefilled on turns 2-4 {follow_ups:?}; prompts {:?}", o.label, o.turns);
        let (a, b) = (o.span[0], o.span[1]);
        assert!(a.0 < b.1 && b.0 < a.1, "{}: the two trials' requests did not overlap in time: {a:?} {b:?}", o.label);
        for trial in &o.turns {
            let again: u64 = trial[1..].iter().map(|t| t.1).sum();
            if o.label == "one-slot-no-ram-cache" {
                // Each turn found the other conversation in the only slot.
                let prompts: u64 = trial[1..].iter().map(|t| t.2).sum();
                assert!(again > 300 && 2 * again > prompts, "{}: {trial:?}\n{table}", o.label);
            } else {
                for t in &trial[1..] {
                    assert!(
                        t.1 < 50 && t.1 * 10 < t.2,
                        "{}: turn {} re-prefilled {}: {trial:?}\n{table}",
                        o.label,
                        t.0 + 1,
                        t.1
                    );
                }
            }
        }
    }
    eprintln!("{table}");
    // The table's column is the sum of the trials' re-prefilled tokens.
    for o in &runs {
        let sum: u64 = o.turns.iter().flatten().map(|t| t.1).sum();
        let row = table.lines().find(|l| l.contains(&o.label)).unwrap_or_else(|| panic!("{table}"));
        assert!(row.split(['|', '│']).any(|cell| cell.trim() == sum.to_string()), "{}: {sum} in {row}", o.label);
    }
}
