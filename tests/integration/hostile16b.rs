//! Second hostile pass over the issue-16 fixes (merge built aside, trial folders checked,
//! `latest` by start). Each test fails on 7828bd4.

use std::path::Path;

use crate::util::*;

/// Two shards of null and oracle on expr_calc × 2 repeats, in `results/`, run ids `s1`, `s2`.
fn two_shards(sb: &Sandbox) {
    for k in 1..=2 {
        let (shard, id) = (format!("{k}/2"), format!("s{k}"));
        run_expect(
            fixbench(sb.path()).args([
                "run",
                "--agent",
                "null",
                "--agent",
                "oracle",
                "--problem",
                "expr_calc",
                "--repeat",
                "2",
                "--isolation",
                "none",
                "--shard",
                &shard,
                "--run-id",
                &id,
                "--results",
                "results",
            ]),
            0,
        );
    }
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A shard whose trial record keeps its `id` (so it is "in the plan") but names another
/// trial's problem/agent/repeat (so its `paths.dir` is that trial's own folder) makes two
/// trials share one folder of the merged run: the second copy's `hard_link` fails (EEXIST),
/// the `fs::copy` fallback truncates the first one's hard link, and the OTHER shard's files
/// are overwritten. The merge must refuse a record whose id is not its problem/agent/repeat.
#[test]
fn a_trial_whose_id_is_not_its_key_is_refused_and_no_source_is_written() {
    let sb = Sandbox::new();
    two_shards(&sb);
    let (s1, s2) = (sb.results().join("s1"), sb.results().join("s2"));
    let victim = s1.join("trials/expr_calc__null__0/junit.xml");
    let before = std::fs::read(&victim).unwrap();

    let path = s2.join("trials.json");
    let mut list = read_json(&path);
    let t = &mut list[0]; // expr_calc/oracle/1
    t["agent"] = "null".into();
    t["repeat"] = 0.into();
    let dir = "trials/expr_calc__null__0";
    t["paths"] = serde_json::json!({
        "dir": dir, "stdout": format!("{dir}/stdout.log"), "stderr": format!("{dir}/stderr.log"),
        "diff": format!("{dir}/diff.patch"), "junit": format!("{dir}/junit.xml"),
    });
    std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    std::fs::rename(s2.join("trials/expr_calc__oracle__1"), s2.join(dir)).unwrap();
    let planted = s2.join(dir).join("junit.xml");
    std::fs::write(&planted, "<testsuites>FROM S2</testsuites>").unwrap();

    let o = fixbench(sb.path()).args(["merge", "s1", "s2", "--run-id", "m", "--results", "results"]).output().unwrap();
    // Which of the two is copied second (and so written through) depends on the threads.
    assert_eq!(std::fs::read(&victim).unwrap(), before, "the merge wrote into shard s1's junit.xml");
    assert_eq!(
        std::fs::read(&planted).unwrap(),
        b"<testsuites>FROM S2</testsuites>",
        "the merge wrote into shard s2's junit.xml"
    );
    assert_eq!(o.status.code(), Some(2), "refused as tampered: {}", String::from_utf8_lossy(&o.stderr));
}

/// A merge whose last step (putting the new run in place) did not happen, after it moved the
/// old run of its id aside (killed between the two renames, or the rename failed: EIO on a
/// network filesystem), leaves `.replaced-<id>-<pid>` and no run `<id>`. The next merge, of
/// anything, deletes that folder: the only copy of the earlier merge is gone. It should be put
/// back (or at least kept).
#[test]
fn an_old_run_moved_aside_by_a_dead_merge_is_not_deleted() {
    let sb = Sandbox::new();
    two_shards(&sb);
    run_expect(fixbench(sb.path()).args(["merge", "s1", "s2", "--run-id", "m", "--results", "results"]), 0);
    // The state the merge leaves when it dies between `rename(m, .replaced-m-PID)` and
    // `rename(.merging-PID/m, m)`; PID is a process that no longer exists.
    let dead = 4_000_000u32; // above any pid_max
    std::fs::rename(sb.results().join("m"), sb.results().join(format!(".replaced-m-{dead}"))).unwrap();
    run_expect(fixbench(sb.path()).args(["merge", "s1", "--partial", "--run-id", "other", "--results", "results"]), 0);
    let kept = sb.results().join("m/run.json").is_file()
        || sb.results().join(format!(".replaced-m-{dead}/run.json")).is_file();
    assert!(kept, "the earlier merge `m` was deleted by an unrelated merge");
}

/// Folders whose names start with `.` are never runs (docs/results.md), but `merge FOLDER`
/// takes the runs under hidden folders: a dead merge's `.merging-<pid>/<id>`, a `.replaced-…`
/// old run, anything hidden.
#[test]
fn merge_of_a_folder_skips_hidden_folders() {
    let sb = Sandbox::new();
    two_shards(&sb);
    let hidden = sb.results().join(".merging-4000000");
    std::fs::create_dir_all(&hidden).unwrap();
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(sb.results().join("s1"))
        .arg(hidden.join("ghost"))
        .status()
        .unwrap();
    assert!(cp.success());
    let o =
        run_expect(fixbench(sb.path()).args(["merge", "results", "--run-id", "m", "--results", "merged", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> =
        v["merged"]["runs"].as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"ghost"), "a hidden folder's run was merged: {ids:?}");
}
