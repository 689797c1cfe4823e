//! The server's load over a run: its running and waiting requests, sampled from `/metrics`
//! gauges while the run goes (a gauge read once at the start and once at the end says nothing
//! about the trials between). Waiting requests are the sign that agent sessions overlapped
//! more than the server runs at once: `-np` for llama-server, `--max-num-seqs` for vLLM,
//! `--max-running-requests` for SGLang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::Server;
use super::metrics;
use crate::model::ServerKind;
use crate::store::ServerLoad;

/// How often the gauges are read.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The gauges of a kind: (running, waiting).
pub fn gauges(kind: ServerKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ServerKind::LlamaServer => Some(("llamacpp:requests_processing", "llamacpp:requests_deferred")),
        ServerKind::Vllm => Some(("vllm:num_requests_running", "vllm:num_requests_waiting")),
        ServerKind::Sglang => Some(("sglang:num_running_reqs", "sglang:num_queue_reqs")),
        ServerKind::Ollama | ServerKind::LlamaCppPython | ServerKind::Other => None,
    }
}

/// One reading: (running, waiting), each summed over the gauge's series (vLLM and SGLang
/// label theirs by engine or rank); `None` when the page lacks either gauge.
pub fn read(kind: ServerKind, text: &str) -> Option<(f64, f64)> {
    let (running, waiting) = gauges(kind)?;
    let m = metrics::parse(text);
    Some((*m.get(running)?, *m.get(waiting)?))
}

/// Samples the gauges on a thread of its own until dropped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    samples: u32,
    failed: u32,
    peak_running: f64,
    peak_waiting: f64,
    sum_running: f64,
    sum_waiting: f64,
    waiting_samples: u32,
}

impl Sampler {
    /// Starts sampling `server`, or `None` when its kind has no such gauges.
    pub fn start(server: &Server, kind: ServerKind, every: Duration) -> Option<Sampler> {
        gauges(kind)?;
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Seen::default())));
        let (server, stop2, seen2) = (server.clone(), stop.clone(), seen.clone());
        std::thread::Builder::new()
            .name("fixbench-load".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let reading = server.get("/metrics").ok_body("/metrics").ok().and_then(|t| read(kind, t));
                    let mut s = seen2.lock().unwrap();
                    match reading {
                        Some((running, waiting)) => s.add(running, waiting),
                        None => s.failed += 1,
                    }
                    drop(s);
                    std::thread::sleep(every);
                }
            })
            .ok()?;
        Some(Sampler { stop, seen })
    }

    /// What was seen so far; `None` before the first good reading.
    pub fn load(&self) -> Option<ServerLoad> {
        self.seen.lock().unwrap().load()
    }
}

impl Seen {
    fn add(&mut self, running: f64, waiting: f64) {
        self.samples += 1;
        self.peak_running = self.peak_running.max(running);
        self.peak_waiting = self.peak_waiting.max(waiting);
        self.sum_running += running;
        self.sum_waiting += waiting;
        if waiting > 0.0 {
            self.waiting_samples += 1;
        }
    }

    fn load(&self) -> Option<ServerLoad> {
        (self.samples > 0).then(|| ServerLoad {
            samples: self.samples,
            failed_samples: self.failed,
            interval_ms: INTERVAL.as_millis() as u32,
            peak_running: self.peak_running,
            peak_waiting: self.peak_waiting,
            mean_running: self.sum_running / self.samples as f64,
            mean_waiting: self.sum_waiting / self.samples as f64,
            waiting_share: self.waiting_samples as f64 / self.samples as f64,
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_its_own_gauges_summed_over_their_labels() {
        let llama = "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\n";
        assert_eq!(read(ServerKind::LlamaServer, llama), Some((2.0, 1.0)));
        let vllm = "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n\
                    vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 1.0\n\
                    vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0\n";
        assert_eq!(read(ServerKind::Vllm, vllm), Some((4.0, 2.0)));
        let sglang = "sglang:num_running_reqs{tp_rank=\"0\"} 1\nsglang:num_queue_reqs{tp_rank=\"0\"} 0\n";
        assert_eq!(read(ServerKind::Sglang, sglang), Some((1.0, 0.0)));
        assert_eq!(read(ServerKind::Vllm, llama), None, "another kind's gauges are not read");
        assert_eq!(read(ServerKind::Ollama, llama), None);
    }

    #[test]
    fn peaks_means_and_the_share_of_time_with_requests_waiting() {
        let mut s = Seen::default();
        assert!(s.load().is_none(), "no reading, no figure");
        for (r, w) in [(1.0, 0.0), (2.0, 0.0), (2.0, 3.0), (2.0, 1.0)] {
            s.add(r, w);
        }
        let l = s.load().unwrap();
        assert_eq!((l.samples, l.peak_running, l.peak_waiting), (4, 2.0, 3.0));
        assert_eq!((l.mean_running, l.mean_waiting, l.waiting_share), (1.75, 1.0, 0.5));
    }
}
