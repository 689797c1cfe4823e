//! The scale-out recipes (`examples/scale-out/`, shown verbatim in docs/scale-out.md): each YAML
//! parsed with a real parser, and the shell each runs run the way its engine runs it, with the
//! variables the engine sets: a GitHub Actions matrix (steps, expressions, artifacts), a
//! Kubernetes Indexed Job (its pods' command, env and shared volume) and a Slurm job array
//! (`sbatch`, its directives and array variables). Each one's shards are merged and must hold the
//! plan's trials exactly once, with the outcomes of one unsharded run of the same plan.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use yaml_rust2::{Yaml, YamlLoader};

use crate::util::{self, fixbench, run_expect};

/// The plan every recipe runs: 3 problems × 2 agents (null, oracle) × 2 repeats.
const PLAN: usize = 3 * 2 * 2;

fn recipe(name: &str) -> (PathBuf, String) {
    let path = util::repo().join("examples/scale-out").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

fn yaml(name: &str) -> Vec<Yaml> {
    let (_, text) = recipe(name);
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("examples/scale-out/{name} is not YAML: {e}"))
}

/// A checkout of a suite: its harness.toml's `[run]` names the problems, the agents, the repeats
/// and the grading Python, as a team's repository would.
fn suite(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let toml = format!(
        "[run]\nproblems_dir = {:?}\nagents = [\"null\", \"oracle\"]\nrepeat = 2\npython = {:?}\n",
        util::repo().join("problems").display().to_string(),
        util::python().display().to_string(),
    );
    std::fs::write(dir.join("harness.toml"), toml).unwrap();
}

/// The folder of the fixbench under test, which stands in for what each engine's setup puts on
/// PATH (`scripts/setup.sh`, the image, the cluster's install).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fixbench")).parent().unwrap().to_path_buf()
}

/// The machine's PATH without any folder holding another `fixbench`, so only the one the recipe
/// sets up can be found.
fn system_path() -> String {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    path.split(':').filter(|d| !d.is_empty() && !Path::new(d).join("fixbench").exists()).collect::<Vec<_>>().join(":")
}

/// A command with only the given environment (what the engine passes), nothing of the test's.
fn clean(mut cmd: Command, env: &BTreeMap<String, String>) -> Command {
    cmd.env_clear().envs(env);
    cmd
}

/// Runs `cmd` and returns its exit code and its output (stdout then stderr).
fn output(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A stored run as `fixbench show --json` reads it.
fn show(results: &Path, run: &str) -> serde_json::Value {
    let out = run_expect(fixbench(results).args(["show", run, "--json", "--results"]).arg(results), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each trial's outcome by id; panics on an id present twice.
fn outcomes(run: &serde_json::Value) -> BTreeMap<String, (u64, u64, bool)> {
    let mut by_id = BTreeMap::new();
    for t in util::trials(run) {
        let id = t["id"].as_str().unwrap().to_string();
        let outcome = (util::u(&t["passed"]), util::u(&t["total"]), t["resolved"].as_bool().unwrap());
        assert!(by_id.insert(id.clone(), outcome).is_none(), "trial {id} twice in run {}", run["run_id"]);
    }
    by_id
}

/// One unsharded run of the plan, and the baseline `main` saved from it.
struct Reference {
    trials: BTreeMap<String, (u64, u64, bool)>,
    baseline: PathBuf,
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = util::process_dir("scale-out-reference");
        suite(&dir);
        run_expect(fixbench(&dir).args(["run", "--run-id", "unsharded"]), 0);
        run_expect(fixbench(&dir).args(["baseline", "save", "main", "unsharded"]), 0);
        let trials = outcomes(&show(&dir.join("results"), "unsharded"));
        assert_eq!(trials.len(), PLAN, "the unsharded run: {trials:?}");
        Reference { trials, baseline: dir.join("results/baselines/main.json") }
    })
}

/// The merged run holds every trial of the plan exactly once, with the unsharded run's ids and
/// outcomes.
fn assert_merged(results: &Path, run: &str) {
    let merged = show(results, run);
    assert_eq!(util::trials(&merged).len(), PLAN, "merged run {run}: {merged:#}");
    assert_eq!(outcomes(&merged), reference().trials, "merged run {run} against the unsharded run");
}

/// Every stored run under `dir` (at any depth): its folder by run id.
fn runs_under(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut runs = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if e.file_name() == "run.json" {
            let run_dir = e.path().parent().unwrap().to_path_buf();
            let header: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            runs.insert(header["run_id"].as_str().unwrap().to_string(), run_dir);
        }
    }
    runs
}

/// When each finished trial of the runs under `dir` started, by (run id, trial id).
fn trial_starts(dir: &Path) -> BTreeMap<(String, String), String> {
    let mut starts = BTreeMap::new();
    for (run, run_dir) in runs_under(dir) {
        for (_, t) in util::trial_files(&run_dir) {
            starts.insert((run.clone(), t["id"].as_str().unwrap().to_string()), t["started_at"].to_string());
        }
    }
    starts
}

#[test]
fn every_recipe_is_in_the_doc_verbatim() {
    let doc = std::fs::read_to_string(util::repo().join("docs/scale-out.md")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(util::repo().join("examples/scale-out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["github-actions.yml", "k8s-indexed-job.yaml", "slurm-array.sh"]);
    for name in &names {
        let (_, text) = recipe(name);
        assert!(doc.contains(&text), "docs/scale-out.md must show examples/scale-out/{name} verbatim");
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

/// One workflow run, as GitHub runs it as far as these recipes go: each job on a fresh runner
/// (a fresh copy of the repository as its workspace), `run:` steps with bash as `bash -e {0}`
/// with pipefail (GitHub's default shell), `${{ }}` expressions substituted (any other is an
/// error), `if:` and `continue-on-error`, `$GITHUB_PATH`/`$GITHUB_ENV`, and the artifact actions
/// on a store of its own. The step named `Set up fixbench` (the README's `scripts/setup.sh`) is
/// not run: the tested binary's folder is put on PATH as its `$GITHUB_PATH` line would.
struct Workflow {
    doc: Yaml,
    repository: PathBuf,
    artifacts: PathBuf,
    runners: PathBuf,
    run_id: String,
    jobs_run: std::cell::Cell<usize>,
}

/// A step as it ran: its name, and its exit code (None: skipped).
struct StepRun {
    name: String,
    code: Option<i32>,
    output: String,
}

struct JobRun {
    workspace: PathBuf,
    steps: Vec<StepRun>,
    failed: bool,
}

impl JobRun {
    fn step(&self, name: &str) -> &StepRun {
        self.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step `{name}`: {}", self.log()))
    }
    fn log(&self) -> String {
        self.steps.iter().map(|s| format!("--- {} (exit {:?})\n{}\n", s.name, s.code, s.output)).collect()
    }
    fn assert_ok(&self) {
        assert!(!self.failed && self.steps.iter().all(|s| s.code.unwrap_or(0) == 0), "a step failed:\n{}", self.log());
    }
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `${{ expr }}` replaced from `ctx`; an expression `ctx` lacks fails the test.
fn substitute(s: &str, ctx: &HashMap<String, String>) -> String {
    let re = regex::Regex::new(r"\$\{\{\s*(.*?)\s*\}\}").unwrap();
    let out = re.replace_all(s, |c: &regex::Captures| {
        ctx.get(&c[1])
            .cloned()
            .unwrap_or_else(|| panic!("the workflow uses `${{{{ {} }}}}`, which this test does not know", &c[1]))
    });
    assert!(!out.contains("${{"), "an expression left unsubstituted in {out:?}");
    out.into_owned()
}

/// A step's or job's `if:` (GitHub adds `success() &&` to one without a status function).
fn condition(expr: Option<String>, failed: bool, ctx: &HashMap<String, String>) -> bool {
    let e = expr.unwrap_or_else(|| "success()".into());
    let e = e.trim().trim_start_matches("${{").trim_end_matches("}}").trim().to_string();
    match e.as_str() {
        "always()" => true,
        "success()" => !failed,
        "failure()" => failed,
        "cancelled()" => false,
        _ => {
            let re = regex::Regex::new(r"^([A-Za-z_][\w.-]*)\s*(==|!=)\s*'([^']*)'$").unwrap();
            let c = re.captures(&e).unwrap_or_else(|| panic!("an `if: {e}` this test cannot evaluate"));
            let left = ctx.get(&c[1]).unwrap_or_else(|| panic!("`if: {e}` names {}, unknown here", &c[1]));
            let equal = left == &c[3];
            !failed && if &c[2] == "==" { equal } else { !equal }
        }
    }
}

/// A `*` pattern (artifact names) matched whole.
fn wildcard(pattern: &str, s: &str) -> bool {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&re).unwrap().is_match(s)
}

/// Copies the files of `src` (a file or a folder) to `dst`; with `hidden` false, leaves out
/// files and folders whose name starts with a dot, as upload-artifact does by default.
fn copy_tree(src: &Path, dst: &Path, hidden: bool) -> usize {
    let mut n = 0;
    for e in walkdir::WalkDir::new(src)
        .into_iter()
        .filter_entry(|e| hidden || e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(src).unwrap();
            let to = if rel.as_os_str().is_empty() { dst.to_path_buf() } else { dst.join(rel) };
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(e.path(), &to).unwrap();
            n += 1;
        }
    }
    n
}

impl Workflow {
    fn new(doc: Yaml, repository: PathBuf, root: &Path) -> Workflow {
        Workflow {
            doc,
            repository,
            artifacts: root.join("artifacts"),
            runners: root.join("runners"),
            run_id: "4242".into(),
            jobs_run: std::cell::Cell::new(0),
        }
    }

    /// Runs one job (one matrix combination of it) of run attempt `attempt`, whose needed jobs
    /// `needs_failed` or not.
    fn run_job(
        &self,
        job_id: &str,
        matrix: &[(&str, &str)],
        job_index: usize,
        job_total: usize,
        attempt: u32,
        needs_failed: bool,
    ) -> JobRun {
        let job = &self.doc["jobs"][job_id];
        assert!(!job.is_badvalue(), "no job `{job_id}`");
        let n = self.jobs_run.get();
        self.jobs_run.set(n + 1);
        let runner = self.runners.join(format!("{n}-{job_id}"));
        let (workspace, temp, home) = (runner.join("work"), runner.join("temp"), runner.join("home"));
        util::copy_dir(&self.repository, &workspace);
        for d in [&temp, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut ctx: HashMap<String, String> = HashMap::from([
            ("github.run_id".into(), self.run_id.clone()),
            ("github.run_attempt".into(), attempt.to_string()),
            ("github.job".into(), job_id.into()),
            ("strategy.job-index".into(), job_index.to_string()),
            ("strategy.job-total".into(), job_total.to_string()),
            ("runner.temp".into(), temp.display().to_string()),
            ("runner.os".into(), "Linux".into()),
        ]);
        for (k, v) in matrix {
            ctx.insert(format!("matrix.{k}"), v.to_string());
        }
        let mut env: BTreeMap<String, String> = BTreeMap::from([
            ("HOME".into(), home.display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
            ("CI".into(), "true".into()),
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("GITHUB_RUN_ID".into(), self.run_id.clone()),
            ("GITHUB_RUN_NUMBER".into(), "7".into()),
            ("GITHUB_RUN_ATTEMPT".into(), attempt.to_string()),
            ("GITHUB_JOB".into(), job_id.into()),
            ("GITHUB_WORKSPACE".into(), workspace.display().to_string()),
            ("RUNNER_TEMP".into(), temp.display().to_string()),
            ("RUNNER_OS".into(), "Linux".into()),
        ]);
        for scope in [&self.doc["env"], &job["env"]] {
            for (k, v) in scope.as_hash().into_iter().flatten() {
                env.insert(text(k).unwrap(), substitute(&text(v).unwrap(), &ctx));
            }
        }
        let mut path_dirs: Vec<String> = Vec::new();
        let mut run = JobRun { workspace: workspace.clone(), steps: Vec::new(), failed: false };
        if !condition(text(&job["if"]), needs_failed, &ctx) {
            return run;
        }
        for (i, step) in job["steps"].as_vec().expect("a job's steps").iter().enumerate() {
            let uses = text(&step["uses"]);
            let script = text(&step["run"]).map(|s| substitute(&s, &ctx));
            let name = text(&step["name"])
                .map(|s| substitute(&s, &ctx))
                .or(uses.clone())
                .unwrap_or_else(|| format!("step {i}"));
            if !condition(text(&step["if"]), run.failed, &ctx) {
                run.steps.push(StepRun { name, code: None, output: String::new() });
                continue;
            }
            let mut step_env = env.clone();
            for (k, v) in step["env"].as_hash().into_iter().flatten() {
                step_env.insert(text(k).unwrap(), substitute(&text(v).unwrap(), &ctx));
            }
            let with: HashMap<String, String> = step["with"]
                .as_hash()
                .into_iter()
                .flatten()
                .map(|(k, v)| (text(k).unwrap(), substitute(&text(v).unwrap(), &ctx)))
                .collect();
            let (code, output) = match (&uses, &script) {
                (None, Some(script)) if name == "Set up fixbench" => {
                    assert!(
                        script.contains("scripts/setup.sh") && script.contains("GITHUB_PATH"),
                        "`Set up fixbench` should run scripts/setup.sh and put target/release on $GITHUB_PATH: {script}"
                    );
                    path_dirs.insert(0, bin_dir().display().to_string());
                    (0, "(setup: the tested fixbench is on PATH)".into())
                }
                (None, Some(script)) => {
                    let file = temp.join(format!("step-{i}.sh"));
                    std::fs::write(&file, script).unwrap();
                    let (github_path, github_env) = (temp.join(format!("path-{i}")), temp.join(format!("env-{i}")));
                    std::fs::write(&github_path, "").unwrap();
                    std::fs::write(&github_env, "").unwrap();
                    step_env.insert("GITHUB_PATH".into(), github_path.display().to_string());
                    step_env.insert("GITHUB_ENV".into(), github_env.display().to_string());
                    let path: Vec<String> = path_dirs.iter().cloned().chain([system_path()]).collect();
                    step_env.insert("PATH".into(), path.join(":"));
                    let cwd = workspace.join(text(&step["working-directory"]).unwrap_or_default());
                    let mut cmd = clean(Command::new("bash"), &step_env);
                    cmd.args(["--noprofile", "--norc", "-eo", "pipefail"]).arg(&file).current_dir(cwd);
                    let result = output(&mut cmd);
                    for line in std::fs::read_to_string(&github_path).unwrap().lines().filter(|l| !l.is_empty()) {
                        path_dirs.insert(0, line.to_string());
                    }
                    for line in std::fs::read_to_string(&github_env).unwrap().lines() {
                        if let Some((k, v)) = line.split_once('=') {
                            env.insert(k.into(), v.into());
                        }
                    }
                    result
                }
                (Some(action), None) => match action.split('@').next().unwrap() {
                    "actions/checkout" => (0, "(the workspace is a fresh copy of the repository)".into()),
                    "actions/upload-artifact" => self.upload(&with, &workspace),
                    "actions/download-artifact" => self.download(&with, &workspace),
                    other => panic!("step `{name}` uses {other}, which this test does not emulate"),
                },
                _ => panic!("step `{name}` should have one of `run` and `uses`"),
            };
            let tolerated = text(&step["continue-on-error"]).as_deref() == Some("true");
            if code != 0 && !tolerated {
                run.failed = true;
            }
            run.steps.push(StepRun { name, code: Some(code), output });
        }
        run
    }

    /// actions/upload-artifact@v4: the files of `path` (one per line), relative to the folder
    /// given (one path) or to the paths' common ancestor (several), stored under `name`; refused
    /// (409 Conflict) when the name exists and `overwrite` is not true.
    fn upload(&self, with: &HashMap<String, String>, workspace: &Path) -> (i32, String) {
        let name = with.get("name").cloned().unwrap_or_else(|| "artifact".into());
        let paths: Vec<PathBuf> =
            with["path"].lines().map(str::trim).filter(|l| !l.is_empty()).map(|p| workspace.join(p)).collect();
        assert!(
            paths.iter().all(|p| !p.to_string_lossy().contains('*')),
            "globs in upload-artifact paths are not emulated"
        );
        let dest = self.artifacts.join(&name);
        if dest.exists() && with.get("overwrite").map(String::as_str) != Some("true") {
            return (
                1,
                format!("Failed to CreateArtifact: (409) Conflict: an artifact with this name already exists: {name}"),
            );
        }
        let root = if paths.len() == 1 {
            if paths[0].is_dir() {
                paths[0].clone()
            } else {
                paths[0].parent().unwrap().to_path_buf()
            }
        } else {
            let mut lca = paths[0].clone();
            while !paths.iter().all(|p| p.starts_with(&lca)) {
                lca = lca.parent().unwrap().to_path_buf();
            }
            lca
        };
        let hidden = with.get("include-hidden-files").map(String::as_str) == Some("true");
        let staging = self.artifacts.join(format!(".staging-{name}"));
        let _ = std::fs::remove_dir_all(&staging);
        let mut files = 0;
        for p in paths.iter().filter(|p| p.exists()) {
            files += copy_tree(p, &staging.join(p.strip_prefix(&root).unwrap()), hidden);
        }
        if files == 0 {
            let _ = std::fs::remove_dir_all(&staging);
            let level = with.get("if-no-files-found").map(String::as_str).unwrap_or("warn");
            return (if level == "error" { 1 } else { 0 }, format!("{level}: no files found for artifact {name}"));
        }
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&staging, &dest).unwrap();
        (0, format!("artifact {name}: {files} files"))
    }

    /// actions/download-artifact@v4: `name` into `path` itself; else every artifact matching
    /// `pattern` (every one without it) into `path/<name>/`, or into `path` with merge-multiple.
    fn download(&self, with: &HashMap<String, String>, workspace: &Path) -> (i32, String) {
        let path = workspace.join(with.get("path").cloned().unwrap_or_default());
        if let Some(name) = with.get("name") {
            let src = self.artifacts.join(name);
            if !src.is_dir() {
                return (1, format!("Unable to download artifact(s): Artifact not found for name: {name}"));
            }
            copy_tree(&src, &path, true);
            return (0, format!("downloaded {name}"));
        }
        let pattern = with.get("pattern").cloned().unwrap_or_else(|| "*".into());
        let merge = with.get("merge-multiple").map(String::as_str) == Some("true");
        let mut names: Vec<String> = std::fs::read_dir(&self.artifacts)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && wildcard(&pattern, n))
            .collect();
        names.sort();
        for n in &names {
            copy_tree(&self.artifacts.join(n), &if merge { path.clone() } else { path.join(n) }, true);
        }
        (0, format!("downloaded {names:?}"))
    }
}

fn uses_of(job: &Yaml) -> Vec<String> {
    job["steps"].as_vec().unwrap().iter().filter_map(|s| text(&s["uses"])).collect()
}

#[test]
fn github_actions_matrix_shards_merge_and_gate() {
    let docs = yaml("github-actions.yml");
    assert_eq!(docs.len(), 1);
    let wf = &docs[0];
    let (shard, merge) = (&wf["jobs"]["shard"], &wf["jobs"]["merge"]);
    let matrix: Vec<String> =
        shard["strategy"]["matrix"]["shard"].as_vec().expect("matrix.shard").iter().map(|v| text(v).unwrap()).collect();
    assert_eq!(matrix, ["1", "2", "3"]);
    assert_eq!(shard["strategy"]["fail-fast"].as_bool(), Some(false), "one failed shard must not cancel the others");
    let needs = text(&merge["needs"]).or_else(|| merge["needs"].as_vec().and_then(|v| v.first().and_then(text)));
    assert_eq!(needs.as_deref(), Some("shard"), "the merge job needs the shard job");
    assert_eq!(text(&merge["if"]).as_deref(), Some("always()"), "a failed shard must still be merged and reported");
    assert!(uses_of(shard).contains(&"actions/upload-artifact@v4".to_string()), "{:?}", uses_of(shard));
    assert!(uses_of(merge).contains(&"actions/download-artifact@v4".to_string()), "{:?}", uses_of(merge));
    let download = merge["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| text(&s["uses"]).as_deref() == Some("actions/download-artifact@v4"))
        .unwrap();
    assert!(text(&download["with"]["pattern"]).is_some(), "the merge downloads the shards by pattern");

    let tmp = tempfile::tempdir().unwrap();
    let repository = tmp.path().join("repository");
    suite(&repository);
    // The baseline the recipe gates against: a file committed in the repository.
    std::fs::create_dir_all(repository.join("ci")).unwrap();
    std::fs::copy(&reference().baseline, repository.join("ci/fixbench-baseline.json")).unwrap();
    let gh = Workflow::new(wf.clone(), repository, tmp.path());

    for (i, k) in matrix.iter().enumerate() {
        let job = gh.run_job("shard", &[("shard", k)], i, matrix.len(), 1, false);
        job.assert_ok();
        assert_eq!(job.step("Restore the earlier attempt").code, None, "a first attempt has nothing to restore");
        assert_eq!(job.step(&format!("Run shard {k}")).code, Some(0), "{}", job.log());
        assert!(gh.artifacts.join(format!("fixbench-shard-{k}")).is_dir(), "{}", job.log());
    }
    let starts = trial_starts(&gh.artifacts);
    assert_eq!(starts.len(), PLAN, "the shards' runs together: {starts:#?}");

    // "Re-run failed jobs" on shard 2: attempt 2 restores what attempt 1 uploaded and continues
    // the same run, which is finished: nothing runs again, and the re-upload overwrites.
    let job = gh.run_job("shard", &[("shard", "2")], 1, matrix.len(), 2, false);
    job.assert_ok();
    assert_eq!(job.step("Restore the earlier attempt").code, Some(0), "{}", job.log());
    assert_eq!(trial_starts(&gh.artifacts), starts, "a re-run of a finished shard ran trials again:\n{}", job.log());

    let job = gh.run_job("merge", &[], 0, 1, 1, false);
    job.assert_ok();
    let run_id = format!("gh-{}", gh.run_id);
    assert_merged(&job.workspace.join("results"), &run_id);
    assert!(job.step("Gate against the baseline").output.contains("gate: PASSED"), "{}", job.log());
    let junit = std::fs::read_to_string(job.workspace.join("fixbench-junit.xml")).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(gh.artifacts.join("fixbench-merged/fixbench-junit.xml").is_file());
    assert!(gh.artifacts.join("fixbench-merged/results").join(&run_id).join("run.json").is_file());

    // A shard whose runner died before uploading: the merge job still runs (if: always()), says
    // which trials are missing, fails at the gate, and still uploads what it has.
    std::fs::remove_dir_all(gh.artifacts.join("fixbench-shard-3")).unwrap();
    let job = gh.run_job("merge", &[], 0, 1, 1, true);
    assert!(job.failed, "a merge lacking a shard passed:\n{}", job.log());
    assert_eq!(job.step("Merge the shards").code, Some(0), "{}", job.log());
    assert_eq!(job.step("Gate against the baseline").code, Some(5), "{}", job.log());
    assert_eq!(job.step("Upload the merged run").code, Some(0), "{}", job.log());
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// Kubernetes' `$(VAR)` expansion of a container's command, args and env values: a defined
/// variable is replaced, `$$` is a `$`, anything else is left as written.
fn k8s_expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(') {
            match r.find(')') {
                Some(j) if env.contains_key(&r[..j]) => {
                    out.push_str(&env[&r[..j]]);
                    rest = &r[j + 1..];
                }
                _ => {
                    out.push_str("$(");
                    rest = r;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A Job's only container and the pod spec around it.
fn container(job: &Yaml) -> &Yaml {
    let containers = job["spec"]["template"]["spec"]["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// The mount path of the Job's PersistentVolumeClaim, and the claim.
fn shared_volume(job: &Yaml) -> (String, String) {
    let pod = &job["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| !v["persistentVolumeClaim"].is_badvalue())
        .expect("a PVC volume");
    let name = text(&volume["name"]).unwrap();
    let mount = container(job)["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| text(&m["name"]).as_deref() == Some(&name))
        .expect("the PVC mounted");
    (text(&mount["mountPath"]).unwrap(), text(&volume["persistentVolumeClaim"]["claimName"]).unwrap())
}

/// Runs the pod of `job` (with JOB_COMPLETION_INDEX `index` for an Indexed Job) as the kubelet
/// would: `command` + `args` after `$(VAR)` expansion, the container's env (the Job's name for
/// its `batch.kubernetes.io/job-name` label), the shared volume at `data` in place of its mount
/// path, and the image's checkout (`workingDir`) at `checkout`.
fn run_pod(job: &Yaml, index: Option<usize>, data: &Path, checkout: &Path) -> (i32, String) {
    let c = container(job);
    let (mount, _) = shared_volume(job);
    let job_name = text(&job["metadata"]["name"]).unwrap();
    assert!(text(&c["workingDir"]).is_some(), "the container should run in the image's checkout (workingDir)");
    let mut env: BTreeMap<String, String> = BTreeMap::from([
        ("PATH".into(), format!("{}:{}", bin_dir().display(), system_path())),
        ("HOME".into(), data.parent().unwrap().join("pod-home").display().to_string()),
        ("HOSTNAME".into(), format!("{job_name}-{}-x7k2p", index.unwrap_or(0))),
    ]);
    if let Some(i) = index {
        env.insert("JOB_COMPLETION_INDEX".into(), i.to_string());
    }
    for e in c["env"].as_vec().into_iter().flatten() {
        let name = text(&e["name"]).unwrap();
        let value = if let Some(v) = text(&e["value"]) {
            let v = k8s_expand(&v, &env);
            match v.strip_prefix(&mount) {
                Some(rest) => format!("{}{rest}", data.display()),
                None => v,
            }
        } else {
            let field = text(&e["valueFrom"]["fieldRef"]["fieldPath"])
                .unwrap_or_else(|| panic!("env {name}: only fieldRef is emulated"));
            assert_eq!(
                field, "metadata.labels['batch.kubernetes.io/job-name']",
                "env {name}: a field this test does not know"
            );
            job_name.clone()
        };
        env.insert(name, value);
    }
    let words: Vec<String> = c["command"]
        .as_vec()
        .unwrap()
        .iter()
        .chain(c["args"].as_vec().into_iter().flatten())
        .map(|w| k8s_expand(&text(w).unwrap(), &env))
        .collect();
    assert!(
        !words.iter().any(|w| w.contains(&format!("{mount}/"))),
        "the shell names the volume's path itself; take it from the env so it can move: {words:?}"
    );
    std::fs::create_dir_all(&env["HOME"]).unwrap();
    let mut cmd = clean(Command::new(&words[0]), &env);
    cmd.args(&words[1..]).current_dir(checkout);
    output(&mut cmd)
}

#[test]
fn kubernetes_indexed_job_shards_then_merge() {
    let docs = yaml("k8s-indexed-job.yaml");
    let jobs: Vec<&Yaml> = docs.iter().filter(|d| text(&d["kind"]).as_deref() == Some("Job")).collect();
    assert_eq!(jobs.len(), 2, "the shards' Job and the merge's");
    let shards = *jobs
        .iter()
        .find(|j| text(&j["spec"]["completionMode"]).as_deref() == Some("Indexed"))
        .expect("completionMode: Indexed");
    let merge = *jobs.iter().find(|j| !std::ptr::eq(**j, shards)).unwrap();
    for j in [shards, merge] {
        assert_eq!(text(&j["apiVersion"]).as_deref(), Some("batch/v1"));
        assert_eq!(text(&j["spec"]["template"]["spec"]["restartPolicy"]).as_deref(), Some("Never"));
        assert_eq!(
            container(j)["command"].as_vec().unwrap().iter().map(|w| text(w).unwrap()).collect::<Vec<_>>(),
            ["/bin/sh", "-c"]
        );
    }
    let spec = &shards["spec"];
    let completions = spec["completions"].as_i64().expect("completions");
    assert_eq!(spec["parallelism"].as_i64(), Some(completions));
    assert!(spec["backoffLimitPerIndex"].as_i64().or(spec["backoffLimit"].as_i64()).is_some(), "retries per index");
    let script = text(&container(shards)["args"][0]).unwrap();
    let re = regex::Regex::new(r#"--shard "?\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)/(\d+)"#).unwrap();
    let n: i64 = re.captures(&script).unwrap_or_else(|| panic!("--shard from JOB_COMPLETION_INDEX: {script}"))[1]
        .parse()
        .unwrap();
    assert_eq!(n, completions, "--shard's N is the Job's completions");
    assert_eq!(shared_volume(shards), shared_volume(merge), "the merge reads the shards' volume");
    let job_name = text(&shards["metadata"]["name"]).unwrap();
    let merge_env = |name: &str| {
        let e = container(merge)["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| text(&e["name"]).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("merge env {name}"));
        text(&e["value"]).unwrap()
    };
    assert_eq!(merge_env("RUN"), job_name, "the merge names the shards' Job");

    let tmp = tempfile::tempdir().unwrap();
    let (data, checkout) = (tmp.path().join("volume"), tmp.path().join("suite"));
    std::fs::create_dir_all(&data).unwrap();
    suite(&checkout);
    for i in 0..n as usize {
        let (code, out) = run_pod(shards, Some(i), &data, &checkout);
        assert_eq!(code, 0, "pod {i}:\n{out}");
    }
    let starts = trial_starts(&data);
    assert_eq!(starts.len(), PLAN, "the shards' runs together: {starts:#?}");
    assert_eq!(runs_under(&data).len(), n as usize);

    // Index 1's pod replaced (its node drained): the new pod continues the same run, which is
    // finished, so it runs nothing.
    let (code, out) = run_pod(shards, Some(1), &data, &checkout);
    assert_eq!(code, 0, "the replaced pod:\n{out}");
    assert_eq!(trial_starts(&data), starts, "the replaced pod ran trials again:\n{out}");

    let (mount, _) = shared_volume(merge);
    let on_volume = |v: String| {
        data.join(v.strip_prefix(&format!("{mount}/")).unwrap_or_else(|| panic!("{v} is not on the volume")))
    };
    let results = on_volume(merge_env("RESULTS"));
    std::fs::create_dir_all(results.join("baselines")).unwrap();
    std::fs::copy(&reference().baseline, results.join("baselines/main.json")).unwrap();
    let (code, out) = run_pod(merge, None, &data, &checkout);
    assert_eq!(code, 0, "the merge pod:\n{out}");
    assert!(out.contains("gate: PASSED"), "the merge pod gates against the saved baseline:\n{out}");
    assert_merged(&results, &job_name);
    assert!(on_volume(merge_env("REPORTS")).join(format!("{job_name}.xml")).is_file(), "the JUnit report:\n{out}");
}

// ---------------------------------------------------------------------------------------------
// Slurm

/// `sbatch`'s options (`--name=value`, `--name value`, `-x value`) and the script with its
/// arguments after them.
#[derive(Debug, Default)]
struct Submission {
    options: BTreeMap<String, String>,
    script: Option<PathBuf>,
    args: Vec<String>,
}

const SHORT: [(&str, &str); 6] = [
    ("-a", "array"),
    ("-d", "dependency"),
    ("-J", "job-name"),
    ("-o", "output"),
    ("-c", "cpus-per-task"),
    ("-t", "time"),
];
const FLAGS: [&str; 3] = ["parsable", "requeue", "no-requeue"];

fn parse_options(words: &[String], into: &mut Submission) -> usize {
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let (name, value) = if let Some(long) = w.strip_prefix("--") {
            match long.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some((_, long)) = SHORT.iter().find(|(s, _)| w == s) {
            (long.to_string(), None)
        } else {
            break;
        };
        let value = match value {
            Some(v) => v,
            None if FLAGS.contains(&name.as_str()) => String::new(),
            None => {
                i += 1;
                words.get(i).unwrap_or_else(|| panic!("sbatch --{name} lacks its value")).clone()
            }
        };
        into.options.insert(name, value);
        i += 1;
    }
    i
}

/// One `sbatch` call as recorded by the shim: its options from the command line over the
/// script's `#SBATCH` lines (read up to its first command, as sbatch does).
fn submission(args: &[String], cwd: &Path) -> Submission {
    let mut cli = Submission::default();
    let used = parse_options(args, &mut cli);
    let mut sub = Submission::default();
    if let Some(script) = args.get(used) {
        let script = cwd.join(script);
        for line in std::fs::read_to_string(&script).unwrap().lines().skip(1) {
            if !line.starts_with('#') && !line.trim().is_empty() {
                break;
            }
            if let Some(directive) = line.strip_prefix("#SBATCH") {
                let words: Vec<String> = shlex::split(directive).unwrap();
                assert_eq!(parse_options(&words, &mut sub), words.len(), "#SBATCH{directive}");
            }
        }
        sub.script = Some(script);
        sub.args = args[used + 1..].to_vec();
    }
    sub.options.extend(cli.options);
    sub
}

/// An `--array` spec's task ids: `A-B[:S]`, lists of those, `%` limits ignored.
fn array_ids(spec: &str) -> (Vec<u32>, u32) {
    let spec = spec.split('%').next().unwrap();
    let mut ids = Vec::new();
    let mut step = 1;
    for part in spec.split(',') {
        let (range, s): (&str, u32) = part.split_once(':').map(|(r, s)| (r, s.parse().unwrap())).unwrap_or((part, 1));
        step = s;
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
        ids.extend((a..=b).step_by(s as usize));
    }
    (ids, step)
}

#[test]
fn slurm_array_shards_then_dependent_merge() {
    let (script, text) = recipe("slurm-array.sh");
    let directives: Vec<&str> = text.lines().filter(|l| l.starts_with("#SBATCH")).collect();
    assert!(directives.contains(&"#SBATCH --array=1-3"), "{directives:?}");
    assert!(directives.contains(&"#SBATCH --requeue"), "{directives:?}");

    let tmp = tempfile::tempdir().unwrap();
    let (checkout, data, shim, spool) =
        (tmp.path().join("suite"), tmp.path().join("shared"), tmp.path().join("bin"), tmp.path().join("spool"));
    suite(&checkout);
    // `sbatch` here is a shim: it records its arguments and working folder and answers as
    // sbatch does (`--parsable`: the job id); the test then runs each job as slurmd would, with
    // the variables Slurm sets, in the order the dependencies allow.
    let calls = tmp.path().join("sbatch-calls");
    std::fs::create_dir_all(&calls).unwrap();
    std::fs::create_dir_all(&shim).unwrap();
    let sbatch = shim.join("sbatch");
    std::fs::write(
        &sbatch,
        format!(
            "#!/bin/bash\nset -e\ncalls={calls:?}\nn=$(ls \"$calls\" | wc -l)\nmkdir \"$calls/$n\"\nprintf '%s\\0' \"$@\" > \"$calls/$n/args\"\npwd > \"$calls/$n/cwd\"\nid=$((101 + n))\nfor a in \"$@\"; do [[ $a == --parsable ]] && {{ echo \"$id\"; exit 0; }}; done\necho \"Submitted batch job $id\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sbatch, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env: BTreeMap<String, String> = BTreeMap::from([
        ("PATH".into(), format!("{}:{}:{}", shim.display(), bin_dir().display(), system_path())),
        ("HOME".into(), tmp.path().join("home").display().to_string()),
        ("USER".into(), "bench".into()),
        ("FIXBENCH_DATA".into(), data.display().to_string()),
    ]);
    std::fs::create_dir_all(&env["HOME"]).unwrap();

    // On the login node: the script submits the array and the merge.
    let (code, out) = output(clean(Command::new("bash"), &env).arg(&script).current_dir(&checkout));
    assert_eq!(code, 0, "submitting:\n{out}");
    let recorded = |n: usize| -> (Vec<String>, PathBuf) {
        let args =
            std::fs::read(calls.join(format!("{n}/args"))).unwrap_or_else(|_| panic!("no sbatch call {n}:\n{out}"));
        let args = args
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cwd = PathBuf::from(std::fs::read_to_string(calls.join(format!("{n}/cwd"))).unwrap().trim());
        (args, cwd)
    };
    assert_eq!(std::fs::read_dir(&calls).unwrap().count(), 2, "two submissions: the array and the merge");
    let (args, submit_dir) = recorded(0);
    let array = submission(&args, &submit_dir);
    let array_job = "101";
    let (ids, step) = array_ids(array.options.get("array").expect("an array job"));
    assert_eq!(ids, [1, 2, 3]);
    assert!(array.options.contains_key("requeue"));

    // slurmd runs a copy of the batch script, in the submit folder, with the array's variables.
    let run_task = |task: u32, restarts: u32| -> (i32, String) {
        let dir = spool.join(format!("job{}", 1000 + task));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("slurm_script");
        std::fs::copy(array.script.as_ref().unwrap(), &copy).unwrap();
        let mut task_env = env.clone();
        for (k, v) in [
            ("SLURM_JOB_ID", (1000 + task).to_string()),
            ("SLURM_ARRAY_JOB_ID", array_job.to_string()),
            ("SLURM_ARRAY_TASK_ID", task.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", ids.len().to_string()),
            ("SLURM_ARRAY_TASK_MIN", ids.iter().min().unwrap().to_string()),
            ("SLURM_ARRAY_TASK_MAX", ids.iter().max().unwrap().to_string()),
            ("SLURM_ARRAY_TASK_STEP", step.to_string()),
            ("SLURM_JOB_NAME", array.options.get("job-name").cloned().unwrap_or_default()),
            ("SLURM_SUBMIT_DIR", submit_dir.display().to_string()),
        ] {
            task_env.insert(k.into(), v);
        }
        if restarts > 0 {
            task_env.insert("SLURM_RESTART_COUNT".into(), restarts.to_string());
        }
        output(clean(Command::new("bash"), &task_env).arg(&copy).args(&array.args).current_dir(&submit_dir))
    };
    for &task in &ids {
        let (code, out) = run_task(task, 0);
        assert_eq!(code, 0, "array task {task}:\n{out}");
    }
    let starts = trial_starts(&data);
    assert_eq!(starts.len(), PLAN, "the tasks' runs together: {starts:#?}");

    // Task 2's node fails mid-run (its last trial never finished) and Slurm requeues it: the
    // task continues its run, running only that trial again.
    let runs = runs_under(&data);
    let task2 = runs.iter().find(|(id, _)| id.contains("-2of")).map(|(_, d)| d.clone()).expect("task 2's run");
    let finished = util::trial_files(&task2).len();
    util::keep_trials(&task2, finished - 1);
    let (code, out) = run_task(2, 1);
    assert_eq!(code, 0, "the requeued task:\n{out}");
    let after = trial_starts(&data);
    assert_eq!(after.len(), PLAN, "{out}");
    let rerun: Vec<_> = after.iter().filter(|(k, v)| starts.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    assert_eq!(rerun.len(), 1, "the requeued task should run only its unfinished trial: {rerun:?}\n{out}");

    // The merge: submitted with afterany on the array, so slurmd starts it once every task ended.
    let (args, cwd) = recorded(1);
    let merge = submission(&args, &cwd);
    assert_eq!(merge.options.get("dependency").map(String::as_str), Some(&*format!("afterany:{array_job}")));
    assert!(!merge.options.contains_key("array"), "the merge is one job, not an array: {merge:?}");
    std::fs::create_dir_all(data.join("results/baselines")).unwrap();
    std::fs::copy(&reference().baseline, data.join("results/baselines/main.json")).unwrap();
    let dir = spool.join("job102");
    std::fs::create_dir_all(&dir).unwrap();
    let body = match (&merge.script, merge.options.get("wrap")) {
        (None, Some(wrap)) => format!("#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{wrap}\n"),
        (Some(script), None) => std::fs::read_to_string(script).unwrap(),
        _ => panic!("the merge should be a script or a --wrap: {merge:?}"),
    };
    std::fs::write(dir.join("slurm_script"), body).unwrap();
    let interpreter = if merge.script.is_some() { "bash" } else { "sh" };
    let mut merge_env = env.clone();
    merge_env.insert("SLURM_JOB_ID".into(), "102".into());
    merge_env.insert("SLURM_SUBMIT_DIR".into(), cwd.display().to_string());
    let (code, out) = output(
        clean(Command::new(interpreter), &merge_env).arg(dir.join("slurm_script")).args(&merge.args).current_dir(&cwd),
    );
    assert_eq!(code, 0, "the merge job:\n{out}");
    assert!(out.contains("gate: PASSED"), "the merge gates against the saved baseline:\n{out}");
    let run = format!("slurm-{array_job}");
    assert_merged(&data.join("results"), &run);
    assert!(data.join(format!("reports/{run}.xml")).is_file(), "the JUnit report:\n{out}");
}
