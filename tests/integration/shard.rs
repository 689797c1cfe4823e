//! `fixbench run --shard K/N`, `--run-id` and `fixbench merge`, driving the real binary with
//! real grading: shards of one plan are disjoint and cover it, a merged run reads like an
//! unsharded one in every report, a killed shard re-run by the same command continues, runs
//! of another plan or with conflicting records are refused, and a run folder copied
//! elsewhere still shows its files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::report::{redact, redact_csv};
use crate::util::*;

const PLAN: [&str; 7] = ["run", "--agent", "null", "--agent", "oracle", "--repeat", "2"];

fn ids(run: &Value) -> BTreeSet<String> {
    trials(run).iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
}

/// What a trial's grading decided, which must not depend on where or when it ran.
fn graded(run: &Value) -> Vec<(String, u64, u64, bool, Value, Value)> {
    let mut out: Vec<_> = trials(run)
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                u(&t["passed"]),
                u(&t["total"]),
                t["resolved"].as_bool().unwrap(),
                t["fixed"].clone(),
                t["broken"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn out(cwd: &Path, args: &[&str], code: i32) -> (String, String) {
    let o = run_expect(fixbench(cwd).args(args), code);
    (String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

/// Three shards of null and oracle on the problems × 2 repeats, each in a results folder of
/// its own (as on three machines), and one unsharded run of the same plan; made once.
struct Fleet {
    dir: PathBuf,
}

impl Fleet {
    fn shard(&self, k: u32) -> PathBuf {
        self.dir.join(format!("machine-{k}/results"))
    }
    fn shard_run(&self, k: u32) -> PathBuf {
        self.shard(k).join(format!("shard-{k}"))
    }
}

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let dir = process_dir("shard-fleet");
        std::fs::create_dir_all(&dir).unwrap();
        copy_dir(&repo().join("problems"), &dir.join("problems"));
        let fleet = Fleet { dir: dir.clone() };
        for k in 1..=3 {
            let results = fleet.shard(k).to_string_lossy().into_owned();
            let (shard, id) = (format!("{k}/3"), format!("shard-{k}"));
            out(
                &dir,
                &[&PLAN[..], &["--isolation", "none", "--shard", &shard, "--run-id", &id, "--results", &results]]
                    .concat(),
                0,
            );
        }
        out(&dir, &[&PLAN[..], &["--isolation", "none", "--run-id", "whole", "--results", "whole"]].concat(), 0);
        fleet
    })
}

#[test]
fn three_shards_merged_are_the_unsharded_run_in_every_report() {
    let f = fleet();
    let whole = read_run(&f.dir.join("whole/whole"));
    let plan: BTreeSet<String> =
        whole["plan"]["trials"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    assert_eq!(plan.len(), 12);
    assert_eq!(ids(&whole), plan);

    // Disjoint, covering, each recording the whole plan, the same configuration hash and its K/N.
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let run = read_run(&f.shard_run(k));
        assert_eq!(run["plan"]["shard"], serde_json::json!({"index": k, "count": 3}));
        assert_eq!(run["plan"]["trials"], whole["plan"]["trials"], "every shard records the whole plan");
        assert_eq!(run["plan"]["config_sha256"], whole["plan"]["config_sha256"]);
        for id in ids(&run) {
            assert!(seen.insert(id.clone()), "{id} ran in two shards");
        }
    }
    assert_eq!(seen, plan, "the shards cover the plan");

    // Merged from the copied results folders (a folder of runs, a run folder), into the store.
    let (_, err) = out(
        &f.dir,
        &[
            "merge",
            &f.shard(1).to_string_lossy(),
            &f.shard_run(2).to_string_lossy(),
            &f.shard(3).to_string_lossy(),
            "--run-id",
            "merged",
            "--results",
            "whole",
        ],
        0,
    );
    assert!(err.contains("merged 3 run(s): 12 trial(s) of 12, 0 duplicate(s) taken once, 0 missing"), "{err}");
    let merged = read_run(&f.dir.join("whole/merged"));
    assert_eq!(graded(&merged), graded(&whole), "the same trials, graded the same");
    assert_eq!(merged["status"], "finished");
    assert_eq!(merged["plan"]["config_sha256"], whole["plan"]["config_sha256"]);
    assert!(merged["plan"].get("shard").is_none(), "a merge is the whole plan");
    let from: Vec<(&str, u64)> = merged["merged"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_id"].as_str().unwrap(), u(&r["trials"])))
        .collect();
    let per_shard: Vec<u64> = (1..=3).map(|k| trials(&read_run(&f.shard_run(k))).len() as u64).collect();
    assert_eq!(from, [("shard-1", per_shard[0]), ("shard-2", per_shard[1]), ("shard-3", per_shard[2])]);
    for t in trials(&merged) {
        assert!(t["host"].is_string(), "each trial keeps its host: {t}");
        let dir = f.dir.join("whole/merged").join(t["paths"]["dir"].as_str().unwrap());
        for file in ["stdout", "stderr", "diff", "junit"] {
            let p = f.dir.join("whole/merged").join(t["paths"][file].as_str().unwrap());
            assert!(p.is_file(), "{} copied into the merged run", p.display());
        }
        assert!(dir.join("trial.json").is_file());
    }

    // Every report reads it as it reads the unsharded run.
    let csv = |run: &str| redact_csv(&out(&f.dir, &["compare", run, "--results", "whole", "--format", "csv"], 0).0);
    assert_eq!(csv("merged"), csv("whole"), "the same compare table");
    let table = |run: &str| redact(&out(&f.dir, &["compare", run, "--results", "whole"], 0).0).replace(run, "[RUN]");
    assert_eq!(table("merged"), table("whole"));
    // Exit 0: the merged run holds up against the unsharded one.
    out(&f.dir, &["gate", "--baseline", "whole", "merged", "--results", "whole"], 0);
    let (show, _) = out(&f.dir, &["show", "merged", "--results", "whole"], 0);
    assert!(show.contains("merged from 3 run(s)") && show.contains("shard 2/3 shard-2"), "{show}");
    let junit = f.dir.join("merged.xml");
    out(&f.dir, &["junit", "merged", "--results", "whole", "-o", &junit.to_string_lossy()], 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), xml_cases(&f.dir, "whole"), "{xml}");
    out(&f.dir, &["doctor", "merged", "--results", "whole"], 0);
    // A shard alone does not pass the gate: it is part of what its plan measures.
    copy_dir(&f.shard_run(1), &f.dir.join("whole/shard-1"));
    let (_, err) = out(&f.dir, &["gate", "--baseline", "whole", "shard-1", "--results", "whole"], 5);
    assert!(err.contains("the run is shard 1/3 of its plan: gate the merged run"), "{err}");
    std::fs::remove_dir_all(f.dir.join("whole/shard-1")).unwrap();
    let png = f.dir.join("merged.png");
    out(&f.dir, &["plot", "merged", "whole", "--results", "whole", "--kind", "bars", "-o", &png.to_string_lossy()], 0);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
}

fn xml_cases(dir: &Path, run: &str) -> usize {
    let file = dir.join(format!("{run}.xml"));
    out(dir, &["junit", run, "--results", "whole", "-o", &file.to_string_lossy()], 0);
    std::fs::read_to_string(&file).unwrap().matches("<testcase").count()
}

#[test]
fn merging_refuses_other_plans_and_conflicting_records_and_names_what_is_missing() {
    let f = fleet();
    let tmp = tempfile::tempdir().unwrap();
    let s = |k: u32| f.shard_run(k).to_string_lossy().into_owned();
    let results = tmp.path().join("results").to_string_lossy().into_owned();

    // A shard of another plan (a shorter time limit) is named with the first difference.
    let other = tmp.path().join("other");
    out(
        &f.dir,
        &[
            &PLAN[..],
            &[
                "--isolation",
                "none",
                "--shard",
                "3/3",
                "--timeout",
                "300",
                "--run-id",
                "other",
                "--results",
                &other.to_string_lossy(),
            ],
        ]
        .concat(),
        0,
    );
    let (_, err) =
        out(&f.dir, &["merge", &s(1), &s(2), &other.join("other").to_string_lossy(), "--results", &results], 2);
    assert!(err.contains("planned differently") && err.contains("timeout_s") && err.contains("run other"), "{err}");

    // The same shard twice (an artifact downloaded twice) is taken once.
    let copy = tmp.path().join("copy");
    copy_dir(&f.shard_run(2), &copy.join("shard-2"));
    let (_, err) = out(&f.dir, &["merge", &s(1), &s(2), &copy.to_string_lossy(), &s(3), "--results", &results], 0);
    let dups = trials(&read_run(&f.shard_run(2))).len();
    assert!(err.contains(&format!("12 trial(s) of 12, {dups} duplicate(s) taken once")), "{err}");

    // One trial with two different records is refused, naming it and both runs.
    let trial = trials(&read_run(&f.shard_run(2)))[0]["id"].as_str().unwrap().to_string();
    let file = copy.join("shard-2").join(format!("trials/{}/trial.json", trial.replace('/', "__")));
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    t["passed"] = (u(&t["passed"]) + 1).into();
    std::fs::write(&file, t.to_string()).unwrap();
    std::fs::remove_file(copy.join("shard-2/trials.json")).unwrap();
    let (_, err) = out(&f.dir, &["merge", &s(1), &s(2), &copy.to_string_lossy(), &s(3), "--results", &results], 2);
    assert!(err.contains(&format!("trial {trial} has two different results")) && err.contains("shard 2/3"), "{err}");

    // A shard missing: its trials are named, nothing is written, unless --partial.
    let before = std::fs::read_dir(&results).unwrap().count();
    let (_, err) = out(&f.dir, &["merge", &s(1), &s(3), "--results", &results], 2);
    let missing: Vec<String> = ids(&read_run(&f.shard_run(2))).into_iter().collect();
    assert!(err.contains(&format!("{} of the plan's 12 trials are in none of the 2 run(s)", missing.len())), "{err}");
    assert!(err.contains(&missing[0]) && err.contains("--partial"), "{err}");
    assert_eq!(std::fs::read_dir(&results).unwrap().count(), before, "nothing written");
    let (_, err) = out(&f.dir, &["merge", &s(1), &s(3), "--partial", "--run-id", "part", "--results", &results], 0);
    assert!(err.contains(&format!("{} missing", missing.len())), "{err}");
    let part = read_run(&tmp.path().join("results/part"));
    let listed: Vec<String> =
        part["merged"]["missing"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    assert_eq!(listed, missing);
    // A partial merge reads as incomplete: the gate fails it unless told.
    let (_, err) = out(&f.dir, &["gate", "--baseline", "part", "part", "--results", &results], 5);
    assert!(err.contains("incomplete") && err.contains(&format!("{} of 12 trials", 12 - missing.len())), "{err}");
    assert!(err.contains("run its missing shards"), "a merge is remade, not resumed: {err}");
    let (show, _) = out(&f.dir, &["show", "part", "--results", &results], 0);
    assert!(show.contains(&format!("INCOMPLETE (finished, {} of 12 trials)", 12 - missing.len())), "{show}");
    let (_, err) = out(&f.dir, &["run", "--resume", "part", "--results", &results], 2);
    assert!(err.contains("made by `fixbench merge`"), "{err}");
    // CI sees the lost trials: each an errored case in the JUnit report.
    let xml = tmp.path().join("part.xml");
    out(&f.dir, &["junit", "part", "--results", &results, "-o", &xml.to_string_lossy()], 0);
    let xml = std::fs::read_to_string(&xml).unwrap();
    for id in &missing {
        assert!(xml.contains(&format!("<testsuite name=\"{id}\"")), "{id} in {xml}");
    }
    assert_eq!(xml.matches("type=\"missing\"").count(), missing.len());
    // The same merge again under its id replaces it; a non-merge of that name is never touched.
    out(&f.dir, &["merge", &s(1), &s(3), "--partial", "--run-id", "part", "--results", &results], 0);
    let (_, err) = out(
        &f.dir,
        &["merge", &s(1), &s(2), &s(3), "--run-id", "shard-1", "--results", &f.shard(1).to_string_lossy()],
        2,
    );
    assert!(err.contains("is not a merge of this plan"), "{err}");
    let (_, err) = out(&f.dir, &["merge", "no-such-run", "--results", &results], 2);
    assert!(err.contains("neither a run folder nor a run of"), "{err}");
}

/// A pod replaced after a crash runs the same command: the shard's finished trials stay as
/// they were, and only the rest run.
#[test]
fn a_killed_shard_rerun_by_the_same_command_continues_where_it_stopped() {
    let sb = Sandbox::new();
    let agent = repo().join("tests/agents/slow_fixer.sh").to_string_lossy().into_owned();
    // The pod's command: expr_calc × `repeat`, then `rest` (its shard, its id).
    let pod = |repeat: &str, rest: &[&str]| -> Vec<String> {
        let base = ["run", "--problem", "expr_calc", "--repeat", repeat, "--isolation", "none", "--cmd", &agent];
        base.iter().chain(rest).map(|s| s.to_string()).collect()
    };
    let command = pod("6", &["--shard", "2/2", "--run-id", "pod-2"]);
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut child = fixbench(sb.path())
        .env("FIXBENCH_TEST_SLEEP", "1")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = sb.results().join("pod-2");
    let deadline = Instant::now() + Duration::from_secs(120);
    while trial_files(&run_dir).is_empty() {
        assert!(Instant::now() < deadline, "no trial finished in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = read_run(&run_dir);
    assert_eq!(killed["status"], "running", "killed outright");
    assert_eq!(killed["plan"]["trials"].as_array().unwrap().len(), 6, "the whole plan is recorded");
    let done: Vec<Value> = trials(&killed).clone();
    assert!(done.len() < 3, "killed before its slice was done: {} trials", done.len());

    let (_, err) = out(sb.path(), &args, 0);
    assert!(!err.contains("error"), "{err}");
    let after = read_run(&run_dir);
    assert_eq!(after["status"], "finished");
    for t in &done {
        let same = trials(&after).iter().find(|a| a["id"] == t["id"]).expect("kept");
        assert_eq!(same, t, "a finished trial is never run again");
    }
    // Exactly its slice, which the other slice complements.
    let slice = |k: &str| -> BTreeSet<String> {
        let dry = pod("6", &["--shard", k, "--dry-run"]);
        let (text, _) = out(sb.path(), &dry.iter().map(String::as_str).collect::<Vec<_>>(), 0);
        text.lines().filter_map(|l| l.strip_prefix("# trial ")).map(String::from).collect()
    };
    let (mine, theirs) = (slice("2/2"), slice("1/2"));
    assert_eq!(ids(&after), mine);
    assert!(mine.is_disjoint(&theirs) && mine.len() + theirs.len() == 6, "{mine:?} {theirs:?}");
    // A finished shard run again does nothing.
    let (_, err) = out(sb.path(), &args, 0);
    assert!(err.contains("nothing to resume"), "{err}");
    assert_eq!(read_run(&run_dir), after);

    // The same id with another plan or shard is refused, naming what differs.
    let refused = |command: Vec<String>| out(sb.path(), &command.iter().map(String::as_str).collect::<Vec<_>>(), 2).1;
    let err = refused(pod("5", &["--shard", "2/2", "--run-id", "pod-2"]));
    assert!(err.contains("`repeat` is 6 in the stored run and 5 in these flags"), "{err}");
    let err = refused(pod("6", &["--shard", "1/2", "--run-id", "pod-2"]));
    assert!(err.contains("that run ran shard 2/2, these flags ask for shard 1/2"), "{err}");
    let err = refused(pod("6", &["--shard", "2/2", "--run-id", "pod-2", "--label", "gpu=a100"]));
    assert!(err.contains("the stored run's labels are none, these flags' are gpu=a100"), "{err}");
    let (_, err) = out(sb.path(), &["run", "--resume", "pod-2", "--shard", "1/2"], 2);
    assert!(err.contains("--shard"), "{err}");
}

#[test]
fn bad_shards_and_run_ids_are_refused_with_the_fix() {
    let sb = Sandbox::new();
    for (flag, want) in [
        (["--shard", "0/3"], "K counts from 1 to N"),
        (["--shard", "4/3"], "K counts from 1 to N"),
        (["--shard", "3"], "write K/N"),
        (["--run-id", "../up"], "a run id is a folder name"),
        (["--run-id", "-x"], "a run id is a folder name"),
        (["--run-id", "baselines"], "are taken"),
        (["--run-id", "sweeps"], "are taken"),
        (["--run-id", "latest-main"], "names starting with `latest` are taken"),
    ] {
        let (_, err) = out(sb.path(), &[&["run", "--agent", "null", "--isolation", "none"][..], &flag].concat(), 2);
        assert!(err.contains(want), "{flag:?}: {err}");
    }
}

/// A run folder moved to another machine's results folder shows its logs, diff and JUnit:
/// nothing in it names the folder it was made in.
#[test]
fn a_run_folder_copied_elsewhere_still_shows_its_files() {
    let sb = Sandbox::new();
    out(
        sb.path(),
        &["run", "--agent", "oracle", "--problem", "expr_calc", "--isolation", "none", "--run-id", "travels"],
        0,
    );
    let made = sb.results().join("travels");
    let there = tempfile::tempdir().unwrap();
    let moved = there.path().join("results/travels");
    copy_dir(&made, &moved);
    std::fs::remove_dir_all(sb.results()).unwrap();
    let old = std::fs::canonicalize(sb.path()).unwrap().to_string_lossy().into_owned();
    for e in walkdir::WalkDir::new(&moved) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
            // Only the problems' folder (where they were read from, outside the run) may be named.
            let leaks: Vec<&str> =
                text.lines().filter(|l| l.contains(&old) && !l.contains(&format!("{old}/problems"))).collect();
            assert!(leaks.is_empty(), "{} names the folder it was made in: {leaks:?}", e.path().display());
        }
    }
    let results = there.path().join("results").to_string_lossy().into_owned();
    let (show, _) = out(there.path(), &["show", "travels", "--results", &results], 0);
    let logs = show.lines().find(|l| l.trim_start().starts_with("logs:")).expect(&show);
    let diff = show.lines().find(|l| l.trim_start().starts_with("diff:")).expect(&show);
    for path in logs.split_whitespace().skip(1).chain(diff.split_whitespace().filter(|w| w.starts_with('/'))) {
        assert!(Path::new(path).is_file() && path.starts_with(&*there.path().to_string_lossy()), "{path} in {show}");
    }
    // Renamed there, it is what its folder is called.
    std::fs::rename(&moved, there.path().join("results/renamed")).unwrap();
    let (show, _) = out(there.path(), &["show", "renamed", "--results", &results], 0);
    assert!(show.starts_with("run renamed "), "{show}");
    let logs = show.lines().find(|l| l.trim_start().starts_with("logs:")).expect(&show);
    assert!(logs.split_whitespace().skip(1).all(|p| Path::new(p).is_file()), "{logs}");
    let xml = there.path().join("j.xml");
    out(there.path(), &["junit", "renamed", "--results", &results, "-o", &xml.to_string_lossy()], 0);
    assert!(std::fs::read_to_string(&xml).unwrap().contains("expr_calc"));
    out(there.path(), &["doctor", "renamed", "--results", &results], 0);
}

/// Two machines, each with its own llama-server, each running one shard: the merged run keeps
/// each trial's server figures and each shard's `/metrics` deltas apart, never summed; a shard
/// run against a server with another context size is another plan.
#[test]
fn shards_on_two_real_servers_keep_each_servers_counters_apart() {
    use crate::llama::{multiturn_cmd, LlamaServer};
    let (a, b) = (LlamaServer::start(&["-c", "4096"]), LlamaServer::start(&["-c", "4096"]));
    let sb = Sandbox::new();
    let agent = multiturn_cmd("--turns 2 --max-tokens 4");
    let shard = |k: &str, server: &LlamaServer, results: &str| -> Value {
        let args = ["run", "--isolation", "none", "--repeat", "2", "--cmd", &agent, "--server", &server.url()];
        let o = run_expect(fixbench(sb.path()).args(args).args(["--shard", k, "--results", results, "--json"]), 0);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let one = shard("1/2", &a, "m1");
    let two = shard("2/2", &b, "m2");
    assert_eq!(trials(&one).len() + trials(&two).len(), 6);
    let fingerprint = &one["plan"]["decides"]["server"];
    assert!(fingerprint["model"]["sha256"].as_str().is_some_and(|s| s.len() == 64), "{fingerprint}");
    assert_eq!(fingerprint["n_ctx_per_slot"], 4096);
    assert_eq!(one["plan"]["config_sha256"], two["plan"]["config_sha256"], "the URL is no part of the plan");

    let o = run_expect(fixbench(sb.path()).args(["merge", "m1", "m2", "--json", "--results", "merged"]), 0);
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    let servers = merged["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "one per shard's server: {servers:#?}");
    for (s, run) in servers.iter().zip([&one, &two]) {
        let own = &run["servers"][0];
        assert_eq!(s["url"], own["url"]);
        assert_eq!(s["metrics"], own["metrics"], "each shard's counters as they were");
        assert!(s["metrics"]["prompt_tokens"].as_f64().unwrap() > 0.0);
        assert!(s["host"].is_string());
    }
    for t in trials(&merged) {
        let from = [&one, &two].into_iter().flat_map(trials).find(|x| x["id"] == t["id"]).unwrap();
        for field in ["server", "requests", "timing", "server_url", "wall_s", "started_at"] {
            assert_eq!(t[field], from[field], "{field} of {} kept", t["id"]);
        }
    }

    // The same shard against a server with half the context is another plan.
    let c = LlamaServer::start(&["-c", "2048"]);
    shard("2/2", &c, "m3");
    let o = run_expect(fixbench(sb.path()).args(["merge", "m1", "m3", "--results", "merged"]), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`server.n_ctx_per_slot` is 4096 in run") && err.contains("and 2048 in run"), "{err}");
}
