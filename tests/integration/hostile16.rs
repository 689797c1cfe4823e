//! Findings of two hostile tests of `--shard`/`--run-id`/`merge` (issue 16): the first pass's
//! tests failed on a028a5c, the second's (from `read_json` on) on 7828bd4; each passes once
//! its finding is fixed.

use std::path::{Path, PathBuf};

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

/// Every regular file under `dir` but the records and the lock, with its size.
fn logs(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let name = e.file_name().to_string_lossy();
            !name.ends_with(".json") && !name.starts_with('.')
        })
        .map(|e| (e.path().strip_prefix(dir).unwrap().to_path_buf(), e.metadata().unwrap().len()))
        .collect();
    out.sort();
    out
}

fn merge(sb: &Sandbox, args: &[&str]) {
    run_expect(fixbench(sb.path()).arg("merge").args(args).args(["--results", "results"]), 0);
}

/// A merge killed before it wrote its header (the state `kill -9` leaves: trial folders of
/// hard links, no run.json) and then run again must not empty the shards' logs: the second
/// run's `fs::copy` onto the hard link it made the first time truncates the shared inode.
#[test]
fn rerun_of_an_interrupted_merge_keeps_the_shards_logs() {
    let sb = Sandbox::new();
    two_shards(&sb);
    let before = logs(&sb.results().join("s1"));
    assert!(before.iter().any(|(_, len)| *len > 0), "the shard has logs to lose");
    merge(&sb, &["s1", "s2", "--run-id", "m"]);
    let m = sb.results().join("m");
    std::fs::remove_file(m.join("run.json")).unwrap();
    std::fs::remove_file(m.join("trials.json")).unwrap();
    merge(&sb, &["s1", "s2", "--run-id", "m"]);
    assert_eq!(logs(&sb.results().join("s1")), before, "the shard's logs were changed by the merge");
    let merged = logs(&m);
    assert!(merged.iter().any(|(_, len)| *len > 0), "the merged run's logs are all empty");
}

/// Merging an earlier merge with more shards under the earlier merge's own id: the old run
/// folder is removed before its trials' folders are copied from it.
#[test]
fn merging_a_merge_into_its_own_id_keeps_its_trials_files() {
    let sb = Sandbox::new();
    two_shards(&sb);
    merge(&sb, &["s1", "--partial", "--run-id", "m"]);
    let from_s1 = logs(&sb.results().join("m"));
    assert!(!from_s1.is_empty());
    merge(&sb, &["m", "s2", "--run-id", "m"]);
    let after = logs(&sb.results().join("m"));
    let lost: Vec<_> = from_s1.iter().filter(|f| !after.contains(f)).map(|(p, _)| p.display().to_string()).collect();
    assert!(lost.is_empty(), "lost by the re-merge: {lost:?}");
}

/// A shard artifact whose trial record points `paths.dir` at a symlink to a folder outside
/// the run must not pull that folder's files into the merged run (which CI then uploads).
#[test]
fn merge_does_not_follow_a_symlinked_trial_folder() {
    let sb = Sandbox::new();
    two_shards(&sb);
    let secret = sb.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("id_ed25519"), "KEY").unwrap();
    let s1 = sb.results().join("s1");
    std::os::unix::fs::symlink(&secret, s1.join("trials/evil")).unwrap();
    let path = s1.join("trials.json");
    let mut list: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    list[0]["paths"]["dir"] = "trials/evil".into();
    std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    let o = fixbench(sb.path()).args(["merge", "s1", "s2", "--run-id", "m", "--results", "results"]).output().unwrap();
    let copied =
        walkdir::WalkDir::new(sb.results().join("m")).into_iter().flatten().any(|e| e.file_name() == "id_ed25519");
    assert!(!copied, "merge copied a file from outside the shard (exit {:?})", o.status.code());
    assert_eq!(o.status.code(), Some(2), "refused as a tampered run: {}", String::from_utf8_lossy(&o.stderr));

    // A trial's own folder that is a link is refused too, and nothing of it copied.
    std::fs::write(
        &path,
        serde_json::to_vec(&{
            list[0]["paths"]["dir"] = format!("trials/{}", list[0]["id"].as_str().unwrap().replace('/', "__")).into();
            list.clone()
        })
        .unwrap(),
    )
    .unwrap();
    let own = s1.join(list[0]["paths"]["dir"].as_str().unwrap());
    std::fs::remove_dir_all(&own).unwrap();
    std::os::unix::fs::symlink(&secret, &own).unwrap();
    let o = fixbench(sb.path()).args(["merge", "s1", "s2", "--run-id", "m", "--results", "results"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is a link"), "{err}");
    assert!(!sb.results().join("m").exists(), "no merged run");
}

fn run_one(sb: &Sandbox, extra: &[&str]) {
    run_expect(
        fixbench(sb.path())
            .args(["run", "--agent", "null", "--problem", "expr_calc", "--isolation", "none", "--results", "results"])
            .args(extra),
        0,
    );
}

/// A run id `show` could never name (`latest-main` reads as `latest`) is refused up front,
/// before anything runs.
#[test]
fn a_run_id_starting_with_latest_is_refused() {
    let sb = Sandbox::new();
    let out = run_expect(
        fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none", "--run-id", "latest-main"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("names starting with `latest` are taken"));
    assert!(!sb.results().join("latest-main").exists());
}

/// A run named with `--run-id` must not stay `latest` once a newer run exists: `latest` goes
/// by the ids' sort order, which only the generated ids keep in time order.
#[test]
fn latest_is_the_newest_run_with_named_runs_about() {
    let sb = Sandbox::new();
    run_one(&sb, &["--run-id", "gh-100"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run_one(&sb, &[]);
    let o = run_expect(fixbench(sb.path()).args(["show", "latest", "--json", "--results", "results"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["run_id"].as_str().unwrap().starts_with("20"), "latest is {}, not the newest run", v["run_id"]);
}

// The second pass: the fixes of the first (merge built aside, trial folders checked,
// `latest` by start).

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
