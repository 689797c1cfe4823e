//! Problems from real codebases (#18): a library nobody here wrote, from its PyPI source
//! distribution, made into a problem with `new` + `inject`, validated, and run with the null
//! agent (its baseline) and the oracle (resolved); a single module with its tests at the root;
//! a requirement from PyPI in an environment of its own; a tests folder importing its own
//! helper; the problem's conftest.py used and the agent's never.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::util::*;

/// The sdists `scripts/fetch-test-libs.sh` downloads (scripts/test.sh runs it).
fn sdist(name: &str) -> PathBuf {
    let cache = std::env::var_os("FIXBENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/fixbench"));
    let p = cache.join("sdists").join(format!("{name}.tar.gz"));
    assert!(p.is_file(), "{} is missing: run scripts/fetch-test-libs.sh (scripts/test.sh does)", p.display());
    p
}

fn unpack(tarball: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    let ok = std::process::Command::new("tar").arg("xzf").arg(tarball).arg("-C").arg(into).status().unwrap();
    assert!(ok.success());
    let name = tarball.file_name().unwrap().to_string_lossy().trim_end_matches(".tar.gz").to_string();
    into.join(name)
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn validate_one(cwd: &Path, problems: &Path, name: &str) -> serde_json::Value {
    let out = run_expect(
        fixbench(cwd).arg("validate").arg("--problems-dir").arg(problems).args(["--problem", name, "--json"]),
        0,
    );
    json(&out)["problems"][0].clone()
}

/// The null agent's and the oracle's trial on `name`, as (null, oracle) records.
fn null_and_oracle(cwd: &Path, problems: &Path, name: &str) -> (serde_json::Value, serde_json::Value) {
    let out = run_expect(
        fixbench(cwd).arg("run").arg("--problems-dir").arg(problems).args([
            "--problem",
            name,
            "--agent",
            "null",
            "--agent",
            "oracle",
            "--json",
        ]),
        0,
    );
    let run = json(&out);
    let by = |agent: &str| trials(&run).iter().find(|t| t["agent"] == agent).unwrap().clone();
    (by("null"), by("oracle"))
}

#[test]
fn a_pypi_library_made_into_a_problem_by_new_and_inject_validates_and_runs() {
    let work = tempfile::tempdir().unwrap();
    let src = unpack(&sdist("cachetools-5.5.0"), &work.path().join("src"));
    let problems = work.path().join("problems");
    let t0 = Instant::now();
    let out = run_expect(
        fixbench(work.path()).args(["new", "cachetools", "--from"]).arg(&src).arg("--problems-dir").arg(&problems),
        0,
    );
    let t_new = t0.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("src/cachetools/") && said.contains("215 tests, all passing"), "{said}");
    let dir = problems.join("cachetools");
    let manifest = std::fs::read_to_string(dir.join("problem.toml")).unwrap();
    assert!(manifest.contains("editable = [\"src/cachetools/\"]") && manifest.contains("tests = 215"), "{manifest}");
    assert!(dir.join("reference/src/cachetools/__init__.py").is_file());
    assert!(!dir.join("src/cachetools.egg-info").exists(), "build metadata is not copied");

    let t1 = Instant::now();
    let out = run_expect(
        fixbench(work.path())
            .args(["inject", "cachetools", "--bugs", "3", "--seed", "7", "--problems-dir"])
            .arg(&problems),
        0,
    );
    let t_inject = t1.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("injected 3 bug(s)"), "{said}");
    let bugs = std::fs::read_to_string(dir.join("reference/bugs.toml")).unwrap();
    assert_eq!(bugs.matches("[[bug]]").count(), 3, "{bugs}");
    assert!(bugs.contains("file = \"src/cachetools/"), "files are relative to the problem folder: {bugs}");
    // The starter differs from the reference exactly where the bugs are.
    let starter = std::fs::read_to_string(dir.join("src/cachetools/__init__.py")).unwrap()
        + &std::fs::read_to_string(dir.join("src/cachetools/keys.py")).unwrap()
        + &std::fs::read_to_string(dir.join("src/cachetools/func.py")).unwrap();
    let reference = std::fs::read_to_string(dir.join("reference/src/cachetools/__init__.py")).unwrap()
        + &std::fs::read_to_string(dir.join("reference/src/cachetools/keys.py")).unwrap()
        + &std::fs::read_to_string(dir.join("reference/src/cachetools/func.py")).unwrap();
    assert_ne!(starter, reference);
    // The prompt tells symptoms, not locations.
    let prompt = std::fs::read_to_string(dir.join("PROBLEM.md")).unwrap();
    assert!(prompt.contains("tests fail") && prompt.contains("`tests."), "{prompt}");
    assert!(!prompt.contains("src/cachetools") && !prompt.contains(".py:"), "{prompt}");

    let t2 = Instant::now();
    let report = validate_one(work.path(), &problems, "cachetools");
    let t_validate = t2.elapsed().as_secs_f64();
    assert_eq!(report["ok"], true, "{report}");
    let baseline = u(&report["baseline"]);
    assert!(baseline < 215 && baseline > 0, "{report}");
    assert_eq!(report["starter_passed"], report["baseline"]);
    assert_eq!(report["reference_passed"], 215);
    assert!(report["bugs"].as_array().unwrap().iter().all(|b| !b["caught_by"].as_array().unwrap().is_empty()));
    assert!(report["suite_s"].as_f64().unwrap() > 0.0);
    eprintln!("cachetools: new {t_new:.1} s, inject {t_inject:.1} s, validate {t_validate:.1} s");

    let (null, oracle) = null_and_oracle(work.path(), &problems, "cachetools");
    assert_eq!(null["passed"].as_u64(), Some(baseline), "{null}");
    assert_eq!(null["resolved"], false);
    assert_eq!(oracle["resolved"], true, "{oracle}");
    assert_eq!(oracle["passed"], 215);
    let fixed = oracle["fixed"].as_array().unwrap().len() as u64;
    assert_eq!(fixed, 215 - baseline, "the oracle fixes exactly what the starter fails");
}

#[test]
fn a_harder_target_fails_more_tests_of_the_same_library() {
    let work = tempfile::tempdir().unwrap();
    let src = unpack(&sdist("cachetools-5.5.0"), &work.path().join("src"));
    let mut baselines = Vec::new();
    for (dir, target) in [("easy", "0.05"), ("hard", "0.5")] {
        let problems = work.path().join(dir);
        run_expect(
            fixbench(work.path()).args(["new", "cachetools", "--from"]).arg(&src).arg("--problems-dir").arg(&problems),
            0,
        );
        run_expect(
            fixbench(work.path())
                .args(["inject", "cachetools", "--bugs", "2", "--seed", "3", "--target-failing", target])
                .arg("--problems-dir")
                .arg(&problems),
            0,
        );
        let m = std::fs::read_to_string(problems.join("cachetools/problem.toml")).unwrap();
        let baseline: u32 = m.lines().find_map(|l| l.strip_prefix("baseline = ")).unwrap().parse().unwrap();
        baselines.push(baseline);
    }
    assert!(baselines[1] < baselines[0], "the hard variant's starter passes fewer tests: {baselines:?}");
}

/// A module and its tests at the root, with a conftest.py beside them.
fn single_module(root: &Path) {
    write(
        root,
        "slugs.py",
        "\"\"\"Slugs for titles.\"\"\"\n\n\ndef slugify(title, sep=\"-\", limit=40):\n    words = [w for w in title.lower().split() if w.isalnum()]\n    out = sep.join(words)\n    if len(out) > limit:\n        out = out[:limit].rstrip(sep)\n    return out\n\n\ndef is_slug(text):\n    return text != \"\" and all(c.isalnum() or c == \"-\" for c in text)\n",
    );
    write(root, "conftest.py", "import pytest\n\n\n@pytest.fixture\ndef title():\n    return \"Hello big World\"\n");
    write(
        root,
        "test_slugs.py",
        "from slugs import slugify, is_slug\n\n\ndef test_basic(title):\n    assert slugify(title) == \"hello-big-world\"\n\n\ndef test_sep(title):\n    assert slugify(title, sep=\"_\") == \"hello_big_world\"\n\n\ndef test_limit():\n    assert slugify(\"aaa bbb ccc\", limit=4) == \"aaa\"\n\n\ndef test_drops_symbols():\n    assert slugify(\"a & b\") == \"a-b\"\n\n\ndef test_is_slug():\n    assert is_slug(\"a-b\") and not is_slug(\"\") and not is_slug(\"a b\")\n",
    );
}

#[test]
fn a_single_module_with_tests_at_the_root_is_detected_and_inject_is_deterministic() {
    let work = tempfile::tempdir().unwrap();
    let repo_dir = work.path().join("slugs-repo");
    single_module(&repo_dir);
    let mut made = Vec::new();
    for dir in ["a", "b"] {
        let problems = work.path().join(dir);
        let out = run_expect(
            fixbench(work.path()).args(["new", "slugs", "--from"]).arg(&repo_dir).arg("--problems-dir").arg(&problems),
            0,
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("editable    slugs.py") && said.contains("conftest.py, test_slugs.py"), "{said}");
        run_expect(
            fixbench(work.path())
                .args(["inject", "slugs", "--bugs", "2", "--seed", "11", "--problems-dir"])
                .arg(&problems),
            0,
        );
        let p = problems.join("slugs");
        made.push((
            std::fs::read_to_string(p.join("slugs.py")).unwrap(),
            std::fs::read_to_string(p.join("reference/bugs.toml")).unwrap(),
            std::fs::read_to_string(p.join("problem.toml")).unwrap(),
        ));
    }
    assert_eq!(made[0], made[1], "the same seed, code and tests give the same problem");
    assert_ne!(made[0].0, std::fs::read_to_string(repo_dir.join("slugs.py")).unwrap());
    let problems = work.path().join("a");
    let report = validate_one(work.path(), &problems, "slugs");
    assert_eq!(report["ok"], true, "{report}");
    let (null, oracle) = null_and_oracle(work.path(), &problems, "slugs");
    assert_eq!(null["passed"], report["baseline"]);
    assert_eq!(oracle["resolved"], true, "{oracle}");

    // Another seed picks other bugs.
    let c = work.path().join("c");
    run_expect(fixbench(work.path()).args(["new", "slugs", "--from"]).arg(&repo_dir).arg("--problems-dir").arg(&c), 0);
    run_expect(
        fixbench(work.path()).args(["inject", "slugs", "--bugs", "2", "--seed", "12", "--problems-dir"]).arg(&c),
        0,
    );
    assert_ne!(std::fs::read_to_string(c.join("slugs/reference/bugs.toml")).unwrap(), made[0].1);
}

#[test]
fn a_broken_suite_is_refused_by_new_naming_the_failing_test() {
    let work = tempfile::tempdir().unwrap();
    let repo_dir = work.path().join("slugs-repo");
    single_module(&repo_dir);
    let t = std::fs::read_to_string(repo_dir.join("test_slugs.py")).unwrap().replace("\"aaa\"", "\"aaaa\"");
    std::fs::write(repo_dir.join("test_slugs.py"), t).unwrap();
    let problems = work.path().join("p");
    let out = run_expect(
        fixbench(work.path()).args(["new", "slugs", "--from"]).arg(&repo_dir).arg("--problems-dir").arg(&problems),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 5 test(s) do not pass") && err.contains("test_limit"), "{err}");
    assert!(!problems.join("slugs").exists(), "nothing is left behind");
}

/// A declared layout by hand: a package, tests importing their own helper module and using
/// the problem's conftest.py fixture, the reference under `reference/`.
fn shop(problems: &Path) -> PathBuf {
    let p = problems.join("shop");
    write(
        &p,
        "problem.toml",
        "difficulty = \"easy\"\ndescription = \"a till\"\ntests = 3\nbaseline = 2\neditable = [\"shop/\"]\ntest_paths = [\"tests/\"]\n",
    );
    write(&p, "PROBLEM.md", "Totals with a discount are wrong.\n");
    let till = "def total(prices, discount=0):\n    s = sum(prices)\n    return s - s * discount // 100\n";
    write(&p, "shop/__init__.py", &till.replace("s - s * discount", "s + s * discount"));
    write(&p, "reference/shop/__init__.py", till);
    write(&p, "reference/FIX.md", "discount added\n");
    write(
        &p,
        "reference/bugs.toml",
        "[[bug]]\nid = \"sign\"\nfile = \"shop/__init__.py\"\nsummary = \"adds the discount\"\nfixed = \"s - s * discount\"\nbroken = \"s + s * discount\"\ntests = [\"test_discount\"]\n",
    );
    write(&p, "tests/helpers.py", "def basket(*prices):\n    return list(prices)\n");
    write(&p, "tests/conftest.py", "import pytest\n\n\n@pytest.fixture\ndef rate():\n    return 10\n");
    write(
        &p,
        "tests/test_till.py",
        "from helpers import basket\nfrom shop import total\n\n\ndef test_plain():\n    assert total(basket(1, 2)) == 3\n\n\ndef test_empty():\n    assert total(basket()) == 0\n\n\ndef test_discount(rate):\n    assert total(basket(100, 100), rate) == 180\n",
    );
    p
}

#[test]
fn tests_importing_their_own_helper_with_the_problems_conftest_validate_and_resolve() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    shop(&problems);
    let report = validate_one(work.path(), &problems, "shop");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["bugs"][0]["caught_by"], serde_json::json!(["test_discount"]));
    let (null, oracle) = null_and_oracle(work.path(), &problems, "shop");
    assert_eq!(null["passed"], 2);
    assert_eq!(oracle["resolved"], true, "{oracle}");
}

#[test]
fn the_problems_conftest_is_used_and_the_agents_conftests_are_not() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    shop(&problems);
    // Every outcome forged to "passed", from the three places pytest would load it.
    let forge = "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    rep = outcome.get_result()\n    rep.outcome = \"passed\"\n\n\n@pytest.fixture\ndef rate():\n    return 0\n";
    let agent = work.path().join("agent.sh");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\nset -e\ncat > conftest.py <<'EOF'\n{forge}EOF\ncp conftest.py tests/conftest.py\ncp conftest.py shop/conftest.py\n\
             python3 -m pytest -q -p no:cacheprovider tests > forged.txt 2>&1 || true\ntail -n 1 forged.txt\n"
        ),
    )
    .unwrap();
    let out = run_expect(
        fixbench(work.path())
            .arg("run")
            .arg("--problems-dir")
            .arg(&problems)
            .args(["--problem", "shop", "--json", "--cmd"])
            .arg(format!("sh {}", agent.display())),
        0,
    );
    let run = json(&out);
    let t = &trials(&run)[0];
    assert_eq!(t["resolved"], false, "{t}");
    assert_eq!(t["passed"], 2, "the problem's fixture (rate = 10) ran against the buggy till: {t}");
    let failing: Vec<&serde_json::Value> =
        t["tests"].as_array().unwrap().iter().filter(|x| x["outcome"] != "passed").collect();
    assert_eq!(failing.len(), 1);
    assert!(failing[0]["name"].as_str().unwrap().ends_with("test_discount"), "{failing:?}");
}

/// A package whose code needs a PyPI requirement.
fn money_repo(root: &Path, requirement: &str) {
    write(
        root,
        "pyproject.toml",
        &format!("[project]\nname = \"money\"\nversion = \"1.0\"\ndescription = \"amounts in cents\"\ndependencies = [\"{requirement}\"]\n"),
    );
    write(
        root,
        "money/__init__.py",
        "import attrs\n\n\n@attrs.frozen\nclass Amount:\n    cents: int\n\n    def __add__(self, other):\n        return Amount(self.cents + other.cents)\n\n    def split(self, n):\n        share = self.cents // n\n        return [Amount(share)] * (n - 1) + [Amount(self.cents - share * (n - 1))]\n",
    );
    write(
        root,
        "tests/test_money.py",
        "import attrs\nfrom money import Amount\n\n\ndef test_version():\n    assert attrs.__version__ == \"23.2.0\"\n\n\ndef test_add():\n    assert Amount(5) + Amount(7) == Amount(12)\n\n\ndef test_split():\n    assert Amount(10).split(3) == [Amount(3), Amount(3), Amount(4)]\n\n\ndef test_split_sums():\n    parts = Amount(101).split(4)\n    assert sum(p.cents for p in parts) == 101\n",
    );
}

#[test]
fn a_requirement_from_pypi_gets_an_environment_graded_in_and_shown_read_only_to_the_agent() {
    let work = tempfile::tempdir().unwrap();
    let repo_dir = work.path().join("money-repo");
    money_repo(&repo_dir, "attrs==23.2.0");
    let problems = work.path().join("problems");
    let out = run_expect(
        fixbench(work.path()).args(["new", "money", "--from"]).arg(&repo_dir).arg("--problems-dir").arg(&problems),
        0,
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("requires    attrs==23.2.0") && said.contains("4 tests, all passing"), "{said}");
    run_expect(
        fixbench(work.path()).args(["inject", "money", "--bugs", "1", "--seed", "1", "--problems-dir"]).arg(&problems),
        0,
    );
    assert_eq!(validate_one(work.path(), &problems, "money")["ok"], true);

    // The agent finds the environment first on its PATH: it can run the tests, not change it.
    let agent = work.path().join("agent.sh");
    std::fs::write(
        &agent,
        "#!/bin/sh\npython -c 'import attrs, sys; print(\"ATTRS\", attrs.__version__)'\n\
         python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -n 1\n\
         if touch \"$VIRTUAL_ENV/planted\" 2>/dev/null; then echo WROTE-ENV; else echo ENV-READ-ONLY; fi\n",
    )
    .unwrap();
    let out = run_expect(
        fixbench(work.path())
            .arg("run")
            .arg("--problems-dir")
            .arg(&problems)
            .args(["--problem", "money", "--agent", "oracle", "--json", "--cmd"])
            .arg(format!("sh {}", agent.display())),
        0,
    );
    let run = json(&out);
    let cmd = trials(&run).iter().find(|t| t["agent"] != "oracle").unwrap();
    let oracle = trials(&run).iter().find(|t| t["agent"] == "oracle").unwrap();
    assert_eq!(oracle["resolved"], true, "graded in the environment: {oracle}");
    let run_dir = work.path().join("results").join(run["run_id"].as_str().unwrap());
    let stdout = std::fs::read_to_string(run_dir.join(cmd["paths"]["stdout"].as_str().unwrap())).unwrap();
    assert!(stdout.contains("ATTRS 23.2.0"), "{stdout}");
    assert!(stdout.contains("failed") && stdout.contains("passed"), "the agent ran the suite: {stdout}");
    assert!(stdout.contains("ENV-READ-ONLY") && !stdout.contains("WROTE-ENV"), "{stdout}");
}

#[test]
fn a_requirement_that_cannot_be_installed_stops_the_run_before_it_starts() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = shop(&problems);
    let m = std::fs::read_to_string(p.join("problem.toml")).unwrap();
    std::fs::write(p.join("problem.toml"), format!("{m}requires = [\"fixbench-no-such-package-zz==1.0\"]\n")).unwrap();
    let out =
        run_expect(fixbench(work.path()).arg("run").arg("--problems-dir").arg(&problems).args(["--agent", "null"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shop") && err.contains("fixbench-no-such-package-zz==1.0"), "{err}");
    let stored = std::fs::read_dir(work.path().join("results"))
        .map(|d| d.flatten().filter(|e| e.path().join("trials").exists()).count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no trial ran");
}

#[test]
fn validate_times_each_suite_and_warns_above_ten_seconds() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = shop(&problems);
    // Only the fixed code is slow, so only the reference's run pays the 10.5 s.
    let slow = "import time\n\n\ndef total(prices, discount=0):\n    s = sum(prices)\n    time.sleep(10.5 / 3)\n    return s - s * discount // 100\n";
    write(&p, "reference/shop/__init__.py", slow);
    write(&p, "shop/__init__.py", &slow.replace("    time.sleep(10.5 / 3)\n    return s - s", "    return s + s"));
    write(
        &p,
        "reference/bugs.toml",
        "[[bug]]\nid = \"sign\"\nfile = \"shop/__init__.py\"\nsummary = \"adds the discount\"\nfixed = \"    time.sleep(10.5 / 3)\\n    return s - s\"\nbroken = \"    return s + s\"\n",
    );
    let out = run_expect(
        fixbench(work.path()).arg("validate").arg("--problems-dir").arg(&problems).args(["--problem", "shop"]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(table.contains("(slow)"), "{table}");
    assert!(err.contains("warning: problem `shop`: its suite takes") && err.contains("over 10 s"), "{err}");
}

#[test]
fn a_pytest_plugin_in_requires_is_loaded_for_grading() {
    let work = tempfile::tempdir().unwrap();
    let problems = work.path().join("problems");
    let p = shop(&problems);
    let m = std::fs::read_to_string(p.join("problem.toml"))
        .unwrap()
        .replace("tests = 3", "tests = 4")
        .replace("baseline = 2", "baseline = 3");
    std::fs::write(p.join("problem.toml"), format!("{m}requires = [\"pytest-mock==3.14.0\"]\n")).unwrap();
    // `mocker` is pytest-mock's fixture: the plugin must be loaded (by its entry point, `-p`).
    write(
        &p,
        "tests/test_mocked.py",
        "import shop\n\n\ndef test_total_is_patched(mocker):\n    mocker.patch.object(shop, \"total\", return_value=7)\n    assert shop.total([1, 2]) == 7\n",
    );
    let report = validate_one(work.path(), &problems, "shop");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["reference_passed"], 4);
}
