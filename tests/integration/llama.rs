//! A real llama-server for tests: started on a free loopback port with the given extra flags,
//! waited for until `/health` says ok, killed when dropped. Its log is kept in a temp folder
//! and printed when it fails to start.
//!
//! The binary and model come from `scripts/setup.sh` (`FIXBENCH_LLAMA_SERVER`,
//! `FIXBENCH_MODEL` override them). When they are missing the test fails and says so.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn server_binary() -> PathBuf {
    match std::env::var_os("FIXBENCH_LLAMA_SERVER") {
        Some(p) => PathBuf::from(p),
        None => fixbench::server::cached_binary(),
    }
}

pub fn model() -> PathBuf {
    match std::env::var_os("FIXBENCH_MODEL") {
        Some(p) => PathBuf::from(p),
        None => fixbench::server::cached_model(),
    }
}

pub struct LlamaServer {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    pub args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl LlamaServer {
    /// Starts SmolLM2 with one slot, a small context, two threads, `--metrics`, and `extra`
    /// flags (which may override those: llama-server keeps the last value given).
    pub fn start(extra: &[&str]) -> LlamaServer {
        let mut args = vec!["-c", "2048", "-np", "1", "-t", "2", "--metrics"];
        args.extend_from_slice(extra);
        Self::start_raw(&args)
    }

    /// Starts SmolLM2 with only `flags` (besides model, host and port).
    pub fn start_raw(flags: &[&str]) -> LlamaServer {
        let bin = server_binary();
        let model = model();
        for (what, p) in [("llama-server", &bin), ("the test model", &model)] {
            assert!(
                p.is_file(),
                "{what} not found at {}: run scripts/setup.sh (or set FIXBENCH_LLAMA_SERVER / FIXBENCH_MODEL)",
                p.display()
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let mut last_log = String::new();
        // A free port can be taken between asking and binding: try a few.
        for _attempt in 0..3 {
            let port = free_port();
            let log = dir.path().join(format!("llama-server-{port}.log"));
            let mut args: Vec<String> =
                vec!["-m".into(), model.to_string_lossy().into_owned(), "--host".into(), "127.0.0.1".into()];
            args.extend(["--port".to_string(), port.to_string()]);
            args.extend(flags.iter().map(|s| s.to_string()));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(&bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut s = LlamaServer { child: Some(child), port, log, args, _dir: None };
            match s.wait_healthy(Duration::from_secs(120)) {
                Ok(()) => {
                    s._dir = Some(dir);
                    return s;
                }
                Err(why) => {
                    last_log = format!("{why}\n--- log\n{}", tail(&s.log));
                    s.kill();
                }
            }
        }
        panic!("llama-server did not come up:\n{last_log}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        while start.elapsed() < limit {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(fixbench::server::died_at_start(status));
            }
            if let Ok(r) = agent.get(&format!("{}/health", self.url())).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("no /health after {} s", limit.as_secs()))
    }

    /// GET a path, as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        ureq::get(&format!("{}{path}", self.url())).call().unwrap().into_json().unwrap()
    }

    /// The value of one `llamacpp:` counter.
    pub fn metric(&self, name: &str) -> f64 {
        let text = ureq::get(&format!("{}/metrics", self.url())).call().unwrap().into_string().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("llamacpp:{name} ")))
            .unwrap_or_else(|| panic!("no llamacpp:{name} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the server said before its log folder goes.
        if std::thread::panicking() {
            eprintln!("--- llama-server log ({}), last lines:\n{}", self.log.display(), tail(&self.log));
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The scripted agent: `python3 tests/agents/multiturn.py` with `args`, as a `--cmd` line.
pub fn multiturn_cmd(args: &str) -> String {
    let script = crate::util::repo().join("tests/agents/multiturn.py");
    format!("python3 {} {args}", script.display())
}
