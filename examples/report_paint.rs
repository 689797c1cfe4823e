//! How fast an HTML file (the report) opens in headless chromium: loads it TRIES times, a fresh
//! tab each, and prints per load and the best of them, in ms from the navigation's start:
//! first contentful paint, DOMContentLoaded's end, the load event's end, and when
//! `document.body.dataset.ready` became "1" (the report sets it once its matrix is drawn; "-"
//! when the page never does). The chromium of tests/integration/browser.rs (FIXBENCH_CHROMIUM,
//! else /usr/bin/chromium; scripts/setup-chromium.sh), with the same flags.
//!
//! cargo run --release --example report_paint -- FILE [--fragment F] [--tries N] [--ready-timeout SECS]
//!
//! The last line is machine-readable: `best fcp_ms=… dcl_ms=… load_ms=… ready_ms=…`.

#[path = "../tests/integration/browser.rs"]
mod browser;

use anyhow::{bail, Context, Result};
use browser::{file_url, Browser};
use std::path::PathBuf;
use std::time::Duration;

/// Runs before the page's own scripts: notes when `data-ready="1"` lands on the body.
const WATCH_READY: &str = r#"
new MutationObserver((_, obs) => {
  if (document.body && document.body.dataset.ready === "1") {
    window.__fixbenchReady = performance.now();
    obs.disconnect();
  }
}).observe(document, { attributes: true, attributeFilter: ["data-ready"], subtree: true, childList: true });
"#;

const TIMINGS: &str = r#"(() => {
  const paint = performance.getEntriesByType("paint").find(e => e.name === "first-contentful-paint");
  const nav = performance.getEntriesByType("navigation")[0];
  let ready = window.__fixbenchReady ?? null;
  if (ready === null && document.body && document.body.dataset.ready === "1") ready = performance.now();
  return {
    href: location.href,
    fcp: paint ? paint.startTime : null,
    dcl: nav && nav.domContentLoadedEventEnd > 0 ? nav.domContentLoadedEventEnd : null,
    load: nav && nav.loadEventEnd > 0 ? nav.loadEventEnd : null,
    ready,
  };
})()"#;

#[derive(Default, Clone, Copy)]
struct Load {
    fcp: Option<f64>,
    dcl: Option<f64>,
    load: Option<f64>,
    ready: Option<f64>,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut file, mut fragment, mut tries, mut ready_timeout) = (None, String::new(), 3usize, 10.0f64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fragment" => fragment = args.next().context("--fragment needs a value")?,
            "--tries" => tries = args.next().context("--tries needs a number")?.parse().context("--tries N")?,
            "--ready-timeout" => {
                ready_timeout =
                    args.next().context("--ready-timeout needs seconds")?.parse().context("--ready-timeout")?
            }
            "-h" | "--help" => {
                println!("usage: report_paint FILE [--fragment F] [--tries N] [--ready-timeout SECS]");
                return Ok(());
            }
            _ if a.starts_with("--") => bail!("unknown flag {a}"),
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let Some(file) = file else { bail!("usage: report_paint FILE [--fragment F] [--tries N] [--ready-timeout SECS]") };
    if tries == 0 {
        bail!("--tries must be at least 1");
    }
    let size = std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?.len();
    let url = file_url(&file, &fragment);
    println!("{} ({:.1} MB), {tries} loads, a fresh tab each", file.display(), size as f64 / 1e6);
    let browser = Browser::launch();
    let mut loads = Vec::new();
    println!("{:>5} {:>9} {:>9} {:>9} {:>9}  problems", "load", "fcp ms", "dcl ms", "load ms", "ready ms");
    for i in 1..=tries {
        let page = browser.open_url_with(&url, WATCH_READY);
        let mut l = Load::default();
        let start = std::time::Instant::now();
        // until painted and loaded, then up to --ready-timeout more for data-ready="1"
        let mut loaded_at = None;
        loop {
            if let Ok(v) = page.try_eval_json(TIMINGS) {
                if v["href"].as_str() == Some(url.as_str()) {
                    let f = |k: &str| v[k].as_f64();
                    l = Load { fcp: f("fcp"), dcl: f("dcl"), load: f("load"), ready: f("ready") };
                }
            }
            if l.fcp.is_some() && l.load.is_some() {
                let at = *loaded_at.get_or_insert(start.elapsed());
                if l.ready.is_some() || (start.elapsed() - at).as_secs_f64() > ready_timeout {
                    break;
                }
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("load {i}: not painted and loaded after 120 s: {:?}", page.problems());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let problems = page.problems();
        println!(
            "{i:>5} {:>9} {:>9} {:>9} {:>9}  {}",
            ms(l.fcp),
            ms(l.dcl),
            ms(l.load),
            ms(l.ready),
            if problems.is_empty() { "none".to_string() } else { format!("{problems:?}") }
        );
        loads.push(l);
    }
    let best = |f: fn(&Load) -> Option<f64>| loads.iter().filter_map(f).reduce(f64::min);
    let b = Load { fcp: best(|l| l.fcp), dcl: best(|l| l.dcl), load: best(|l| l.load), ready: best(|l| l.ready) };
    println!("{:>5} {:>9} {:>9} {:>9} {:>9}", "best", ms(b.fcp), ms(b.dcl), ms(b.load), ms(b.ready));
    println!("best fcp_ms={} dcl_ms={} load_ms={} ready_ms={}", ms(b.fcp), ms(b.dcl), ms(b.load), ms(b.ready));
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into())
}
