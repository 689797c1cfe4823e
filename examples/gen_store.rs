//! Writes a synthetic results store for trying the reports and measuring them at scale.
//!
//! cargo run --release --example gen_store -- DIR [--runs N] [--trials N] [--seed N] [--regress-from RUN_INDEX] [--transcripts]
//! cargo run --release --example gen_store -- DIR --shards N [--trials N]   (N shard runs of one plan, DIR/shard-K/)

use anyhow::{bail, Context, Result};
use fixbench::store::Store;
use fixbench::synth::{generate, shards, Options};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut opts = Options::default();
    let mut shard_count = None;
    while let Some(a) = args.next() {
        let mut value = |flag: &str| -> Result<usize> {
            args.next()
                .with_context(|| format!("{flag} needs a number"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match a.as_str() {
            "--runs" => opts.runs = value("--runs")?,
            "--trials" => opts.trials = value("--trials")?,
            "--seed" => opts.seed = value("--seed")? as u64,
            "--regress-from" => opts.regress_from = Some(value("--regress-from")?),
            "--transcripts" => opts.transcripts = true,
            "--shards" => shard_count = Some(value("--shards")? as u32),
            _ if a.starts_with("--") => bail!("unknown flag {a}"),
            _ => dir = Some(a),
        }
    }
    let Some(dir) = dir else {
        bail!("usage: gen_store DIR [--runs N] [--trials N] [--seed N] [--regress-from I] [--transcripts]")
    };
    if let Some(n) = shard_count {
        let dirs = shards(std::path::Path::new(&dir), opts.trials, n, &opts)?;
        let trials: usize = dirs
            .iter()
            .map(|d| {
                let (root, id) = (d.parent().expect("in a store"), d.file_name().expect("a run").to_string_lossy());
                Store::new(root).load(&id).map(|r| r.trials.len()).unwrap_or(0)
            })
            .sum();
        println!("wrote {} shard runs, {trials} trials to {dir}", dirs.len());
        return Ok(());
    }
    let ids = generate(&Store::new(&dir), &opts)?;
    let trials: usize = ids.iter().map(|id| Store::new(&dir).load(id).map(|r| r.trials.len()).unwrap_or(0)).sum();
    println!("wrote {} runs, {trials} trials to {dir}", ids.len());
    Ok(())
}
