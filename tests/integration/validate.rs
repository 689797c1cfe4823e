//! `fixbench validate` on the shipped problems and on broken ones.

use crate::util::*;

#[test]
fn shipped_problems_are_sound() {
    let out = run_expect(fixbench(&repo()).args(["validate", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let names: Vec<&str> = problems.iter().map(|p| p["problem"].as_str().unwrap()).collect();
    assert_eq!(names, ["expr_calc", "mini_sheet", "mini_stackvm"]);
    for p in problems {
        assert_eq!(p["ok"], true, "{p}");
        assert_eq!(p["starter_passed"], p["baseline"], "{p}");
        assert_eq!(p["reference_passed"], p["tests"], "{p}");
    }
    let expr = &problems[0];
    assert_eq!((expr["tests"].as_u64(), expr["baseline"].as_u64()), (Some(15), Some(11)));
    let sheet = &problems[1];
    assert_eq!((sheet["tests"].as_u64(), sheet["baseline"].as_u64()), (Some(24), Some(12)));
}

#[test]
fn an_uncaught_bug_and_a_wrong_baseline_fail_validation() {
    let sb = Sandbox::new();
    let p = sb.path().join("problems/expr_calc");
    // A baseline that does not match what the starter passes.
    let toml = std::fs::read_to_string(p.join("problem.toml")).unwrap().replace("baseline = 11", "baseline = 10");
    std::fs::write(p.join("problem.toml"), toml).unwrap();
    // A "bug" no test can see: a change to a docstring-free comment line appended to bugs.toml.
    let reference = p.join("expr_calc.reference/evaluator.py");
    let mut src = std::fs::read_to_string(&reference).unwrap();
    src.push_str("\n_UNUSED = 1\n");
    std::fs::write(&reference, &src).unwrap();
    let starter = p.join("expr_calc/evaluator.py");
    let mut s = std::fs::read_to_string(&starter).unwrap();
    s.push_str("\n_UNUSED = 2\n");
    std::fs::write(&starter, &s).unwrap();
    let mut bugs = std::fs::read_to_string(p.join("expr_calc.reference/bugs.toml")).unwrap();
    bugs.push_str("\n[[bug]]\nid = \"invisible\"\nfile = \"evaluator.py\"\nsummary = \"x\"\nfixed = \"_UNUSED = 1\"\nbroken = \"_UNUSED = 2\"\n");
    std::fs::write(p.join("expr_calc.reference/bugs.toml"), bugs).unwrap();

    let out = run_expect(fixbench(sb.path()).args(["validate", "--problem", "expr_calc", "--json"]), 4);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = v["problems"][0]["reasons"].to_string();
    assert!(reasons.contains("passes 11 of 15 tests; expected 10"), "{reasons}");
    assert!(reasons.contains("bug `invisible`") && reasons.contains("caught by no test"), "{reasons}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expr_calc"), "{stderr}");
}

#[test]
fn a_starter_difference_not_listed_as_a_bug_fails_validation() {
    let sb = Sandbox::new();
    let p = sb.path().join("problems/expr_calc/expr_calc/__init__.py");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str("\n# an unlisted edit\n");
    std::fs::write(&p, s).unwrap();
    let out = run_expect(fixbench(sb.path()).args(["validate", "--problem", "expr_calc", "--json"]), 4);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("differs from the starter") && text.contains("__init__.py"), "{text}");
}

#[test]
fn unknown_key_in_problem_toml_is_named() {
    let sb = Sandbox::new();
    let p = sb.path().join("problems/expr_calc/problem.toml");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str("author = \"me\"\n");
    std::fs::write(&p, s).unwrap();
    let out = run_expect(fixbench(sb.path()).args(["run", "--agent", "null", "--isolation", "none"]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("problem.toml") && err.contains("unknown field `author`") && err.contains("line"), "{err}");
}
