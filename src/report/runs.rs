//! Reading runs for the reports: names resolved (`latest`, `latest~N`, ids), runs loaded in
//! parallel, and a missing or corrupt run named and skipped where the report can go on.

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::store::{RunRecord, RunStatus, Store};

/// A run that could not be read, and why.
#[derive(Debug)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

impl Skipped {
    /// Prints the skipped runs as warnings on stderr.
    pub fn warn_all(skipped: &[Skipped]) {
        for s in skipped {
            eprintln!("warning: skipped run `{}`: {}", s.name, s.reason);
        }
    }
}

fn reason(err: &anyhow::Error) -> String {
    err.chain().map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
}

/// Why `run` lacks trials it planned (`interrupted, 7 of 12 trials`), or `None` when it
/// finished every one.
pub fn incomplete(run: &RunRecord) -> Option<String> {
    let c = &run.config;
    // A shard's own slice of the plan; a merged run's whole plan.
    let planned = match &run.plan {
        Some(p) => p.own_trials().count(),
        None => c.problems.len() * c.agents.len() * c.repeat as usize,
    };
    let status = match run.status {
        RunStatus::Finished if run.trials.len() >= planned => return None,
        RunStatus::Finished => "finished",
        RunStatus::Running => "still running, or crashed",
        RunStatus::Interrupted => "interrupted",
    };
    Some(format!("{status}, {} of {planned} trials", run.trials.len()))
}

/// Loads one named run; its absence or corruption is a bad-input error naming it.
pub fn load_one(store: &Store, name: &str) -> Result<RunRecord> {
    let id = store.resolve(name).map_err(|e| Error::BadInput(reason(&e)))?;
    store.load(&id).map_err(|e| Error::BadInput(reason(&e)).into())
}

/// Loads every named run, in order (duplicates kept once), on all cores; any that cannot be
/// resolved or read is a bad-input error naming it.
pub fn load_each(store: &Store, names: &[String]) -> Result<Vec<RunRecord>> {
    let mut ids: Vec<String> = Vec::new();
    for name in names {
        let id = store.resolve(name).map_err(|e| Error::BadInput(reason(&e)))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let pairs: Vec<(&Store, &str)> = ids.iter().map(|id| (store, id.as_str())).collect();
    load_in_parallel(&pairs).into_iter().map(|r| r.map_err(|e| Error::BadInput(reason(&e)).into())).collect()
}

/// Loads the named runs in order (duplicates kept once). Unreadable ones are returned as
/// `Skipped`; it is an error only when none could be read.
pub fn load_named(store: &Store, names: &[String]) -> Result<(Vec<RunRecord>, Vec<Skipped>)> {
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        match store.resolve(name) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(e) => skipped.push(Skipped { name: name.clone(), reason: reason(&e) }),
        }
    }
    let (runs, bad) = load_ids(store, &ids);
    skipped.extend(bad);
    if runs.is_empty() {
        let why: Vec<String> = skipped.iter().map(|s| format!("`{}`: {}", s.name, s.reason)).collect();
        return Err(Error::BadInput(format!("no run could be read ({})", why.join("; "))).into());
    }
    Ok((runs, skipped))
}

/// Every stored run started at or after `since`, oldest first; unreadable ones as `Skipped`.
pub fn load_all(store: &Store, since: Option<DateTime<Utc>>) -> Result<(Vec<RunRecord>, Vec<Skipped>)> {
    let mut ids = store.run_ids()?;
    if let Some(since) = since {
        // Run ids start with their UTC start time, so most runs are left out unread.
        let floor = since.format("%Y%m%d-%H%M%S").to_string();
        ids.retain(|id| !looks_like_run_id(id) || id.as_str() >= floor.as_str());
    }
    let (mut runs, skipped) = load_ids(store, &ids);
    if let Some(since) = since {
        runs.retain(|r| r.started_at >= since);
    }
    Ok((runs, skipped))
}

fn looks_like_run_id(id: &str) -> bool {
    crate::store::generated_id_time(id).is_some()
}

/// Loads each (store, run id) on all cores, keeping their order.
pub fn load_in_parallel(runs: &[(&Store, &str)]) -> Vec<Result<RunRecord>> {
    in_parallel(runs.to_vec(), cores(), |(store, id)| store.load(id))
}

/// This machine's cores (1 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over `items` on up to `threads` threads, each taking a run of them, keeping their order.
pub fn in_parallel<T: Send, R: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            parts.into_iter().map(|p| s.spawn(move || p.into_iter().map(f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    })
}

/// Loads `ids` on all cores, keeping their order.
fn load_ids(store: &Store, ids: &[String]) -> (Vec<RunRecord>, Vec<Skipped>) {
    let pairs: Vec<(&Store, &str)> = ids.iter().map(|id| (store, id.as_str())).collect();
    let results = load_in_parallel(&pairs);
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(run) => runs.push(run),
            Err(e) => skipped.push(Skipped { name: id.clone(), reason: reason(&e) }),
        }
    }
    (runs, skipped)
}

/// Parses `--since`: `2026-01-31`, an RFC 3339 time, or a span back from now (`7d`, `12h`).
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    if let Ok(n) = num.parse::<i64>() {
        let span = match unit {
            "d" => Some(chrono::Duration::days(n)),
            "h" => Some(chrono::Duration::hours(n)),
            "w" => Some(chrono::Duration::weeks(n)),
            _ => None,
        };
        if let Some(span) = span {
            return Ok(Utc::now() - span);
        }
    }
    Err(format!("`{s}` is not a date: use YYYY-MM-DD, an RFC 3339 time, or a span such as 7d, 12h, 2w"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_times_and_spans() {
        assert_eq!(parse_since("2026-01-31").unwrap().to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(parse_since("2026-01-31T10:00:00+02:00").unwrap().to_rfc3339(), "2026-01-31T08:00:00+00:00");
        let week = parse_since("1w").unwrap();
        assert!((Utc::now() - week).num_days() == 7);
        assert!(parse_since("yesterday").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn run_ids_are_recognised() {
        assert!(looks_like_run_id("20261123-091125-867a"));
        assert!(!looks_like_run_id("baseline-main"));
    }
}
