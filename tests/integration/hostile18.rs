//! Hostile tests of problems from real codebases (issue #18, b6bfcc4): declared layouts, grading
//! that takes only the agent's editable files, per-requirement environments. Each test asserts
//! the secure behaviour: it fails where the attack worked, passes where the defence held.

use std::path::{Path, PathBuf};

use crate::util::*;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const TILL: &str = "def total(prices, discount=0):\n    s = sum(prices)\n    return s - s * discount // 100\n";
const TILL_TESTS: &str = "from shop import total\n\n\ndef test_plain():\n    assert total([1, 2]) == 3\n\n\ndef test_empty():\n    assert total([]) == 0\n\n\ndef test_discount():\n    assert total([100, 100], 10) == 180\n";

/// A declared-layout problem `shop` whose package lies at `<pkg>/` (e.g. `src/shop`), with
/// `extra` appended to problem.toml. The starter passes 2 of 3 tests.
fn shop_at(problems: &Path, pkg: &str, extra: &str) -> PathBuf {
    let p = problems.join("shop");
    write(
        &p,
        "problem.toml",
        &format!(
            "difficulty = \"easy\"\ndescription = \"a till\"\ntests = 3\nbaseline = 2\neditable = [\"{pkg}/\"]\ntest_paths = [\"tests/\"]\n{extra}"
        ),
    );
    write(&p, "PROBLEM.md", "Totals with a discount are wrong.\n");
    write(&p, &format!("{pkg}/__init__.py"), &TILL.replace("s - s * discount", "s + s * discount"));
    write(&p, &format!("reference/{pkg}/__init__.py"), TILL);
    write(&p, "reference/FIX.md", "discount added\n");
    write(
        &p,
        "reference/bugs.toml",
        &format!("[[bug]]\nid = \"sign\"\nfile = \"{pkg}/__init__.py\"\nsummary = \"adds the discount\"\nfixed = \"s - s * discount\"\nbroken = \"s + s * discount\"\ntests = [\"test_discount\"]\n"),
    );
    write(&p, "tests/test_till.py", TILL_TESTS);
    p
}

/// Runs `agent` (a shell script body) on `shop` and returns the run's output and its one
/// command trial.
fn run_agent(work: &Path, problems: &Path, script: &str, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let agent = work.join("agent.sh");
    std::fs::write(&agent, format!("#!/bin/sh\n{script}")).unwrap();
    let out = fixbench(work)
        .arg("run")
        .arg("--problems-dir")
        .arg(problems)
        .args(["--problem", "shop", "--json"])
        .args(extra)
        .arg("--cmd")
        .arg(format!("sh {}", agent.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the run failed as a whole (one agent's workdir must not stop the benchmark): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = json(&out);
    let t = trials(&run).iter().find(|t| t["agent"] == "cmd").cloned().unwrap_or_default();
    (out, t)
}

/// HOLE: `prepare_grade` refuses a symlink only at the editable path itself
/// (`src_root.join(&e.path).is_symlink()`), not at its parents. An agent that replaces `src/`
/// with a link to the problem's hidden `reference/src` gets the reference graded as its work:
/// grading runs on the host, where the reference is readable, outside the agent's sandbox.
#[test]
fn hostile18_a_symlinked_parent_of_the_editable_folder_does_not_grade_the_reference() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = shop_at(&problems, "src/shop", "");
    let script = format!("rm -rf src\nln -s {} src\n", p.join("reference/src").display());
    let (out, t) = run_agent(work.path(), &problems, &script, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(t["resolved"], false, "the reference was graded as the agent's work through a linked parent: {t}");
    assert!(t["passed"].as_u64().unwrap() <= 2, "{t}");
}

/// HOLE (same line): an editable *file* under a linked folder (`lib/till.py` with `lib/` a link).
#[test]
fn hostile18_a_symlinked_parent_of_an_editable_file_does_not_grade_the_reference() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = problems.join("shop");
    write(
        &p,
        "problem.toml",
        "difficulty = \"easy\"\ndescription = \"a till\"\ntests = 3\nbaseline = 2\neditable = [\"lib/shop.py\"]\ntest_paths = [\"tests/\"]\npythonpath = [\"lib\"]\n",
    );
    write(&p, "PROBLEM.md", "Totals with a discount are wrong.\n");
    write(&p, "lib/shop.py", &TILL.replace("s - s * discount", "s + s * discount"));
    write(&p, "lib/README", "frozen\n");
    write(&p, "reference/lib/shop.py", TILL);
    write(&p, "reference/FIX.md", "x\n");
    write(&p, "tests/test_till.py", TILL_TESTS);
    let script = format!("rm -rf lib\nln -s {} lib\n", p.join("reference/lib").display());
    let (out, t) = run_agent(work.path(), &problems, &script, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(t["resolved"], false, "the reference was graded through a linked parent folder: {t}");
}

/// HOLE: a frozen file inside an editable folder (the problem's `conftest.py`) is copied into
/// the grading folder first; an agent that puts a *folder* of that name in its workdir makes
/// `fs::create_dir_all` fail in `prepare_grade`, `Grader::grade` returns `Err`, and the whole
/// run stops with an error: one trial's agent ends the benchmark for every other trial.
#[test]
fn hostile18_a_folder_named_like_a_frozen_conftest_fails_only_its_own_trial() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = shop_at(&problems, "shop", "");
    write(&p, "shop/conftest.py", "import pytest\n\n\n@pytest.fixture\ndef rate():\n    return 10\n");
    let (out, t) =
        run_agent(work.path(), &problems, "rm -f shop/conftest.py\nmkdir -p shop/conftest.py\n", &["--agent", "null"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the agent's folder stopped the whole run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t["resolved"], false, "{t}");
}

/// HOLE: a default-layout problem (no `editable`) that also holds an unrelated `reference/`
/// folder (a repository's docs) switches to `reference/` as its reference (`Layout::of`:
/// `default_layout && !dir.join("reference").is_dir()`), and `<name>.reference/` — the real
/// fix — is no longer hidden: `prepare_trial` copies it into the agent's workdir.
#[test]
fn hostile18_a_default_layout_problem_with_a_reference_folder_never_shows_the_legacy_reference() {
    let sb = Sandbox::new();
    write(&sb.path().join("problems/expr_calc"), "reference/index.md", "API reference of expr_calc\n");
    let agent = sb.path().join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nif [ -d expr_calc.reference ]; then echo SAW-THE-FIX; fi\n").unwrap();
    let out = fixbench(sb.path())
        .args(["run", "--problem", "expr_calc", "--json", "--cmd"])
        .arg(format!("sh {}", agent.display()))
        .output()
        .unwrap();
    let run = json(&out);
    let t = &trials(&run)[0];
    let run_dir = sb.results().join(run["run_id"].as_str().unwrap());
    let stdout = std::fs::read_to_string(run_dir.join(t["paths"]["stdout"].as_str().unwrap())).unwrap();
    assert!(!stdout.contains("SAW-THE-FIX"), "the agent's workdir held expr_calc.reference/");
}

/// HOLE: `editable = ["."]` passes `Manifest::load` (`check_relative_path` allows `.`), but
/// `Entry::holds` never matches a path against `.`: nothing is editable, grading takes every
/// file from the problem (the starter) and ignores the agent. It must be refused, naming the
/// field.
#[test]
fn hostile18_editable_dot_is_refused_naming_the_field() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = problems.join("shop");
    write(
        &p,
        "problem.toml",
        "difficulty = \"easy\"\ndescription = \"a till\"\ntests = 3\nbaseline = 2\neditable = [\".\"]\ntest_paths = [\"tests/\"]\n",
    );
    write(&p, "PROBLEM.md", "x\n");
    write(&p, "shop.py", &TILL.replace("s - s * discount", "s + s * discount"));
    write(&p, "reference/shop.py", TILL);
    write(&p, "reference/FIX.md", "x\n");
    write(
        &p,
        "reference/bugs.toml",
        "[[bug]]\nid = \"sign\"\nfile = \"shop.py\"\nsummary = \"adds\"\nfixed = \"s - s * discount\"\nbroken = \"s + s * discount\"\n",
    );
    write(&p, "tests/test_till.py", TILL_TESTS);
    let out = fixbench(work.path()).arg("validate").arg("--problems-dir").arg(&problems).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "accepted: {}{err}", String::from_utf8_lossy(&out.stdout));
    // Today: exit 4, "the reference passes 2 of 3 tests" — the reference was never laid in.
    assert!(err.contains("`editable`") && err.contains("problem.toml"), "not named as a layout error: {err}");
}

/// The problem's requirement, for the environment tests.
const ATTRS: &str = "requires = [\"attrs==23.2.0\"]\n";

/// HOLE: a problem's environment is shared by every problem with the same requirements and
/// by every later run, and reused after checking only that its Python imports pytest
/// (`environment::verify`). An agent run without the sandbox (`--isolation none`) finds it as
/// `$VIRTUAL_ENV` and drops a pytest11 plugin into its site-packages; plugin autoload is on for
/// problems with `requires` (`grade/mod.rs`: `if !own_environment`), so the plugin forges every
/// outcome. The problem folder is fingerprinted against exactly this kind of write; the
/// environment is not: the forged grade stands, and the next run's null agent "resolves" too.
#[test]
fn hostile18_an_unsandboxed_agent_cannot_plant_a_plugin_in_the_shared_environment() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let problems = work.path().join("problems");
    shop_at(&problems, "shop", ATTRS);
    let forge = "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    rep = outcome.get_result()\n    rep.outcome = \"passed\"\n    rep.longrepr = None\n";
    let script = format!(
        "SP=$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')\n\
         cat > \"$SP/fixbench_forge.py\" <<'EOF'\n{forge}EOF\n\
         mkdir -p \"$SP/fixbench_forge-1.0.dist-info\"\n\
         printf 'Metadata-Version: 2.1\\nName: fixbench-forge\\nVersion: 1.0\\n' > \"$SP/fixbench_forge-1.0.dist-info/METADATA\"\n\
         printf '[pytest11]\\nforge = fixbench_forge\\n' > \"$SP/fixbench_forge-1.0.dist-info/entry_points.txt\"\n"
    );
    let agent = work.path().join("agent.sh");
    std::fs::write(&agent, format!("#!/bin/sh\n{script}")).unwrap();
    let run = |args: &[&str]| {
        let out = fixbench(work.path())
            .env("FIXBENCH_CACHE", &cache)
            .arg("run")
            .arg("--problems-dir")
            .arg(&problems)
            .args(["--problem", "shop", "--json"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), json(&out))
    };
    let cmd = format!("sh {}", agent.display());
    // The run stops on the changed environment (exit 1, nothing on stdout); the trial it
    // caught is stored, its grade void.
    let out = fixbench(work.path())
        .env("FIXBENCH_CACHE", &cache)
        .arg("run")
        .arg("--problems-dir")
        .arg(&problems)
        .args(["--problem", "shop", "--isolation", "none", "--cmd", &cmd])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the environment of problem `shop` changed during trial"), "{err}");
    let run_dir = std::fs::read_dir(work.path().join("results"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("trials").is_dir())
        .unwrap();
    let stored = trial_files(&run_dir);
    let first = serde_json::json!({ "trials": [stored[0].1.clone()] });
    let planted = std::fs::read_dir(cache.join("envs"))
        .unwrap()
        .flatten()
        .any(|e| walkdir::WalkDir::new(e.path()).into_iter().flatten().any(|f| f.file_name() == "fixbench_forge.py"));
    assert!(planted, "the attack did not reach the environment; the test proves nothing");
    let t = &trials(&first)[0];
    assert_eq!(t["resolved"], false, "a planted plugin forged the grade: {t}");
    assert_eq!(t["passed"], 2, "the planted plugin took no part in grading: {t}");
    assert!(t["error"].as_str().is_some_and(|e| e.contains("environment")), "{t}");
    let (_, second) = run(&["--agent", "null"]);
    let null = &trials(&second)[0];
    assert_eq!(null["resolved"], false, "a later run's null agent resolved through the planted plugin: {null}");
    let still_planted = std::fs::read_dir(cache.join("envs"))
        .unwrap()
        .flatten()
        .any(|e| walkdir::WalkDir::new(e.path()).into_iter().flatten().any(|f| f.file_name() == "fixbench_forge.py"));
    assert!(!still_planted, "the changed environment was made again, not reused");
}

/// DEFENCE (expected to hold): with plugin autoload on (the problem has `requires`) and an
/// editable folder that is itself on `pythonpath` (`src/`), nothing the agent drops there but
/// code takes part: a pytest11 entry point in a `.dist-info`, a `.pth`, `sitecustomize.py`,
/// `conftest.py`, and pytest.ini / pyproject.toml / setup.cfg / tox.ini that deselect the
/// failing test.
#[test]
fn hostile18_dist_info_pth_sitecustomize_and_ini_files_in_an_editable_pythonpath_root_do_not_count() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let problems = work.path().join("problems");
    let p = shop_at(&problems, "src/shop", ATTRS);
    let m = std::fs::read_to_string(p.join("problem.toml"))
        .unwrap()
        .replace("editable = [\"src/shop/\"]", "editable = [\"src/\"]");
    std::fs::write(p.join("problem.toml"), m).unwrap();
    let forge = "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    rep = outcome.get_result()\n    rep.outcome = \"passed\"\n    rep.longrepr = None\n";
    let deselect = "addopts = --deselect tests/test_till.py::test_discount\n";
    let script = format!(
        "cat > src/fixbench_forge.py <<'EOF'\n{forge}EOF\n\
         cp src/fixbench_forge.py src/conftest.py\n\
         cp src/fixbench_forge.py src/sitecustomize.py\n\
         mkdir -p src/fixbench_forge-1.0.dist-info\n\
         printf 'Metadata-Version: 2.1\\nName: fixbench-forge\\nVersion: 1.0\\n' > src/fixbench_forge-1.0.dist-info/METADATA\n\
         printf '[pytest11]\\nforge = fixbench_forge\\n' > src/fixbench_forge-1.0.dist-info/entry_points.txt\n\
         echo 'import fixbench_forge' > src/zz_forge.pth\n\
         printf '[pytest]\\n{deselect}' > src/pytest.ini\n\
         printf '[tool:pytest]\\n{deselect}' > src/setup.cfg\n\
         printf '[pytest]\\n{deselect}' > src/tox.ini\n\
         printf '[tool.pytest.ini_options]\\naddopts = \"--deselect tests/test_till.py::test_discount\"\\n' > src/pyproject.toml\n"
    );
    let agent = work.path().join("agent.sh");
    std::fs::write(&agent, format!("#!/bin/sh\n{script}")).unwrap();
    let out = fixbench(work.path())
        .env("FIXBENCH_CACHE", &cache)
        .arg("run")
        .arg("--problems-dir")
        .arg(&problems)
        .args(["--problem", "shop", "--json", "--cmd"])
        .arg(format!("sh {}", agent.display()))
        .output()
        .unwrap();
    let run = json(&out);
    let t = &trials(&run)[0];
    assert_eq!(t["resolved"], false, "{t}");
    assert_eq!(t["passed"], 2, "{t}");
    assert_eq!(t["total"], 3, "{t}");
}
