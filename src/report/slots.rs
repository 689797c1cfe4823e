//! A run's slots, read from its requests: which slot served each turn of a conversation, the
//! follow-up turns prefilled again because their conversation moved to another slot or lost
//! its slot to another prompt in between ("slot thrash"), and how long requests waited for a
//! slot. Plain functions over the record, shared by `show` (per trial) and `doctor` (per run),
//! each with the server flag or `--jobs` setting that fixes what it finds.

use std::collections::BTreeMap;

use crate::store::{RequestRecord, RunRecord, TrialRecord};

/// A follow-up turn counts as thrash when it prefilled at least this many tokens again that
/// the previous turn of its conversation had already processed, or [`THRASH_MIN_SHARE`] of
/// its prompt: below both, a turn loses little (under a second of prefill on most machines).
pub const THRASH_MIN_TOKENS: u64 = 256;
/// ... or at least this share of the turn's prompt, when that is 64 tokens or more.
pub const THRASH_MIN_SHARE: f64 = 0.5;

/// What a run's trials ran on: trials at once against the slots they shared, and the server
/// flags that decide what a slot keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `--jobs` (1 for runs made before it existed).
    pub jobs: u32,
    /// The slots of every server of the pool (llama-server's `-np`, from `/props`); `None`
    /// when a server's count is unknown.
    pub slots: Option<u32>,
    /// Servers in the pool (1 for a run with one server).
    pub servers: usize,
    /// Whether the server ran with `--cache-ram 0` (no host-memory prompt cache); `None`
    /// when its flags are unknown (fixbench did not start it).
    pub cache_ram_off: Option<bool>,
    /// Whether the server ran with `--slot-prompt-similarity 0` (slots not chosen by the
    /// prompt they hold); `None` when its flags are unknown.
    pub similarity_off: Option<bool>,
}

impl Pool {
    pub fn of(run: &RunRecord) -> Pool {
        let jobs = run.config.jobs.unwrap_or(1).max(1);
        let first = || run.server.as_ref().and_then(|s| s.total_slots);
        // A merged run's servers are each machine's: its `--jobs` met its own servers' slots,
        // so the pool is the first machine's.
        let own: Vec<&crate::store::ServerUse> = match run.servers.first() {
            Some(one) => run.servers.iter().filter(|s| s.host == one.host).collect(),
            None => vec![],
        };
        let slots = match own.as_slice() {
            [] => first(),
            [one] => one.total_slots.or_else(first),
            pool => pool.iter().map(|s| s.total_slots).sum(),
        };
        let flags = run.server.as_ref().and_then(|s| s.flags.as_deref());
        let flag_is_zero = |names: &[&str]| {
            flags.map(|f| flag_value(f, names).is_some_and(|v| v.parse::<f64>().is_ok_and(|x| x == 0.0)))
        };
        Pool {
            jobs,
            slots,
            servers: own.len().max(1),
            cache_ram_off: flag_is_zero(&["--cache-ram", "-cram"]),
            similarity_off: flag_is_zero(&["--slot-prompt-similarity", "-sps"]),
        }
    }

    /// More trials at once than slots: the slots known and fewer than `--jobs`.
    pub fn oversubscribed(&self) -> bool {
        self.slots.is_some_and(|s| self.jobs > s)
    }

    /// The slots as a server flag (`-np 2`), or over a pool of servers (`3 slots over 2 servers`).
    pub fn np(&self) -> String {
        match self.slots {
            Some(s) if self.servers == 1 => format!("-np {s}"),
            Some(s) => format!("{s} slots over {} servers", self.servers),
            None => "-np ?".into(),
        }
    }

    /// The fix for more trials than slots, with the numbers: `-np ≥ --jobs (--jobs 4 with -np 2:
    /// -np 4, or --jobs 2, or --jobs auto)`.
    pub fn jobs_fix(&self) -> String {
        let slots = self.slots.map(|s| s.to_string()).unwrap_or("?".into());
        let np = if self.servers == 1 { format!("-np {}", self.jobs) } else { format!("{} slots in all", self.jobs) };
        format!(
            "-np ≥ --jobs (--jobs {} with {}: {np}, or --jobs {slots}, or --jobs auto for as many trials as slots)",
            self.jobs,
            self.np()
        )
    }
}

/// The value after `name` (`--cache-ram 0`) or in `name=value`, for the first of `names` given.
fn flag_value<'a>(flags: &'a [String], names: &[&str]) -> Option<&'a str> {
    for (i, f) in flags.iter().enumerate() {
        for n in names {
            if f == n {
                return flags.get(i + 1).map(String::as_str);
            }
            if let Some(v) = f.strip_prefix(n).and_then(|rest| rest.strip_prefix('=')) {
                return Some(v);
            }
        }
    }
    None
}

/// How a follow-up turn lost the prefix its previous turn had left in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The server gave the turn another slot than its previous turn's.
    Moved { from: u32, to: u32 },
    /// Same slot, but another prompt (a neighbouring trial's, or another conversation of the
    /// same trial) had taken it in between.
    Evicted { slot: u32 },
}

/// One follow-up turn that prefilled again at least [`THRASH_MIN_TOKENS`] tokens (or
/// [`THRASH_MIN_SHARE`] of its prompt) its
/// conversation's previous turn had processed, with the slots of both known.
#[derive(Debug, Clone, PartialEq)]
pub struct Thrash {
    pub conversation: u32,
    pub turn: u32,
    pub lost: Lost,
    pub tokens: u64,
}

/// A trial's thrashed turns, in the order of its conversations and turns. A turn that found
/// nothing cached on its own slot is left out: that is the prompt cache turned off (the
/// doctor's `prompt_cache` check), not a neighbour.
pub fn thrash(t: &TrialRecord) -> Vec<Thrash> {
    let mut by_conv: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    for q in &t.telemetry.requests {
        if let (Some(c), Some(_)) = (q.conversation, q.turn) {
            by_conv.entry(c).or_default().push(q);
        }
    }
    let mut out = Vec::new();
    for (c, mut turns) in by_conv {
        turns.sort_by(|a, b| a.turn.cmp(&b.turn).then(a.offset_ms.total_cmp(&b.offset_ms)));
        for pair in turns.windows(2) {
            let (prev, q) = (pair[0], pair[1]);
            let tokens = q.reprefilled_tokens.unwrap_or(0);
            let prompt = q.prompt_n.unwrap_or(0) + q.cache_n.unwrap_or(0);
            let share = prompt >= 64 && tokens as f64 >= THRASH_MIN_SHARE * prompt as f64;
            if q.turn == Some(0) || (tokens < THRASH_MIN_TOKENS && !share) {
                continue;
            }
            let lost = match (prev.slot, q.slot) {
                (Some(from), Some(to)) if from != to => Lost::Moved { from, to },
                (Some(slot), Some(_)) if q.cache_n != Some(0) => Lost::Evicted { slot },
                _ => continue,
            };
            out.push(Thrash { conversation: c, turn: q.turn.unwrap_or(0), lost, tokens });
        }
    }
    out
}

/// A trial with thrashed turns: which, and what they cost.
#[derive(Debug, Clone)]
pub struct TrialThrash<'a> {
    pub trial: &'a TrialRecord,
    pub turns: Vec<Thrash>,
    pub tokens: u64,
}

/// The run's trials with thrashed turns, most tokens re-prefilled first.
pub fn run_thrash(run: &RunRecord) -> Vec<TrialThrash<'_>> {
    let mut out: Vec<TrialThrash> = run
        .trials
        .iter()
        .filter_map(|t| {
            let turns = thrash(t);
            let tokens = turns.iter().map(|x| x.tokens).sum();
            (!turns.is_empty()).then_some(TrialThrash { trial: t, turns, tokens })
        })
        .collect();
    out.sort_by_key(|x| std::cmp::Reverse(x.tokens));
    out
}

/// Whether any request of the run said which slot served it.
pub fn slots_recorded(run: &RunRecord) -> bool {
    run.trials.iter().flat_map(|t| &t.telemetry.requests).any(|q| q.slot.is_some())
}

/// What happened to a trial's conversations, after `whose` (`trial p/a/0's`, `its`):
/// `trial p/a/0's conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens`.
pub fn sentence(whose: &str, turns: &[Thrash]) -> String {
    let tokens = thousands(turns.iter().map(|x| x.tokens).sum());
    let mut convs: Vec<u32> = turns.iter().map(|x| x.conversation).collect();
    convs.dedup();
    let conv = if convs.len() > 1 { format!("{} conversations", convs.len()) } else { "conversation".into() };
    let moves: Vec<(u32, u32)> = turns
        .iter()
        .filter_map(|x| match x.lost {
            Lost::Moved { from, to } => Some((from, to)),
            Lost::Evicted { .. } => None,
        })
        .collect();
    let kept: Vec<u32> = turns
        .iter()
        .filter_map(|x| match x.lost {
            Lost::Evicted { slot } => Some(slot),
            Lost::Moved { .. } => None,
        })
        .collect();
    let arrows = |m: &[(u32, u32)]| m.iter().map(|(a, b)| format!("{a}→{b}")).collect::<Vec<_>>().join(", ");
    match (moves.as_slice(), kept.as_slice()) {
        ([(from, to)], []) => format!("{whose} {conv} moved from slot {from} to slot {to} and re-prefilled {tokens} tokens"),
        (m, []) => format!("{whose} {conv} moved slot {} times ({}) and re-prefilled {tokens} tokens", m.len(), arrows(m)),
        ([], [slot]) => format!(
            "{whose} {conv} kept slot {slot} but re-prefilled {tokens} tokens: another prompt took the slot between its turns"
        ),
        ([], k) => {
            let kept = match k {
                [first, ..] if k.iter().all(|s| s == first) => format!("slot {first}"),
                _ if convs.len() > 1 => "their slots".into(),
                _ => "its slot".into(),
            };
            format!(
                "{whose} {conv} kept {kept} but re-prefilled {tokens} tokens over {} turns: other prompts took the \
                 slot between turns",
                k.len()
            )
        }
        (m, k) => format!(
            "{whose} {conv} moved slot {} time(s) ({}) and lost its slot to another prompt {} time(s), re-prefilling \
             {tokens} tokens",
            m.len(),
            arrows(m),
            k.len()
        ),
    }
}

/// The fix for thrashed turns, chosen by what the run ran on: more trials than slots wants
/// `-np ≥ --jobs`; a conversation that moved although the slots were enough wants
/// `--slot-prompt-similarity`; a server without its host-memory prompt cache (`--cache-ram 0`)
/// wants it back; an evicted prefix with slots enough, a larger host-memory cache.
pub fn thrash_fix(pool: &Pool, turns: &[Thrash]) -> String {
    let moved = turns.iter().any(|x| matches!(x.lost, Lost::Moved { .. }));
    let evicted = turns.iter().any(|x| matches!(x.lost, Lost::Evicted { .. }));
    let mut fixes = Vec::new();
    if pool.oversubscribed() {
        fixes.push(pool.jobs_fix());
    } else if moved {
        fixes.push(if pool.similarity_off == Some(true) {
            "set --slot-prompt-similarity back above 0 (the default 0.1), so that a follow-up turn goes to the slot \
             holding its conversation"
                .to_string()
        } else {
            "set --slot-prompt-similarity (the share of a prompt a slot must already hold to be chosen for it), so that \
             a follow-up turn goes to the slot holding its conversation"
                .to_string()
        });
    }
    match pool.cache_ram_off {
        Some(true) => fixes.push(
            "keep the host-memory prompt cache (drop --cache-ram 0): it gives a moved or evicted conversation its prefix back"
                .into(),
        ),
        _ if fixes.is_empty() || evicted => fixes.push(
            "keep --cache-ram (a larger --cache-ram MiB holds more evicted prompts in host memory for their next turn)"
                .into(),
        ),
        _ => {}
    }
    fixes.join("; ")
}

/// The slots that served a trial's requests, in the order of the requests, repeats run
/// together (`[0, 1, 0]`); empty when no request said.
pub fn slots_used(t: &TrialRecord) -> Vec<u32> {
    let mut reqs: Vec<&RequestRecord> = t.telemetry.requests.iter().collect();
    reqs.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
    let mut out: Vec<u32> = reqs.iter().filter_map(|q| q.slot).collect();
    out.dedup();
    out
}

/// How long a set of requests waited for a slot: the sum over those that recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    pub ms: f64,
    /// Requests that recorded their wait, of `requests`.
    pub recorded: usize,
    pub requests: usize,
}

/// A trial's wait for a slot; `None` when none of its requests recorded one.
pub fn trial_wait(t: &TrialRecord) -> Option<Wait> {
    let reqs = &t.telemetry.requests;
    let waits: Vec<f64> = reqs.iter().filter_map(|q| q.queue_ms).collect();
    (!waits.is_empty()).then(|| Wait { ms: waits.iter().sum(), recorded: waits.len(), requests: reqs.len() })
}

/// A run's wait for slots against its trials' agent time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunWait {
    pub wait: Wait,
    /// Σ `agent_s` over the trials that recorded a wait.
    pub agent_s: f64,
    pub trials: usize,
}

impl RunWait {
    /// Σ queue_ms / Σ agent_s; `None` without agent time.
    pub fn share(&self) -> Option<f64> {
        (self.agent_s > 0.0).then(|| self.wait.ms / 1000.0 / self.agent_s)
    }
}

/// The run's wait for slots: Σ queue_ms over its requests against Σ agent_s over the trials
/// that recorded one; `None` when no request recorded its wait (unknown, not zero).
pub fn run_wait(run: &RunRecord) -> Option<RunWait> {
    let mut out: Option<RunWait> = None;
    let requests: usize = run.trials.iter().map(|t| t.telemetry.requests.len()).sum();
    for t in &run.trials {
        let Some(w) = trial_wait(t) else { continue };
        let r = out.get_or_insert(RunWait { wait: Wait { ms: 0.0, recorded: 0, requests }, agent_s: 0.0, trials: 0 });
        r.wait.ms += w.ms;
        r.wait.recorded += w.recorded;
        r.agent_s += t.agent_run.agent_s;
        r.trials += 1;
    }
    out
}

/// `2104` → `2,104`.
pub fn thousands(n: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synth;
    use crate::store::{ServerInfo, ServerUse};

    fn turn(conv: u32, turn: u32, slot: u32, re: u64) -> RequestRecord {
        RequestRecord {
            offset_ms: (conv * 100 + turn) as f64 * 1000.0,
            total_ms: 500.0,
            status: 200,
            prompt_n: Some(re + 50),
            cache_n: Some(100),
            reprefilled_tokens: Some(re),
            conversation: Some(conv),
            turn: Some(turn),
            slot: Some(slot),
            ..Default::default()
        }
    }

    fn trial(requests: Vec<RequestRecord>) -> TrialRecord {
        let mut t = synth::trial("expr_calc", "pi", 0, 11, 15, 11);
        t.telemetry.requests = requests;
        t
    }

    fn run(jobs: Option<u32>, slots: u32, flags: Option<&[&str]>) -> RunRecord {
        let mut r = synth::run_record("r1", chrono::Utc::now(), &["pi".to_string()]);
        r.config.jobs = jobs;
        r.server = Some(ServerInfo {
            total_slots: Some(slots),
            flags: flags.map(|f| f.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_move_with_a_large_reprefill_is_thrash_and_a_small_one_is_not() {
        // 255 tokens again out of a 2,305-token prompt is not worth a flag; most of a short
        // prompt is (the scripted overlap agent's turn 2: 253 of 276).
        let small = RequestRecord { cache_n: Some(2000), ..turn(0, 2, 0, 255) };
        let t = trial(vec![turn(0, 0, 0, 0), turn(0, 1, 1, 2104), small]);
        let x = thrash(&t);
        assert_eq!(x, [Thrash { conversation: 0, turn: 1, lost: Lost::Moved { from: 0, to: 1 }, tokens: 2104 }]);
        let short = RequestRecord { prompt_n: Some(276), cache_n: Some(23), ..turn(0, 1, 0, 253) };
        assert_eq!(thrash(&trial(vec![turn(0, 0, 0, 0), short])).len(), 1, "most of its prompt again");
        assert_eq!(
            sentence("trial expr_calc/pi/0's", &x),
            "trial expr_calc/pi/0's conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens"
        );
        assert_eq!(slots_used(&t), [0, 1, 0]);
    }

    #[test]
    fn a_large_reprefill_on_the_same_slot_is_an_eviction_unless_nothing_was_cached() {
        let mut uncached = turn(0, 2, 0, 900);
        uncached.cache_n = Some(0);
        let t = trial(vec![turn(0, 0, 0, 0), turn(0, 1, 0, 1800), uncached]);
        let x = thrash(&t);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].lost, Lost::Evicted { slot: 0 });
        assert!(sentence("its", &x).starts_with("its conversation kept slot 0 but re-prefilled 1,800 tokens"));
        // Turns without a slot are not judged.
        let mut a = turn(0, 1, 0, 3000);
        a.slot = None;
        assert!(thrash(&trial(vec![turn(0, 0, 0, 0), a])).is_empty());
    }

    #[test]
    fn the_fix_follows_the_evidence() {
        let moved = [Thrash { conversation: 0, turn: 1, lost: Lost::Moved { from: 0, to: 1 }, tokens: 2104 }];
        let evicted = [Thrash { conversation: 0, turn: 1, lost: Lost::Evicted { slot: 0 }, tokens: 2104 }];
        // More trials than slots.
        let fix = thrash_fix(&Pool::of(&run(Some(4), 2, None)), &moved);
        assert!(fix.starts_with("-np ≥ --jobs (--jobs 4 with -np 2: -np 4, or --jobs 2"), "{fix}");
        assert!(!fix.contains("--slot-prompt-similarity"), "{fix}");
        // Slots enough, yet it moved.
        let fix = thrash_fix(&Pool::of(&run(Some(2), 2, Some(&["-np", "2"]))), &moved);
        assert!(fix.starts_with("set --slot-prompt-similarity") && !fix.contains("-np ≥"), "{fix}");
        // No host-memory cache: keep it.
        let fix = thrash_fix(&Pool::of(&run(None, 1, Some(&["-np", "1", "--cache-ram", "0"]))), &evicted);
        assert!(fix.contains("drop --cache-ram 0") && !fix.contains("-np ≥"), "{fix}");
        let fix = thrash_fix(&Pool::of(&run(Some(2), 1, Some(&["-cram=0"]))), &evicted);
        assert!(fix.starts_with("-np ≥ --jobs (--jobs 2 with -np 1") && fix.contains("drop --cache-ram 0"), "{fix}");
    }

    #[test]
    fn a_pool_sums_its_servers_slots() {
        let mut r = run(Some(4), 2, None);
        r.servers = vec![
            ServerUse { url: "a".into(), total_slots: Some(1), ..Default::default() },
            ServerUse { url: "b".into(), total_slots: Some(2), ..Default::default() },
        ];
        let p = Pool::of(&r);
        assert_eq!((p.slots, p.servers, p.oversubscribed()), (Some(3), 2, true));
        assert_eq!(p.np(), "3 slots over 2 servers");
        r.servers[0].total_slots = None;
        assert_eq!(Pool::of(&r).slots, None);
    }

    #[test]
    fn waits_are_summed_only_from_requests_that_recorded_them() {
        let mut r = run(Some(4), 2, None);
        let mut a = turn(0, 0, 0, 0);
        a.queue_ms = Some(3000.0);
        let mut b = turn(0, 1, 0, 0);
        b.queue_ms = Some(200.0);
        let t = trial(vec![a, b, turn(0, 2, 0, 0)]);
        assert_eq!(trial_wait(&t), Some(Wait { ms: 3200.0, recorded: 2, requests: 3 }));
        r.trials = vec![t, trial(vec![turn(0, 0, 0, 0)])];
        assert_eq!(run_wait(&r).unwrap().agent_s, 58.0, "only the trial that recorded a wait counts");
        r.trials.remove(0);
        assert_eq!(run_wait(&r), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(
            (thousands(0), thousands(999), thousands(2104), thousands(1234567)),
            ("0".into(), "999".into(), "2,104".into(), "1,234,567".into())
        );
    }
}
