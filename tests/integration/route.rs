//! `fixbench route` on real runs whose outcomes are known: the oracle resolves every trial, the
//! null agent none. `local` is the oracle on expr_calc and mini_sheet and the null agent on
//! mini_stackvm; `frontier` is the oracle on all three. Four repeats each: 4 of 4 has a 95%
//! Wilson lower bound of 0.51, 8 of 8 (a tag's two problems) 0.68, 4 of 8 0.22. These
//! trials talk to no model and record no tokens, so every cost is missing (`-`). The last
//! test prices real tokens: its trials talk to a real llama-server through the proxy, and
//! every dollar it expects is computed from the stored requests' counts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

const RUNS: [&str; 3] = ["local-a", "local-b", "frontier"];

fn store() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = process_dir("route");
        std::fs::create_dir_all(&dir).unwrap();
        copy_dir(&repo().join("problems"), &dir.join("problems"));
        for p in ["expr_calc", "mini_stackvm"] {
            let toml = dir.join("problems").join(p).join("problem.toml");
            let text = std::fs::read_to_string(&toml).unwrap() + "tags = [\"refactor\"]\n";
            std::fs::write(&toml, text).unwrap();
        }
        std::fs::write(
            dir.join("harness.toml"),
            "[prices.local]\ninput = 0\noutput = 0\n\n[prices.frontier]\ninput = 3\ncached_input = 0.3\noutput = 15\n",
        )
        .unwrap();
        let runs: [(&str, &str, &str, &[&str]); 3] = [
            ("local-a", "oracle", "local", &["expr_calc", "mini_sheet"]),
            ("local-b", "null", "local", &["mini_stackvm"]),
            ("frontier", "oracle", "frontier", &["expr_calc", "mini_sheet", "mini_stackvm"]),
        ];
        for (id, agent, model, problems) in runs {
            let mut cmd = fixbench(&dir);
            cmd.args(["run", "--run-id", id, "--agent", agent, "--label", &format!("model={model}")]).args([
                "--repeat",
                "4",
                "--isolation",
                "none",
            ]);
            for p in problems {
                cmd.args(["--problem", p]);
            }
            run_expect(&mut cmd, 0);
        }
        dir
    })
}

fn route(extra: &[&str], code: i32) -> std::process::Output {
    run_expect(fixbench(store()).arg("route").args(RUNS).args(extra), code)
}

fn json(extra: &[&str]) -> Value {
    let out = route(&[extra, &["--format", "json"]].concat(), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn subject<'a>(r: &'a Value, list: &str, name: &str) -> &'a Value {
    r[list].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no {name} in {r}"))
}

fn option<'a>(s: &'a Value, config: &str) -> &'a Value {
    s["options"].as_array().unwrap().iter().find(|o| o["configuration"] == config).unwrap()
}

#[test]
fn route_chooses_per_problem_and_tag_at_the_lower_bound() {
    let r = json(&["--bar", "0.5"]);
    assert_eq!(r["by"], "model");
    assert_eq!(r["configurations"], serde_json::json!(["local", "frontier"]));
    // mini_stackvm: only frontier resolves it.
    let vm = subject(&r, "problems", "mini_stackvm");
    assert_eq!(vm["choice"], serde_json::json!({"kind": "chosen", "configuration": "frontier"}));
    assert_eq!(
        (option(vm, "local")["resolved"].as_u64(), option(vm, "local")["meets_bar"].as_bool()),
        (Some(0), Some(false))
    );
    // expr_calc: both meet the bar, neither has a cost: which is cheaper is not made up.
    let expr = subject(&r, "problems", "expr_calc");
    assert_eq!(expr["choice"], serde_json::json!({"kind": "unpriced", "meeting": ["local", "frontier"]}));
    for o in expr["options"].as_array().unwrap() {
        let lower = o["lower"].as_f64().unwrap();
        assert!(o["meets_bar"].as_bool().unwrap() && (0.5..0.52).contains(&lower), "{o}");
        assert!(o["cost_per_trial"].is_null(), "{o}");
        assert_eq!(o["cost_missing"], serde_json::json!(["trials without token counts"]));
    }
    // The tag pools expr_calc and mini_stackvm: local 4 of 8 is under the bar, frontier 8 of 8 meets it.
    let tag = subject(&r, "tags", "refactor");
    assert_eq!(tag["problems"], serde_json::json!(["expr_calc", "mini_stackvm"]));
    assert_eq!(tag["choice"]["configuration"], "frontier");
    assert_eq!(
        (option(tag, "local")["trials"].as_u64(), option(tag, "local")["resolved"].as_u64()),
        (Some(8), Some(4))
    );
    assert!(option(tag, "local")["lower"].as_f64().unwrap() < 0.5);
    assert_eq!(r["tags"].as_array().unwrap().len(), 1, "mini_sheet has no tag");
    // frontier meets the bar on all three problems: everything goes to it, and the cost is unknown.
    let s = &r["summary"];
    assert_eq!((s["escalation"].as_str(), s["escalation_meets"].as_u64()), (Some("frontier"), Some(3)));
    assert!(s["routed_per_100"].is_null() && s["escalation_per_100"].is_null(), "{s}");
    let line = s["line"].as_str().unwrap();
    assert!(line.starts_with("frontier on all 3 problems") && line.contains("cost unknown"), "{line}");
    assert!(line.contains("`frontier`: trials without token counts"), "{line}");
}

#[test]
fn route_says_when_nothing_meets_the_bar_and_names_the_best() {
    // At the default bar 0.8, 4 of 4 (lower bound 0.51) is not enough.
    let r = json(&[]);
    let vm = subject(&r, "problems", "mini_stackvm");
    assert_eq!(vm["choice"]["kind"], "none_meets");
    assert_eq!(vm["choice"]["best"], "frontier");
    assert_eq!(r["summary"]["unmet"].as_array().unwrap().len(), 3);
    let out = route(&[], 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mini_stackvm: no configuration meets the bar 0.80; the best is frontier, lower bound 0.51"),
        "{text}"
    );
    // Missing costs are `-`, never 0.
    assert!(text.contains(" - ") && !text.contains("$0.00"), "{text}");
    assert!(text.contains("routing: "), "{text}");
}

#[test]
fn route_markdown_and_grouping_by_agent() {
    let out = route(&["--bar", "0.5", "--format", "markdown"], 0);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("Routing by model over local-a, local-b, frontier: bar 0.50"), "{md}");
    assert!(md.contains("### Problems\n\n| problem | configuration | trials | resolved | 95% interval | cost/trial | wall/trial | route |\n|---|"), "{md}");
    assert!(md.contains("| mini_stackvm | local | 4 | 0/4 (0%) |"), "{md}");
    assert!(md.contains("| frontier | 4 | 4/4 (100%) | 0.51–1.00 | - |"), "{md}");
    assert!(md.contains("### Tags\n\n| tag |") && md.contains("| refactor | local | 8 | 4/8 (50%) |"), "{md}");
    assert!(md.contains("- expr_calc: local, frontier meet the bar, but which is cheapest is unknown: `local`: trials without token counts; `frontier`: trials without token counts"), "{md}");
    assert!(md.contains("\n**Routing:** frontier on all 3 problems"), "{md}");
    // By agent, the oracle's trials of expr_calc pool across runs: 8 of 8.
    let r = json(&["--bar", "0.5", "--by", "agent"]);
    let expr = subject(&r, "problems", "expr_calc");
    assert_eq!(expr["choice"]["configuration"], "oracle");
    assert_eq!(option(expr, "oracle")["trials"], 8);
}

#[test]
fn route_bad_input_names_what_to_fix() {
    let err = |args: &[&str]| {
        let out = run_expect(fixbench(store()).arg("route").args(args), 2);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err(&["no-such-run"]);
    assert!(e.contains("no-such-run"), "{e}");
    let e = err(&["frontier", "--by", "colour"]);
    assert!(e.contains("colour") && e.contains("label:KEY"), "{e}");
    let e = err(&["frontier", "--by", "label:flags"]);
    assert!(e.contains("no run has the label `flags` (theirs are `model`)"), "{e}");
    let e = err(&["frontier", "--bar", "1.5"]);
    assert!(e.contains("--bar 1.5") && e.contains("between 0 and 1"), "{e}");
    let bad = store().join("bad-prices.toml");
    std::fs::write(&bad, "[prices.frontier]\ninput = 3\noutput = -15\n").unwrap();
    let e = err(&["frontier", "--config", bad.to_str().unwrap()]);
    assert!(e.contains("bad-prices.toml: `prices.\"frontier\".output` is -15") && e.contains("0 or more"), "{e}");
}

/// The dollars of one stored trial at the frontier's price, from its requests' own counts:
/// `prompt_n` fresh prompt tokens at $3, `cache_n` cached ones at $0.30 and `predicted_n`
/// generated ones at $15 per million.
fn frontier_dollars(t: &Value) -> f64 {
    let reqs = requests(t);
    assert!(!reqs.is_empty(), "{t:#}");
    let mut sum = 0.0;
    for r in reqs {
        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} uncounted: {r}")) as f64;
        sum += n("prompt_n") * 3.0 + r["cache_n"].as_u64().unwrap_or(0) as f64 * 0.3 + n("predicted_n") * 15.0;
    }
    sum / 1e6
}

#[test]
fn route_prices_real_tokens_and_keeps_the_cheap_configuration_where_it_meets_the_bar() {
    // A real llama-server; the scripted agent holds a two-turn conversation with it (the second
    // turn reads the first from the prompt cache), then copies the reference fix in or not.
    // `local` (free) fixes expr_calc only; `frontier` ($3 / $0.30 / $15) fixes both.
    let server = crate::llama::LlamaServer::start(&[]);
    let dir = process_dir("route-priced");
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(&repo().join("problems"), &dir.join("problems"));
    std::fs::write(
        dir.join("harness.toml"),
        "[prices.local]\ninput = 0\noutput = 0\n\n[prices.frontier]\ninput = 3\ncached_input = 0.3\noutput = 15\n",
    )
    .unwrap();
    let talk = crate::llama::multiturn_cmd("--turns 2 --max-tokens 8");
    let fixing = |p: &str| {
        let reference = dir.join("problems").join(p).join(format!("{p}.reference"));
        format!("sh -c '{talk} && cp {}/*.py {p}/'", reference.display())
    };
    let runs = [
        ("local-expr", "local", "expr_calc", fixing("expr_calc")),
        ("local-vm", "local", "mini_stackvm", talk.clone()),
        ("frontier-expr", "frontier", "expr_calc", fixing("expr_calc")),
        ("frontier-vm", "frontier", "mini_stackvm", fixing("mini_stackvm")),
    ];
    for (id, model, problem, cmd) in &runs {
        let mut c = fixbench(&dir);
        c.args(["run", "--run-id", id, "--server", &server.url(), "--problem", problem, "--cmd", cmd]);
        c.args(["--label", &format!("model={model}"), "--repeat", "2", "--isolation", "none", "-j", "1"]);
        run_expect(&mut c, 0);
    }
    let stored = |id: &str| read_run(&dir.join("results").join(id));
    // What each configuration's trials of a problem cost on average, from the records.
    let frontier = |id: &str| {
        let run = stored(id);
        let ts = trials(&run);
        assert_eq!(ts.len(), 2);
        for t in ts {
            assert_eq!(t["resolved"], true, "{t:#}");
            assert!(requests(t).iter().any(|r| r["cache_n"].as_u64().unwrap_or(0) > 0), "turn 2 hit the cache: {t:#}");
        }
        ts.iter().map(frontier_dollars).sum::<f64>() / 2.0
    };
    let (f_expr, f_vm) = (frontier("frontier-expr"), frontier("frontier-vm"));
    assert!(f_expr > 0.0 && f_vm > 0.0);

    let ids: Vec<&str> = runs.iter().map(|r| r.0).collect();
    let out = run_expect(fixbench(&dir).arg("route").args(&ids).args(["--bar", "0.3", "--format", "json"]), 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |got: &Value, want: f64| {
        let got = got.as_f64().unwrap_or_else(|| panic!("no cost: {got}"));
        assert!((got - want).abs() <= 1e-12 * want.max(1.0), "{got} != {want}");
    };
    // expr_calc: both resolve 2 of 2 (lower bound 0.34); the free one is chosen.
    let expr = subject(&r, "problems", "expr_calc");
    assert_eq!(expr["choice"], serde_json::json!({"kind": "chosen", "configuration": "local"}), "{expr:#}");
    assert_eq!(option(expr, "local")["cost_per_trial"].as_f64(), Some(0.0), "a free model costs exactly 0: {expr:#}");
    close(&option(expr, "frontier")["cost_per_trial"], f_expr);
    // mini_stackvm: only the frontier fixes it.
    let vm = subject(&r, "problems", "mini_stackvm");
    assert_eq!(vm["choice"], serde_json::json!({"kind": "chosen", "configuration": "frontier"}), "{vm:#}");
    assert_eq!(option(vm, "local")["resolved"], 0, "{vm:#}");
    close(&option(vm, "frontier")["cost_per_trial"], f_vm);
    // Each problem weighs its 4 trials: routed = (0·4 + f_vm·4) / 8 per trial, all-frontier =
    // (f_expr·4 + f_vm·4) / 8.
    let s = &r["summary"];
    assert_eq!(s["escalation"], "frontier", "{s:#}");
    close(&s["routed_per_100"], f_vm / 2.0 * 100.0);
    close(&s["escalation_per_100"], (f_expr + f_vm) / 2.0 * 100.0);
    let line = s["line"].as_str().unwrap();
    let money = |d: f64| if d < 0.01 { format!("${d:.4}") } else { format!("${d:.2}") };
    let want = format!(
        "local on 1 of 2 problems (50% of trials), the rest to frontier, {} per 100 trials instead of {} all on frontier",
        money(f_vm / 2.0 * 100.0),
        money((f_expr + f_vm) / 2.0 * 100.0)
    );
    assert_eq!(line, want, "{s:#}");
}
