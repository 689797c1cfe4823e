//! harness.toml's settings reach every command (issue #14, item 2). Each command, given
//! `--config FILE` from a folder that is not the file's, or finding `./harness.toml` in the
//! current folder, uses the file's `run.results`, `run.problems_dir` and `run.python` (relative
//! to the file's folder) where it has a use for them, and never the built-in defaults
//! `results/`, `problems/` and `.venv/bin/python`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::llama;
use crate::util::*;

/// The two ways a command finds its harness file.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `--config ../conf/harness.toml`, from `work/`.
    Flag,
    /// `./harness.toml`, from `conf/`.
    Cwd,
}

const BOTH: [Via; 2] = [Via::Flag, Via::Cwd];

/// A temp folder in which every built-in default is the wrong place:
///
/// - `work/`: the current folder of `Via::Flag`, empty;
/// - `conf/harness.toml`: `[run]` with `results = "store"`, `problems_dir = "probs"`,
///   `python = "py/python"`, and an agent `mine` of its own;
/// - `conf/probs/tiny`: the only problem;
/// - `conf/py/python`: the grading Python behind a wrapper that notes each start in `conf/py/used`;
/// - `other/harness.toml`: a harness file whose results folder, `other/nothing`, holds no run.
struct Layout {
    tmp: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        Layout::with_run_keys("")
    }

    /// `extra` follows conf/harness.toml's `[run]` keys (it may open a table of its own).
    fn with_run_keys(extra: &str) -> Layout {
        let layout = Layout { tmp: tempfile::tempdir().unwrap() };
        let conf = layout.conf();
        std::fs::create_dir_all(layout.work()).unwrap();
        std::fs::create_dir_all(conf.join("py")).unwrap();
        tiny_problem(&conf, TINY_TESTS, 2);
        std::fs::rename(conf.join("problems"), conf.join("probs")).unwrap();
        write_script(
            &conf.join("py/python"),
            &format!("echo started >> '{}'\nexec '{}' \"$@\"\n", layout.python_used().display(), python().display()),
        );
        std::fs::write(
            conf.join("harness.toml"),
            format!(
                "[run]\nresults = \"store\"\nproblems_dir = \"probs\"\npython = \"py/python\"\n{extra}\n\n\
                 [agents.mine]\ncommand = \"mine-agent --message {{prompt}}\"\n"
            ),
        )
        .unwrap();
        std::fs::create_dir_all(layout.path("other")).unwrap();
        std::fs::write(layout.other_config(), "[run]\nresults = \"nothing\"\n").unwrap();
        layout
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    fn work(&self) -> PathBuf {
        self.path("work")
    }
    fn conf(&self) -> PathBuf {
        self.path("conf")
    }
    /// The results folder conf/harness.toml names.
    fn store(&self) -> PathBuf {
        self.path("conf/store")
    }
    fn python_used(&self) -> PathBuf {
        self.path("conf/py/used")
    }
    fn other_config(&self) -> PathBuf {
        self.path("other/harness.toml")
    }

    /// `fixbench ARGS` finding conf/harness.toml `via` the flag or the current folder, with no
    /// `FIXBENCH_PYTHON` (the environment outranks the file).
    fn cmd(&self, via: Via, args: &[&str]) -> Command {
        let mut c = match via {
            Via::Flag => {
                let mut c = fixbench(&self.work());
                c.args(args).args(["--config", "../conf/harness.toml"]);
                c
            }
            Via::Cwd => {
                let mut c = fixbench(&self.conf());
                c.args(args);
                c
            }
        };
        c.env_remove("FIXBENCH_PYTHON");
        c
    }

    /// A copy of [`stored_run`] in conf/store, the only run anywhere here; returns its id.
    fn with_stored_run(self) -> (Layout, String) {
        let (dir, id) = stored_run();
        copy_dir(dir, &self.store().join(id));
        (self, id.clone())
    }

    /// No defaults were used: nothing in `results/` beside the current folders.
    fn assert_no_default_results(&self) {
        for dir in [self.work(), self.conf()] {
            assert!(!dir.join("results").exists(), "{} was written", dir.join("results").display());
        }
    }

    /// `args` with `--config` naming other/harness.toml, whose results folder holds no run:
    /// the command exits 2 and names that folder.
    fn fails_on_the_other_store(&self, args: &[&str]) {
        let out = run_expect(fixbench(&self.work()).args(args).arg("--config").arg(self.other_config()), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("other/nothing"), "{args:?}: the error names the folder looked in: {err}");
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A real run of `tiny` by `null` and `oracle`, made once per test process with explicit flags
/// (so that it does not depend on what these tests check); returns its folder and id.
fn stored_run() -> &'static (PathBuf, String) {
    static RUN: OnceLock<(PathBuf, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = process_dir("settings-run");
        tiny_problem(&dir, TINY_TESTS, 2);
        run_expect(
            fixbench(&dir).args([
                "run",
                "--agent",
                "null",
                "--agent",
                "oracle",
                "--isolation",
                "none",
                "--grade-isolation",
                "none",
                "--results",
                "results",
                "--problems-dir",
                "problems",
            ]),
            0,
        );
        let runs = runs_in(&dir.join("results"));
        assert_eq!(runs.len(), 1);
        let id = runs[0]["run_id"].as_str().unwrap().to_string();
        (dir.join("results").join(&id), id)
    })
}

/// The runs stored in `results`, each with its trials.
fn runs_in(results: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(results) else { return vec![] };
    entries.flatten().map(|e| e.path()).filter(|dir| dir.join("run.json").is_file()).map(|dir| read_run(&dir)).collect()
}

/// `stored` (a path a run record holds) names the same file or folder as `want`.
fn same_path(stored: &Value, want: &Path) -> bool {
    let stored = PathBuf::from(stored.as_str().unwrap_or_default());
    stored.canonicalize().ok() == Some(want.canonicalize().unwrap())
}

#[test]
fn run_stores_its_run_in_harness_tomls_results_and_grades_its_problems_with_its_python() {
    for via in BOTH {
        let l = Layout::new();
        let out = run_expect(
            &mut l.cmd(
                via,
                &["run", "--agent", "null", "--agent", "oracle", "--isolation", "none", "--grade-isolation", "none"],
            ),
            0,
        );
        let runs = runs_in(&l.store());
        assert_eq!(runs.len(), 1, "{via:?}: one run in conf/store: {}", stderr(&out));
        l.assert_no_default_results();
        let c = &runs[0]["config"];
        assert!(same_path(&c["problems_dir"], &l.path("conf/probs")), "{via:?}: {c}");
        assert_eq!(c["problems"], serde_json::json!(["tiny"]), "{via:?}");
        assert!(same_path(&c["python"], &l.path("conf/py/python")), "{via:?}: {c}");
        assert!(l.python_used().is_file(), "{via:?}: conf/py/python never ran");
        let passed: Vec<u64> =
            runs[0]["trials"].as_array().unwrap().iter().map(|t| t["passed"].as_u64().unwrap()).collect();
        assert_eq!(passed, [1, 2], "{via:?}: null and oracle graded");
    }

    // A `run.python` that does not exist stops the run, naming the path it resolved to.
    let l = Layout::new();
    let text = std::fs::read_to_string(l.conf().join("harness.toml")).unwrap();
    std::fs::write(l.conf().join("harness.toml"), text.replace("py/python", "py/no-such-python")).unwrap();
    let out = l
        .cmd(Via::Flag, &["run", "--agent", "null", "--isolation", "none", "--grade-isolation", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ran with a missing Python");
    assert!(stderr(&out).contains("conf/py/no-such-python"), "{}", stderr(&out));
}

#[test]
fn sweep_stores_its_runs_and_its_record_in_harness_tomls_results() {
    // `[server] binary` of the --config file starts the sweep's server (it names none): a
    // wrapper of the real llama-server that leaves a mark.
    let l = Layout::with_run_keys("\n[server]\nbinary = \"bin/llama-server\"\n");
    std::fs::create_dir_all(l.conf().join("bin")).unwrap();
    let started = l.path("conf/bin/started");
    write_script(
        &l.conf().join("bin/llama-server"),
        &format!("touch '{}'\nexec '{}' \"$@\"\n", started.display(), llama::server_binary().display()),
    );
    std::fs::create_dir_all(l.path("sweeps")).unwrap();
    let sweep = l.path("sweeps/sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "[[server]]\nlabel = \"one\"\nmodel = \"{}\"\nargs = [\"-np\", \"1\", \"-c\", \"2048\", \"-t\", \"2\"]\n",
            llama::model().display()
        ),
    )
    .unwrap();
    let out = run_expect(
        &mut l.cmd(
            Via::Flag,
            &["sweep", sweep.to_str().unwrap(), "--agent", "null", "--isolation", "none", "--grade-isolation", "none"],
        ),
        0,
    );
    let runs = runs_in(&l.store());
    assert_eq!(runs.len(), 1, "one run in conf/store: {}", stderr(&out));
    l.assert_no_default_results();
    assert!(!l.path("sweeps/results").exists(), "nothing beside the sweep file");
    let records: Vec<_> =
        std::fs::read_dir(l.store().join("sweeps")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert_eq!(records.len(), 1, "the sweep's record in conf/store/sweeps: {}", stderr(&out));
    let c = &runs[0]["config"];
    assert_eq!(c["server_label"], "one");
    assert!(same_path(&c["problems_dir"], &l.path("conf/probs")), "{c}");
    assert!(same_path(&c["python"], &l.path("conf/py/python")), "{c}");
    assert!(l.python_used().is_file(), "conf/py/python never ran");
    assert!(started.is_file(), "the server was not started with harness.toml's [server] binary");
}

#[test]
fn validate_checks_harness_tomls_problems_with_its_python() {
    for via in BOTH {
        let l = Layout::new();
        let out = run_expect(&mut l.cmd(via, &["validate", "--json", "--grade-isolation", "none"]), 0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> =
            v["problems"].as_array().unwrap().iter().map(|p| p["problem"].as_str().unwrap()).collect();
        assert_eq!(names, ["tiny"], "{via:?}: the problems of conf/probs");
        assert_eq!(v["problems"][0]["ok"], true, "{via:?}: {v}");
        assert!(l.python_used().is_file(), "{via:?}: conf/py/python never ran");
    }

    // A `run.python` that does not exist fails validation, naming the path it resolved to.
    let l = Layout::new();
    let text = std::fs::read_to_string(l.conf().join("harness.toml")).unwrap();
    std::fs::write(l.conf().join("harness.toml"), text.replace("py/python", "py/no-such-python")).unwrap();
    for via in BOTH {
        let out = l.cmd(via, &["validate", "--grade-isolation", "none"]).output().unwrap();
        assert!(!out.status.success(), "{via:?}: validated with a missing Python");
        assert!(stderr(&out).contains("py/no-such-python"), "{via:?}: {}", stderr(&out));
    }
}

/// Runs `args(layout)` both ways on a layout holding the stored run, expecting exit 0, and
/// hands its stdout to `check`; then the same args with other/harness.toml find no run.
fn reads_the_configured_store(args: impl Fn(&Layout) -> Vec<String>, check: impl Fn(Via, &Layout, &str, &str)) {
    for via in BOTH {
        let (l, id) = Layout::new().with_stored_run();
        let args = args(&l);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_expect(&mut l.cmd(via, &args), 0);
        check(via, &l, &id, &stdout(&out));
        l.fails_on_the_other_store(&args);
    }
}

#[test]
fn show_finds_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |_| vec!["show".into(), "latest".into(), "--json".into()],
        |via, _, id, out| {
            let v: Value = serde_json::from_str(out).unwrap();
            assert_eq!(v["run_id"], id, "{via:?}");
        },
    );
    // By its id too; without the harness file the default folder holds nothing.
    let (l, id) = Layout::new().with_stored_run();
    run_expect(&mut l.cmd(Via::Flag, &["show", &id]), 0);
    run_expect(fixbench(&l.work()).args(["show", &id]), 2);
}

#[test]
fn history_lists_a_run_stored_only_in_harness_tomls_results() {
    for via in BOTH {
        let (l, id) = Layout::new().with_stored_run();
        let out = run_expect(&mut l.cmd(via, &["history", "--json"]), 0);
        assert!(stdout(&out).contains(&id), "{via:?}: {}", stdout(&out));
        // An empty store is no error for history: it says where it looked.
        let out = run_expect(fixbench(&l.work()).args(["history", "--config"]).arg(l.other_config()), 0);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!said.contains(&id) && said.contains("other/nothing"), "{said}");
    }
}

#[test]
fn compare_reads_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |_| vec!["compare".into(), "latest".into(), "--format".into(), "json".into()],
        |via, _, id, out| assert!(out.contains(id), "{via:?}: {out}"),
    );
}

#[test]
fn gate_judges_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |_| vec!["gate".into(), "--baseline".into(), "latest".into(), "latest".into()],
        |via, _, _, out| assert!(out.contains("gate: PASSED"), "{via:?}: {out}"),
    );
}

#[test]
fn baseline_saves_a_run_stored_only_in_harness_tomls_results_and_lists_it_there() {
    reads_the_configured_store(
        |_| vec!["baseline".into(), "save".into(), "main".into(), "latest".into()],
        |via, l, id, out| {
            assert!(out.contains(id), "{via:?}: {out}");
            assert!(l.store().join("baselines/main.json").is_file(), "{via:?}: saved in conf/store/baselines");
            let listed = stdout(&run_expect(&mut l.cmd(via, &["baseline", "list"]), 0));
            assert!(listed.contains("main"), "{via:?}: {listed}");
            // The gate finds it by name in the same folder.
            run_expect(&mut l.cmd(via, &["gate", "--baseline", "main", "latest"]), 0);
        },
    );
}

#[test]
fn junit_exports_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |l| vec!["junit".into(), "latest".into(), "-o".into(), l.path("r.xml").to_string_lossy().into_owned()],
        |via, l, _, _| {
            let xml = std::fs::read_to_string(l.path("r.xml")).unwrap();
            assert!(xml.contains("tiny") && xml.contains("oracle"), "{via:?}: {xml}");
        },
    );
}

#[test]
fn plot_charts_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |l| {
            let out = l.path("r.svg").to_string_lossy().into_owned();
            ["plot", "--kind", "bars", "latest", "-o", out.as_str()].map(String::from).to_vec()
        },
        |via, l, _, _| {
            let svg = std::fs::read_to_string(l.path("r.svg")).unwrap();
            assert!(svg.contains("<svg") && svg.contains("oracle"), "{via:?}: {svg}");
        },
    );
}

#[test]
fn doctor_examines_a_run_stored_only_in_harness_tomls_results() {
    reads_the_configured_store(
        |_| vec!["doctor".into(), "latest".into(), "--json".into()],
        |via, _, id, out| {
            let v: Value = serde_json::from_str(out).unwrap();
            assert_eq!(v["run"], id, "{via:?}: {v}");
        },
    );
}

/// `agents` has no use for runs: what it takes from the harness file is its `[agents]`.
#[test]
fn agents_lists_the_agents_harness_toml_defines() {
    for via in BOTH {
        let l = Layout::new();
        let out = run_expect(&mut l.cmd(via, &["agents", "--json", "--isolation", "none"]), 0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mine = v["agents"].as_array().unwrap().iter().find(|a| a["name"] == "mine");
        let mine = mine.unwrap_or_else(|| panic!("{via:?}: `mine` is not listed: {v}"));
        assert_eq!(mine["source"], "harness.toml", "{via:?}");
        assert!(mine["command"].as_str().unwrap().starts_with("mine-agent"), "{via:?}: {mine}");
    }
    // Another harness file's agents are not listed.
    let l = Layout::new();
    let out = run_expect(
        fixbench(&l.work()).args(["agents", "--json", "--isolation", "none", "--config"]).arg(l.other_config()),
        0,
    );
    assert!(!stdout(&out).contains("\"mine\""), "{}", stdout(&out));
}

/// A stand-in llama-server answering every request with `{"status":"ok"}`; returns its URL and
/// the request lines it was sent.
fn upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let _ = r.read_exact(&mut vec![0; len]);
                log.lock().unwrap().push(line.trim_end().to_string());
                let body = r#"{"status":"ok"}"#;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, seen)
}

/// `proxy` records to its own `--log FILE`, never to a results folder, and runs no Python:
/// what it takes from the harness file is the server, `run.server`, when no `--server` (nor
/// `FIXBENCH_SERVER`) names one.
#[test]
fn proxy_forwards_to_harness_tomls_server() {
    for via in BOTH {
        let (url, seen) = upstream();
        let l = Layout::with_run_keys(&format!("server = \"{url}\""));
        let listen = format!("127.0.0.1:{}", llama::free_port());
        let log = l.path("requests.jsonl");
        let mut child = l
            .cmd(via, &["proxy", "--listen", &listen, "--quiet", "--log", log.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(&listen).is_err() {
            if child.try_wait().unwrap().is_some() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("{via:?}: fixbench proxy exited: {err}");
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{via:?}: fixbench proxy did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let reply = ureq::get(&format!("http://{listen}/v1/models")).call().map(|r| r.into_string().unwrap());
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT);
        let out = child.wait_with_output().unwrap();
        assert_eq!(reply.unwrap(), r#"{"status":"ok"}"#, "{via:?}: {}", stderr(&out));
        assert!(
            seen.lock().unwrap().iter().any(|l| l.starts_with("GET /v1/models")),
            "{via:?}: {:?}",
            seen.lock().unwrap()
        );
        assert!(out.status.success(), "{via:?}: {}", stderr(&out));
        assert!(std::fs::read_to_string(&log).unwrap().contains("/v1/models"), "{via:?}: the request is logged");
        l.assert_no_default_results();
    }
}

/// With no `--server` and no run, `doctor` examines harness.toml's `run.server`.
#[test]
fn doctor_examines_harness_tomls_server() {
    for via in BOTH {
        let (url, seen) = upstream();
        let l = Layout::with_run_keys(&format!("server = \"{url}\""));
        let mut cmd = l.cmd(via, &["doctor", "--json"]);
        cmd.env_remove("FIXBENCH_SERVER");
        let out = run_expect(&mut cmd, 0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["server"].as_str().map(|s| s.trim_end_matches('/')),
            Some(url.trim_end_matches('/')),
            "{via:?}: {v}"
        );
        assert!(
            seen.lock().unwrap().iter().any(|l| l.starts_with("GET /props")),
            "{via:?}: {:?}",
            seen.lock().unwrap()
        );
    }
}
