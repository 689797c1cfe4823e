//! The servers of a run and the trials on each: which server (and, when trials own slots,
//! which slot) the next trial goes to, and which servers have left the pool.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::error::Error;
use crate::store::{ServerInfo, ServerUse, TrialRecord};
use crate::telemetry::RunTelemetry;

/// Where one trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The server's index in the pool; `None` without a server.
    pub server: Option<usize>,
    /// The slot the trial owns, when trials own slots.
    pub slot: Option<u32>,
}

/// The load on each server. Only the scheduling thread changes it; the trials share the
/// servers' telemetry read-only.
pub struct Pool {
    members: Vec<Member>,
    /// Trials own a slot each (`--cache-state cold|warm` with trials at once).
    own_slots: bool,
}

struct Member {
    slots: u32,
    busy: u32,
    free: BTreeSet<u32>,
    trials: u32,
    dropped: Option<String>,
}

/// A server's slots as the pool counts them: what `/props` said, else one.
pub fn slots_of(server: &RunTelemetry) -> u32 {
    server.info().total_slots.unwrap_or(1).max(1)
}

impl Pool {
    pub fn new(servers: &[RunTelemetry], own_slots: bool) -> Pool {
        let members = servers
            .iter()
            .map(|t| {
                let slots = slots_of(t);
                Member { slots, busy: 0, free: (0..slots).collect(), trials: 0, dropped: None }
            })
            .collect();
        Pool { members, own_slots }
    }

    /// The server for the next trial: the one with the most free slots. `None`: wait (trials
    /// own slots and none is free, or every server left the pool). Without servers, always
    /// runs. Past its slots a server still takes trials when `--jobs` asks for more than the
    /// pool has: they queue there, which is what `show` and `doctor` then report.
    pub fn pick(&mut self) -> Option<Assignment> {
        if self.members.is_empty() {
            return Some(Assignment { server: None, slot: None });
        }
        let (i, m) = self
            .members
            .iter_mut()
            .enumerate()
            .filter(|(_, m)| m.dropped.is_none())
            .max_by_key(|(i, m)| (m.slots as i64 - m.busy as i64, std::cmp::Reverse(*i)))?;
        let slot = if self.own_slots {
            let s = m.free.pop_first()?;
            Some(s)
        } else {
            None
        };
        m.busy += 1;
        m.trials += 1;
        Some(Assignment { server: Some(i), slot })
    }

    /// The trial on `a` ended.
    pub fn release(&mut self, a: Assignment) {
        if let Some(m) = a.server.map(|i| &mut self.members[i]) {
            m.busy -= 1;
            if let Some(s) = a.slot {
                m.free.insert(s);
            }
        }
    }

    /// `a` was picked but its trial never started there: as if it had not been picked.
    pub fn unpick(&mut self, a: Assignment) {
        self.release(a);
        if let Some(m) = a.server.map(|i| &mut self.members[i]) {
            m.trials -= 1;
        }
    }

    /// Takes server `i` out of the pool: no trial goes there any more.
    pub fn drop_server(&mut self, i: usize, why: String) {
        self.members[i].dropped.get_or_insert(why);
    }

    pub fn is_dropped(&self, i: usize) -> bool {
        self.members[i].dropped.is_some()
    }

    /// Servers were given and every one has left the pool.
    pub fn all_dropped(&self) -> bool {
        !self.members.is_empty() && self.members.iter().all(|m| m.dropped.is_some())
    }

    /// What the run stores of each server: its trials, its counters over the run (read now,
    /// for the servers still in the pool), and why it left.
    pub fn uses(&self, servers: &[RunTelemetry]) -> Vec<ServerUse> {
        servers
            .iter()
            .zip(&self.members)
            .map(|(t, m)| {
                let (metrics, missing) = match &m.dropped {
                    Some(_) => {
                        (None, vec!["the server left the pool, so its counters over the run are unknown".into()])
                    }
                    None => match t.run_delta() {
                        Ok(d) => (Some(d), vec![]),
                        Err(why) => (None, vec![format!("server counters unknown: {why}")]),
                    },
                };
                ServerUse {
                    url: t.url().to_string(),
                    host: None,
                    total_slots: Some(m.slots),
                    trials: m.trials,
                    metrics,
                    since: Some(t.since()),
                    missing,
                    dropped: m.dropped.clone(),
                    load: t.load(),
                }
            })
            .collect()
    }
}

/// Notes, on each server whose counters over the session exceed what the session's trials'
/// requests to it account for, that something else used it: another client, an agent that
/// reached the server past its proxy, or requests of trials cut short and not kept. (Warm-up
/// requests are fixbench's own and unrecorded: under `warm` nothing is said.)
pub fn note_unaccounted(uses: &mut [ServerUse], trials: &[TrialRecord], warm: bool) {
    if warm {
        return;
    }
    for u in uses.iter_mut() {
        let (Some(m), Some(since)) = (&u.metrics, u.since) else { continue };
        let mine = || {
            trials
                .iter()
                .filter(|t| t.started_at >= since && t.telemetry.server_url.as_deref() == Some(u.url.as_str()))
                .flat_map(|t| &t.telemetry.requests)
        };
        let prompt: u64 = mine().filter_map(|r| r.prompt_n).sum();
        let predicted: u64 = mine().filter_map(|r| r.predicted_n).sum();
        let (more_prompt, more_predicted) = (m.prompt_tokens - prompt as f64, m.predicted_tokens - predicted as f64);
        if more_prompt > 0.0 || more_predicted > 0.0 {
            u.missing.push(format!(
                "the server counted {more_prompt:.0} prompt and {more_predicted:.0} generated token(s) more than this run's \
                 kept requests to it: another client used it during the run, an agent reached it past its proxy, \
                 or trials were cut short and not kept"
            ));
        }
    }
}

/// Servers of one run must serve the same model file: a mixed pool is refused.
pub fn check_same_model(infos: &[ServerInfo]) -> Result<()> {
    let id = |i: &ServerInfo| {
        i.model_sha256
            .clone()
            .or_else(|| Some(format!("{}:{:?}", i.model_path.clone()?, i.model_size_bytes)))
            .or_else(|| Some(format!("{}:{}", i.kind?, i.model_alias.clone()?)))
    };
    let Some(first) = infos.first() else { return Ok(()) };
    for other in &infos[1..] {
        if id(other) != id(first) || id(first).is_none() {
            let name = |i: &ServerInfo| {
                i.model_path.clone().or_else(|| i.model_alias.clone()).unwrap_or_else(|| "an unknown model".into())
            };
            return Err(Error::BadInput(format!(
                "the servers of one run must serve the same model file: {} serves {} and {} serves {}. \
                 To compare models or server flags, give each its own run: `fixbench sweep` runs one per \
                 configuration, and `fixbench compare` sets them side by side",
                first.url,
                name(first),
                other.url,
                name(other)
            ))
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(slots: &[u32], own_slots: bool) -> Pool {
        let members = slots
            .iter()
            .map(|&s| Member { slots: s, busy: 0, free: (0..s).collect(), trials: 0, dropped: None })
            .collect();
        Pool { members, own_slots }
    }

    #[test]
    fn a_trial_goes_to_the_server_with_the_most_free_slots() {
        let mut p = pool(&[2, 4], false);
        let picks: Vec<usize> = (0..6).map(|_| p.pick().unwrap().server.unwrap()).collect();
        // 4 free vs 2, then 3 vs 2, then 2 vs 2 (the first wins a tie), …
        assert_eq!(picks, [1, 1, 0, 1, 0, 1]);
        p.release(Assignment { server: Some(0), slot: None });
        let again = p.pick().unwrap();
        assert_eq!(again.server, Some(0));
        p.unpick(again);
        assert_eq!((p.members[0].busy, p.members[0].trials), (1, 2), "as if never picked");
    }

    #[test]
    fn owned_slots_are_never_shared_and_a_dropped_server_gets_nothing() {
        let mut p = pool(&[2], true);
        let (a, b) = (p.pick().unwrap(), p.pick().unwrap());
        assert_eq!((a.slot, b.slot), (Some(0), Some(1)));
        assert_eq!(p.pick(), None, "both slots are owned: wait");
        p.release(a);
        assert_eq!(p.pick().unwrap().slot, Some(0));
        let mut two = pool(&[1, 1], false);
        two.drop_server(0, "gone".into());
        assert!((0..3).all(|_| two.pick().unwrap().server == Some(1)));
        two.drop_server(1, "gone too".into());
        assert!(two.all_dropped() && two.pick().is_none());
    }

    #[test]
    fn counters_beyond_the_kept_requests_are_noted_on_their_server() {
        let since = chrono::Utc::now() - chrono::Duration::minutes(1);
        let mut t = crate::report::synth::trial("expr_calc", "pi", 0, 11, 15, 11);
        t.started_at = since + chrono::Duration::seconds(1);
        t.telemetry.server_url = Some("http://a".into());
        t.telemetry.requests =
            vec![crate::store::RequestRecord { prompt_n: Some(100), predicted_n: Some(10), ..Default::default() }];
        let use_with = |prompt: f64| ServerUse {
            url: "http://a".into(),
            metrics: Some(crate::store::ServerDelta {
                prompt_tokens: prompt,
                predicted_tokens: 10.0,
                ..Default::default()
            }),
            since: Some(since),
            ..Default::default()
        };
        let mut uses = vec![use_with(100.0), use_with(150.0)];
        note_unaccounted(&mut uses, &[t.clone()], false);
        assert!(uses[0].missing.is_empty(), "{:?}", uses[0].missing);
        assert!(uses[1].missing[0].contains("50 prompt and 0 generated token(s) more"), "{:?}", uses[1].missing);
        let mut warm = vec![use_with(150.0)];
        note_unaccounted(&mut warm, &[t], true);
        assert!(warm[0].missing.is_empty(), "warm-ups are fixbench's own");
    }

    #[test]
    fn a_pool_of_two_models_is_refused_pointing_at_sweep() {
        let a = ServerInfo { url: "http://a".into(), model_sha256: Some("aa".into()), ..Default::default() };
        let b = ServerInfo { url: "http://b".into(), model_sha256: Some("bb".into()), ..Default::default() };
        assert!(check_same_model(&[a.clone(), a.clone()]).is_ok());
        let err = check_same_model(&[a, b]).unwrap_err().to_string();
        assert!(err.contains("same model file") && err.contains("fixbench sweep"), "{err}");
    }
}
