//! What saving one finished trial costs early and late in a long run, both ways:
//!
//! - schema 2 (now): the trial's own `trials/<trial>/trial.json`, written atomically
//!   (`Store::save_trial`); nothing else of the run is touched until it finishes, when all its
//!   trials go into `trials.json` once (`Store::seal`, timed too);
//! - schema 1 (before): the whole `run.json`, every trial so far in it, serialized and written
//!   atomically again, as `Store::save` did after each trial.
//!
//! Both are timed on the same synthetic trials (`report::synth`, with requests and server
//! figures, as a run against a server records them), each save including its serialization
//! and fsync, in a run holding 5 trials and one holding 5,000: the median of `--samples`
//! saves at each point, and the ratios.
//!
//! `cargo bench --bench store -- [--trials N] [--samples N]`

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use chrono::{Duration, TimeZone, Utc};
use fixbench::store::{write_atomic, RunRecord, Store, TrialRecord, RUN_FILE};
use fixbench::synth;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

struct Args {
    trials: usize,
    samples: usize,
}

fn args() -> Args {
    let mut a = Args { trials: 5_000, samples: 15 };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match x.as_str() {
            "--trials" => a.trials = num(),
            "--samples" => a.samples = num(),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.trials > 5 && a.samples > 0, "--trials must be above 5 and --samples at least 1");
    a
}

/// `n` distinct trials of one agent, with telemetry.
fn trials(n: usize) -> Vec<TrialRecord> {
    let mut rng = ChaCha12Rng::seed_from_u64(7);
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let (problem, total, baseline) = synth::PROBLEMS[i % synth::PROBLEMS.len()];
            let repeat = (i / synth::PROBLEMS.len()) as u32;
            let mut t = synth::trial(problem, "aider", repeat, baseline + 1, total, baseline);
            t.started_at = start + Duration::seconds(60 * i as i64);
            synth::telemetry(&mut rng, &mut t, 820.0, 38.0);
            t
        })
        .collect()
}

/// Seconds `save` takes, median of `samples` runs.
fn median_s(samples: usize, mut save: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut s = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t0 = Instant::now();
        save()?;
        s.push(t0.elapsed().as_secs_f64());
    }
    s.sort_by(f64::total_cmp);
    Ok(s[s.len() / 2])
}

/// Schema 1's save: the whole record, with `trials`, rewritten.
fn save_v1(dir: &Path, run: &RunRecord) -> Result<()> {
    write_atomic(&dir.join(RUN_FILE), &serde_json::to_vec_pretty(run)?)
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

/// `5000` → `5,000`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() -> Result<()> {
    let a = args();
    let all = trials(a.trials);
    let tmp = tempfile::tempdir()?;
    let mut run = synth::run_record("20260101-090000-0001", Utc::now(), &["aider".into()]);
    let trial_kb = serde_json::to_vec_pretty(&all[0])?.len() as f64 / 1024.0;

    // Schema 2: the run's trials saved one by one, as the runner does; every save is timed.
    let store = Store::new(tmp.path().join("v2"));
    store.save_header(&run)?;
    let mut each = Vec::with_capacity(a.trials);
    for t in &all {
        let t0 = Instant::now();
        store.save_trial(&run.run_id, t)?;
        each.push(t0.elapsed().as_secs_f64());
    }
    // Saving the 5th and the last again, in the run holding 5 and then all of them.
    let v2_dir = tmp.path().join("v2-early");
    let early = Store::new(&v2_dir);
    early.save_header(&run)?;
    for t in &all[..5] {
        early.save_trial(&run.run_id, t)?;
    }
    let v2_early = median_s(a.samples, || early.save_trial(&run.run_id, &all[4]))?;
    let v2_late = median_s(a.samples, || store.save_trial(&run.run_id, &all[a.trials - 1]))?;
    run.trials = all.clone();
    let seal = median_s(a.samples.min(5), || store.seal(&run))?;

    // Schema 1: run.json holding 5 trials, then all of them, rewritten.
    let v1_dir = tmp.path().join("v1");
    std::fs::create_dir_all(&v1_dir)?;
    run.trials = all[..5].to_vec();
    let v1_early = median_s(a.samples, || save_v1(&v1_dir, &run))?;
    run.trials = all;
    let v1_late = median_s(a.samples, || save_v1(&v1_dir, &run))?;
    let v1_mb = std::fs::metadata(v1_dir.join(RUN_FILE))?.len() as f64 / 1e6;

    let (n, nth) = (a.trials, count(a.trials));
    println!(
        "saving one finished trial ({trial_kb:.1} KB of JSON, with requests), median of {} saves; fsync included\n",
        a.samples
    );
    println!("| store | at trial 5 | at trial {nth} | trial {nth} / trial 5 |");
    println!("|---|---|---|---|");
    println!(
        "| schema 2: the trial's own trial.json | {} | {} | {:.2} |",
        ms(v2_early),
        ms(v2_late),
        v2_late / v2_early
    );
    println!(
        "| schema 1: the whole run.json ({v1_mb:.1} MB at {nth}) | {} | {} | {:.1} |",
        ms(v1_early),
        ms(v1_late),
        v1_late / v1_early
    );
    println!("| schema 1 / schema 2 | {:.2} | {:.0} | |", v1_early / v2_early, v1_late / v2_late);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let k = (n / 10).max(1);
    println!(
        "\nschema 2, every save of the {nth}-trial run: mean {} over trials 1–{}, {} over trials {}–{nth}; all in {:.1} s",
        ms(mean(&each[..k])),
        count(k),
        ms(mean(&each[n - k..])),
        count(n - k + 1),
        each.iter().sum::<f64>()
    );
    println!("schema 2, finishing the {nth}-trial run: its trials.json, written once, {}", ms(seal));
    Ok(())
}
