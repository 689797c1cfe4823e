//! Agent presets without the real agents: `fixbench agents`, `--dry-run` of every preset, a
//! preset that is not installed, and a stand-in binary found in the local prefix (its
//! environment, generated config and the usage read back from it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const PRESETS: [&str; 8] = ["aider", "claude", "codex", "goose", "mini-swe-agent", "opencode", "pi", "qwen"];

/// A `.agents`-shaped folder, a HOME that must stay empty, and a PATH with only the system.
struct Env {
    agents: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { agents: tempfile::tempdir().unwrap(), home: tempfile::tempdir().unwrap() }
    }

    /// Puts an executable script named `name` in `<agents>/bin`.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let bin = self.agents.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn cmd(&self, sb: &Path) -> Command {
        let mut c = fixbench(sb);
        c.env("FIXBENCH_AGENTS_DIR", self.agents.path()).env("HOME", self.home.path()).env("PATH", "/usr/bin:/bin");
        c
    }

    fn assert_home_untouched(&self) {
        let left: Vec<_> = std::fs::read_dir(self.home.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "something wrote to the user's HOME: {left:?}");
    }
}

/// A stand-in for pi: prints its arguments and the environment it got, checks the generated
/// models.json, writes a session file with usage where `--session-dir` says, and tries to
/// write into $HOME (the trial's agent home, never the user's).
const FAKE_PI: &str = r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo "0.73.1" >&2; echo probed > "$HOME/probe-was-here"; exit 0; fi
for a in "$@"; do echo "arg: $a"; done
echo "env: HOME=$HOME"
echo "env: PI_CODING_AGENT_DIR=$PI_CODING_AGENT_DIR"
echo "env: PI_OFFLINE=$PI_OFFLINE"
echo "pwd: $(pwd)"
echo "models.json: $(tr -d ' \n' < "$PI_CODING_AGENT_DIR/models.json")"
while [ $# -gt 0 ]; do
  if [ "$1" = "--session-dir" ]; then dir="$2"; fi
  shift
done
mkdir -p "$dir/--work--"
echo '{"type":"session","id":"s"}' > "$dir/--work--/s.jsonl"
echo '{"type":"message","message":{"role":"assistant","usage":{"input":120,"output":30,"cacheRead":80,"cacheWrite":0},"stopReason":"toolUse"}}' >> "$dir/--work--/s.jsonl"
echo '{"type":"message","message":{"role":"assistant","usage":{"input":10,"output":5,"cacheRead":200,"cacheWrite":0},"stopReason":"stop"}}' >> "$dir/--work--/s.jsonl"
echo touched > "$HOME/agent-was-here"
"#;

fn agents_json(env: &Env, dir: &Path) -> Vec<Value> {
    let out = run_expect(env.cmd(dir).args(["agents", "--json"]), 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["agents"].as_array().unwrap().clone()
}

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

#[test]
fn agents_lists_builtins_and_presets_with_install_state_and_version() {
    let env = Env::new();
    let pi = env.script("pi", FAKE_PI);
    let dir = tempfile::tempdir().unwrap();
    let list = agents_json(&env, dir.path());

    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    for n in ["null", "oracle"].iter().chain(PRESETS.iter()) {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }
    for a in &list {
        assert!(a["command"].is_string() && a["installed"].is_boolean(), "{a}");
    }
    assert_eq!(entry(&list, "null")["installed"], true);
    let p = entry(&list, "pi");
    assert_eq!(p["installed"], true);
    assert_eq!(p["path"], pi.to_string_lossy().as_ref());
    assert_eq!(p["version"], "0.73.1", "pi prints its version on stderr");
    assert!(p["command"].as_str().unwrap().starts_with(&format!("{} --provider fixbench", pi.display())), "{p}");
    let g = entry(&list, "goose");
    assert_eq!(g["installed"], false);
    assert_eq!(g["version"], Value::Null);
    assert!(g["install"].as_str().unwrap().contains("github.com/block/goose/releases"), "{g}");
    env.assert_home_untouched();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the version probe ran in a throwaway folder");

    // The table says the same.
    let out = run_expect(env.cmd(dir.path()).args(["agents"]), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    let goose = text.lines().find(|l| l.contains("goose")).unwrap();
    assert!(goose.contains("not installed: download the goose CLI"), "{text}");
    let pi_line = text.lines().find(|l| l.starts_with("| pi ")).unwrap();
    assert!(pi_line.contains("0.73.1") && pi_line.contains("yes"), "{text}");
}

#[test]
fn harness_agents_are_listed_and_replace_a_preset_of_the_same_name() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("harness.toml"),
        "[agents.pi]\ncommand = \"sh -c 'exit 0' {prompt}\"\n[agents.mine]\ncommand = \"no-such-agent-xyz {prompt}\"\n",
    )
    .unwrap();
    let list = agents_json(&env, dir.path());
    let pi: Vec<&Value> = list.iter().filter(|a| a["name"] == "pi").collect();
    assert_eq!(pi.len(), 1);
    assert_eq!(pi[0]["source"], "harness.toml");
    assert_eq!(pi[0]["installed"], true, "sh is on PATH");
    let mine = entry(&list, "mine");
    assert_eq!((mine["installed"].as_bool(), mine["source"].as_str()), (Some(false), Some("harness.toml")));
}

/// The dry-run of `agent` on expr_calc against a server that need not exist.
fn dry_run(env: &Env, sb: &Sandbox, agent: &str) -> String {
    let out = run_expect(
        env.cmd(sb.path()).args([
            "run",
            "--agent",
            agent,
            "--problem",
            "expr_calc",
            "--server",
            "http://127.0.0.1:9",
            "--isolation",
            "none",
            "--dry-run",
        ]),
        0,
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dry_run_of_every_preset_shows_command_env_and_config_and_changes_nothing() {
    let env = Env::new();
    let pi = env.script("pi", FAKE_PI);
    let sb = Sandbox::new();
    let before = listing(sb.path());
    let home = "<tmp>/fixbench-expr_calc__{}__0/home";
    let proxy = "http://127.0.0.1:<proxy-port>/v1";
    for agent in PRESETS {
        let out = dry_run(&env, &sb, agent);
        let home = home.replace("{}", agent);
        assert!(out.contains(&format!("# trial expr_calc/{agent}/0")), "{out}");
        let command = out.lines().find_map(|l| l.strip_prefix("command: ")).unwrap_or_else(|| panic!("{out}"));
        assert!(command.contains("'{prompt}'"), "the prompt is shown as a placeholder: {command}");
        assert!(out.contains(&format!("env: HOME={home}")), "{out}");
        assert!(out.contains(&format!("env: FIXBENCH_BASE_URL={proxy}")), "{out}");
        assert!(out.contains(&format!("env: XDG_CONFIG_HOME={home}/.config")), "{out}");
        assert!(out.contains(&format!("env: XDG_CACHE_HOME={home}/.cache")), "{out}");
        assert!(!out.contains("{agent_home}") && !out.contains("{base_url}") && !out.contains("{model}"), "{out}");
        let installed = agent == "pi";
        assert_eq!(out.contains("note: not installed: "), !installed, "{agent}: {out}");
        match agent {
            "pi" => {
                assert!(
                    command.starts_with(&format!("{} --provider fixbench --model local", pi.display())),
                    "{command}"
                );
                assert!(out.contains(&format!("env: PI_CODING_AGENT_DIR={home}/pi")), "{out}");
                assert!(out.contains("env: PI_OFFLINE=1"), "{out}");
                assert!(out.contains(&format!("file: {home}/pi/models.json")), "{out}");
                assert!(out.contains(&format!("file: {home}/pi/settings.json")), "{out}");
                assert!(out.contains("\"compaction\": {\"enabled\": false}"), "{out}");
                assert!(out.contains(&format!("\"baseUrl\": \"{proxy}\"")), "{out}");
            }
            "mini-swe-agent" => {
                assert!(command.starts_with("mini --yolo --exit-immediately"), "{command}");
                assert!(out.contains("env: MSWEA_CONFIGURED=true"), "no setup wizard: {out}");
                assert!(out.contains(&format!("env: MSWEA_GLOBAL_CONFIG_DIR={home}/mini")), "{out}");
                assert!(out.contains(&format!("api_base: \"{proxy}\"")), "{out}");
            }
            "opencode" => {
                assert!(out.contains(&format!("env: OPENCODE_CONFIG={home}/opencode/opencode.json")), "{out}");
                assert!(out.contains("env: OPENCODE_DISABLE_AUTOUPDATE=1"), "{out}");
                assert!(out.contains(&format!("\"baseURL\": \"{proxy}\"")), "{out}");
            }
            "aider" => {
                assert!(command.contains(&format!("--openai-api-base '{proxy}'")), "{command}");
                assert!(command.contains("--analytics-disable") && command.contains("--no-check-update"), "{command}");
            }
            "codex" => {
                assert!(out.contains(&format!("env: CODEX_HOME={home}/codex")), "{out}");
                assert!(out.contains(&format!("base_url = \"{proxy}\"")), "{out}");
                assert!(out.contains("check_for_update_on_startup = false"), "{out}");
            }
            "claude" => {
                assert!(out.contains("env: ANTHROPIC_BASE_URL=http://127.0.0.1:<proxy-port>\n"), "no /v1: {out}");
                assert!(out.contains(&format!("env: CLAUDE_CONFIG_DIR={home}/claude")), "{out}");
                assert!(out.contains("env: DISABLE_TELEMETRY=1"), "{out}");
            }
            "goose" => {
                assert!(out.contains("note: not installed: download the goose CLI"), "{out}");
                assert!(out.contains("env: GOOSE_TELEMETRY_ENABLED=false"), "{out}");
            }
            "qwen" => {
                assert!(command.contains(&format!("--openai-base-url '{proxy}'")), "{command}");
                assert!(out.contains(&format!("file: {home}/.qwen/settings.json")), "{out}");
            }
            other => panic!("untested preset {other}"),
        }
    }
    assert_eq!(listing(sb.path()), before, "the dry-run wrote into the project");
    env.assert_home_untouched();
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir(dir);
    v.sort();
    v
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_preset_that_is_not_installed_is_recorded_and_the_run_goes_on() {
    let env = Env::new();
    let sb = Sandbox::new();
    let out = run_expect(
        env.cmd(sb.path()).args([
            "run",
            "--agent",
            "goose",
            "--agent",
            "oracle",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let trials = run["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{run:#}");
    let goose = &trials[0];
    assert_eq!(goose["agent"], "goose");
    let error = goose["error"].as_str().unwrap();
    assert!(
        error.starts_with("not installed: download the goose CLI from https://github.com/block/goose/releases"),
        "{error}"
    );
    assert_eq!(goose["passed"], goose["baseline"], "graded at the starter's score");
    assert_eq!(goose["total"], 15);
    assert_eq!(goose["agent_version"], Value::Null);
    assert_eq!(trials[1]["resolved"], true, "the oracle still ran after it");
    env.assert_home_untouched();
}

#[test]
fn an_installed_preset_gets_its_own_home_config_and_its_usage_is_read() {
    let env = Env::new();
    env.script("pi", FAKE_PI);
    let sb = Sandbox::new();
    let out = run_expect(
        env.cmd(sb.path()).args([
            "run",
            "--agent",
            "pi",
            "--problem",
            "expr_calc",
            "--isolation",
            "none",
            "--model",
            "tiny",
            "--json",
        ]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &run["trials"][0];
    assert_eq!(t["exit_code"], 0, "{t:#}");
    assert_eq!(t["error"], Value::Null, "{t:#}");
    assert_eq!(t["agent_version"], "0.73.1");
    let usage = &t["agent_usage"];
    assert_eq!(usage["format"], "pi");
    assert_eq!((usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()), (Some(410), Some(35)), "{usage}");
    assert_eq!((usage["cached_tokens"].as_u64(), usage["model_calls"].as_u64()), (Some(280), Some(2)), "{usage}");
    assert_eq!(usage["stop_reason"], "stop");

    let stdout = std::fs::read_to_string(
        sb.results().join(run["run_id"].as_str().unwrap()).join(t["paths"]["stdout"].as_str().unwrap()),
    )
    .unwrap();
    let prompt = std::fs::read_to_string(sb.path().join("problems/expr_calc/PROBLEM.md")).unwrap();
    let first_prompt_line = prompt.lines().next().unwrap();
    assert!(stdout.contains(&format!("arg: {first_prompt_line}")), "the prompt is one argument: {stdout}");
    assert!(stdout.contains("arg: tiny"), "--model reaches the command: {stdout}");
    let home = stdout.lines().find_map(|l| l.strip_prefix("env: HOME=")).unwrap();
    assert!(home.contains("fixbench-expr_calc__pi__0") && home.ends_with("/home"), "{stdout}");
    assert!(stdout.contains(&format!("env: PI_CODING_AGENT_DIR={home}/pi")), "{stdout}");
    assert!(stdout.contains("env: PI_OFFLINE=1"), "{stdout}");
    assert!(stdout.contains("\"id\":\"tiny\""), "models.json was generated with the model: {stdout}");
    assert!(!Path::new(home).exists(), "the agent home is removed after the trial");
    env.assert_home_untouched();
}

/// `fixbench agents` runs each version probe as a run would: in the sandbox by default, where
/// it can write nothing outside its throwaway folders; unisolated only when asked; and not at
/// all when the sandbox cannot start.
#[test]
fn agents_probes_versions_in_the_sandbox() {
    let env = Env::new();
    let dir = Sandbox::outside_tmp();
    let target = dir.path().join("probe-was-here");
    let trespass = repo().join("tests/agents/trespass.sh");
    std::fs::write(
        dir.path().join("harness.toml"),
        format!("[agents.curious]\ncommand = \"true\"\nversion = \"{} {}\"\n", trespass.display(), target.display()),
    )
    .unwrap();
    let version = |extra: &[&str], bwrap: Option<&str>| {
        let mut c = env.cmd(dir.path());
        if let Some(b) = bwrap {
            c.env("FIXBENCH_BWRAP", b);
        }
        let out = run_expect(c.args(["agents", "--json"]).args(extra), 0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            entry(v["agents"].as_array().unwrap(), "curious")["version"].clone(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (v, _) = version(&[], None);
    assert_eq!(v, format!("refused {}", target.display()));
    assert!(!target.exists(), "the probe wrote outside its sandbox");

    let (v, note) = version(&[], Some("/nonexistent/bwrap"));
    assert_eq!(v, Value::Null, "no sandbox, no probe");
    assert!(note.contains("versions not probed") && note.contains("--isolation none"), "{note}");
    assert!(!target.exists());

    let (v, _) = version(&["--isolation", "none"], None);
    assert_eq!(v, format!("wrote {}", target.display()));
    assert!(target.exists());
}
