//! Checks on the slots a stored run's requests went to: follow-up turns prefilled again because
//! their conversation moved slot or lost its slot to another prompt (slot thrash), and the
//! share of the trials' agent time spent waiting for a slot. The reading of the record is
//! `report::slots`, which `show` shares.

use super::{Finding, Kind};
use crate::doctor::facts::RunFacts;
use crate::report::slots::{run_thrash, run_wait, sentence, slots_recorded, thousands, thrash_fix, Pool, Thrash};
use crate::report::slots::{RunWait, THRASH_MIN_TOKENS};
use crate::store::RunRecord;

/// Trials the thrash finding names, worst first; the rest are counted.
const WORST_SHOWN: usize = 3;

/// Above this share of the trials' agent time spent waiting for a slot, the wait costs time.
pub(super) const WAIT_COST_SHARE: f64 = 0.10;

pub(super) fn thrash(run: &RunRecord, facts: &RunFacts, f: &mut Vec<Finding>) {
    if !slots_recorded(run) {
        f.push(Finding::new(
            Kind::BlindSpot,
            "slot_thrash",
            "no request of the run recorded the slot that served it (llama-server's id_slot): whether conversations \
             moved slot between turns is unknown"
                .into(),
            None,
        ));
        return;
    }
    let worst = run_thrash(run);
    if worst.is_empty() {
        let follow_ups = run
            .trials
            .iter()
            .flat_map(|t| &t.telemetry.requests)
            .filter(|q| q.turn.is_some_and(|n| n > 0) && q.slot.is_some())
            .count();
        f.push(Finding::new(
            Kind::Ok,
            "slot_thrash",
            format!(
                "no follow-up turn re-prefilled {THRASH_MIN_TOKENS} or more tokens (or half its prompt) after its \
                 conversation moved slot or lost its slot ({follow_ups} follow-up turn(s) with their slot recorded)"
            ),
            None,
        ));
        return;
    }
    let turns: Vec<Thrash> = worst.iter().flat_map(|w| w.turns.iter().cloned()).collect();
    let total: u64 = worst.iter().map(|w| w.tokens).sum();
    let cost =
        facts.prefill_tps.map(|tps| format!(" (about {:.0} s of prefill)", total as f64 / tps)).unwrap_or_default();
    let message = match worst.as_slice() {
        [one] => format!("{}{cost}", sentence(&format!("trial {}'s", one.trial.id), &one.turns)),
        _ => {
            let named: Vec<String> = worst
                .iter()
                .take(WORST_SHOWN)
                .map(|w| sentence(&format!("trial {}'s", w.trial.id), &w.turns))
                .collect();
            let more = match worst.len().saturating_sub(WORST_SHOWN) {
                0 => String::new(),
                n => format!("; and {n} more trial(s)"),
            };
            format!(
                "{} trials re-prefilled {} tokens in all{cost} over {} follow-up turn(s) whose conversation moved slot \
                 or lost its slot to another prompt: {}{more}",
                worst.len(),
                thousands(total),
                turns.len(),
                named.join("; ")
            )
        }
    };
    f.push(Finding::new(Kind::Cost, "slot_thrash", message, Some(&thrash_fix(&Pool::of(run), &turns))));
}

pub(super) fn wait(run: &RunRecord, facts: &RunFacts, f: &mut Vec<Finding>) {
    let unknown = |why: &str| {
        Finding::new(
            Kind::BlindSpot,
            "slot_wait",
            format!("{why}: the share of the trials' agent time spent waiting for a slot is unknown"),
            None,
        )
    };
    let Some(w) = run_wait(run) else {
        return f.push(unknown("no request of the run recorded how long it waited for a slot (queue_ms)"));
    };
    let Some(share) = w.share() else {
        return f.push(unknown("the trials whose requests recorded their wait for a slot recorded no agent time"));
    };
    let pct = share * 100.0;
    let figures = figures(&w);
    if share <= WAIT_COST_SHARE {
        return f.push(Finding::new(
            Kind::Ok,
            "slot_wait",
            format!("trials waited {pct:.1}% of their agent time for a slot ({figures})"),
            None,
        ));
    }
    let pool = Pool::of(run);
    let (j, np) = (pool.jobs, pool.np());
    let at_once = facts.max_requests.max(1) as u32;
    let (cause, fix) = if pool.oversubscribed() {
        (format!("--jobs {j} exceeds {np}"), pool.jobs_fix())
    } else if let Some(extra) = other_clients(run) {
        (
            format!(
                "with no more trials than slots (--jobs {j}, {np}), the server processed {} tokens more than the \
                 run's requests asked for: other clients were using it",
                thousands(extra)
            ),
            "give the benchmark a server of its own, or no more --jobs than the slots the other clients leave free"
                .into(),
        )
    } else if pool.slots.is_some_and(|s| j * at_once > s) {
        (
            format!(
                "an agent made up to {at_once} requests at once, so --jobs {j} wanted up to {} slots, more than {np}",
                j * at_once
            ),
            format!("-np {} (--jobs × requests at once), or fewer --jobs", j * at_once),
        )
    } else if pool.slots.is_none() {
        (format!("the server's number of slots is unknown (--jobs {j})"), format!("-np ≥ --jobs (-np {j})"))
    } else {
        (
            format!(
                "with no more trials than slots (--jobs {j}, {np}) the wait came from elsewhere: another client of \
                 the server, or one long request holding up the batch"
            ),
            "give the benchmark a server of its own; `fixbench doctor --server URL` during a run shows the requests \
             waiting (requests_deferred)"
                .into(),
        )
    };
    f.push(Finding::new(
        Kind::Cost,
        "slot_wait",
        format!("trials waited {pct:.0}% of their agent time for a slot: {cause} ({figures})"),
        Some(&fix),
    ));
}

/// `76.0 s of 200.0 s of agent time over 2 trial(s)`, and how many requests recorded a wait
/// when not all did.
fn figures(w: &RunWait) -> String {
    let partial = if w.wait.recorded < w.wait.requests {
        format!("; {} of the {} requests recorded their wait", w.wait.recorded, w.wait.requests)
    } else {
        String::new()
    };
    format!("{:.1} s of {:.1} s of agent time over {} trial(s){partial}", w.wait.ms / 1000.0, w.agent_s, w.trials)
}

/// Tokens the pool's servers processed (prompt and predicted, from their `/metrics` over the
/// run) beyond what the run's own requests asked for, when that is more than a tenth over
/// (and 1,000 tokens): the servers had other clients.
fn other_clients(run: &RunRecord) -> Option<u64> {
    let (mut server, mut asked) = (0.0f64, 0.0f64);
    for s in &run.servers {
        let Some(m) = &s.metrics else { continue };
        server += m.prompt_tokens + m.predicted_tokens;
        // In a merged run, each machine's servers served that machine's trials.
        let mine = |t: &&crate::store::TrialRecord| {
            (s.host.is_none() || t.host == s.host)
                && (run.servers.len() == 1 || t.telemetry.server_url.as_deref() == Some(s.url.as_str()))
        };
        for t in run.trials.iter().filter(mine) {
            for q in &t.telemetry.requests {
                asked += (q.prompt_n.unwrap_or(0) + q.predicted_n.unwrap_or(0)) as f64;
            }
        }
    }
    let extra = server - asked;
    (extra > 1000.0 && extra > 0.1 * asked).then_some(extra.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::synth;
    use crate::store::{RequestRecord, ServerDelta, ServerInfo, ServerUse, TrialRecord};

    /// Turn `turn` of conversation `conv`, served by `slot`, re-prefilling `re` tokens.
    fn turn(conv: u32, turn: u32, slot: Option<u32>, re: u64) -> RequestRecord {
        RequestRecord {
            offset_ms: turn as f64 * 10_000.0 + conv as f64 * 1000.0,
            total_ms: 2000.0,
            status: 200,
            prompt_n: Some(re + 40),
            cache_n: Some(if turn == 0 { 0 } else { 120 }),
            prompt_ms: Some((re + 40) as f64),
            predicted_n: Some(50),
            predicted_ms: Some(500.0),
            reprefilled_tokens: (turn > 0).then_some(re),
            conversation: Some(conv),
            turn: Some(turn),
            slot,
            ..Default::default()
        }
    }

    fn trial(agent_repeat: u32, requests: Vec<RequestRecord>, agent_s: f64) -> TrialRecord {
        let mut t = synth::trial("expr_calc", "pi", agent_repeat, 11, 15, 11);
        t.telemetry.timing = Some(crate::telemetry::summary::time_split(&requests, agent_s));
        t.telemetry.requests = requests;
        t.agent_run.agent_s = agent_s;
        t
    }

    /// A run of `trials` with `--jobs jobs` on one server of `slots` slots started with `flags`.
    fn run(jobs: u32, slots: u32, flags: &[&str], trials: Vec<TrialRecord>) -> RunRecord {
        let mut r = synth::run_record("r1", chrono::Utc::now(), &["pi".to_string()]);
        r.config.jobs = Some(jobs);
        r.server = Some(ServerInfo {
            url: "http://127.0.0.1:8080".into(),
            total_slots: Some(slots),
            flags: Some(flags.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        });
        r.trials = trials;
        r
    }

    fn judge(run: &RunRecord) -> Vec<Finding> {
        let facts = RunFacts::of(Some(run)).expect("facts");
        let mut f = Vec::new();
        thrash(run, &facts, &mut f);
        wait(run, &facts, &mut f);
        f
    }

    fn one<'a>(f: &'a [Finding], check: &str) -> &'a Finding {
        let mut it = f.iter().filter(|x| x.check == check);
        let x = it.next().unwrap_or_else(|| panic!("no {check} finding: {f:?}"));
        assert!(it.next().is_none(), "one {check} finding: {f:?}");
        x
    }

    fn moved_trial() -> TrialRecord {
        trial(0, vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(1), 2104), turn(0, 2, Some(1), 10)], 100.0)
    }

    #[test]
    fn a_conversation_moved_by_too_many_jobs_names_the_trial_and_np() {
        let f = judge(&run(4, 2, &["-np", "2"], vec![moved_trial()]));
        let x = one(&f, "slot_thrash");
        assert_eq!(x.kind, Kind::Cost);
        assert!(
            x.message.starts_with(
                "trial expr_calc/pi/0's conversation moved from slot 0 to slot 1 and re-prefilled 2,104 tokens"
            ),
            "{}",
            x.message
        );
        let fix = x.fix.as_deref().unwrap();
        assert!(fix.starts_with("-np ≥ --jobs (--jobs 4 with -np 2: -np 4, or --jobs 2"), "{fix}");
    }

    #[test]
    fn a_conversation_moved_with_slots_enough_names_slot_prompt_similarity() {
        let f = judge(&run(2, 2, &["-np", "2"], vec![moved_trial()]));
        let fix = one(&f, "slot_thrash").fix.clone().unwrap();
        assert!(fix.starts_with("set --slot-prompt-similarity") && !fix.contains("-np ≥"), "{fix}");
    }

    #[test]
    fn a_prefix_evicted_on_one_slot_without_the_host_cache_names_np_and_cache_ram() {
        // -np 1 --cache-ram 0 with two trials at once: the neighbour took the slot in between.
        let a = trial(0, vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 1800)], 100.0);
        let b = trial(1, vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 300), turn(0, 2, Some(0), 5000)], 100.0);
        let f = judge(&run(2, 1, &["-np", "1", "--cache-ram", "0"], vec![a, b]));
        let x = one(&f, "slot_thrash");
        assert_eq!(x.kind, Kind::Cost);
        assert!(
            x.message.starts_with(
                "2 trials re-prefilled 7,100 tokens in all (about 7 s of prefill) over 3 follow-up turn(s)"
            ),
            "{}",
            x.message
        );
        // The worst first.
        let (b_at, a_at) = (x.message.find("expr_calc/pi/1's").unwrap(), x.message.find("expr_calc/pi/0's").unwrap());
        assert!(b_at < a_at, "{}", x.message);
        assert!(x.message.contains("kept slot 0 but re-prefilled 1,800 tokens"), "{}", x.message);
        let fix = x.fix.as_deref().unwrap();
        assert!(fix.contains("--jobs 2 with -np 1") && fix.contains("drop --cache-ram 0"), "{fix}");
    }

    #[test]
    fn too_many_jobs_for_the_slots_make_a_queueing_warning() {
        // Two trials of 100 s each, 38 s of each spent waiting for a slot.
        let waited = |repeat: u32| {
            let mut reqs = vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 0)];
            reqs[0].queue_ms = Some(30_000.0);
            reqs[1].queue_ms = Some(8_000.0);
            trial(repeat, reqs, 100.0)
        };
        let f = judge(&run(4, 2, &["-np", "2"], vec![waited(0), waited(1)]));
        let x = one(&f, "slot_wait");
        assert_eq!(x.kind, Kind::Cost);
        assert_eq!(
            x.message,
            "trials waited 38% of their agent time for a slot: --jobs 4 exceeds -np 2 (76.0 s of 200.0 s of agent \
             time over 2 trial(s))"
        );
        let fix = x.fix.as_deref().unwrap();
        assert!(fix.contains("-np ≥ --jobs") && fix.contains("--jobs 2") && fix.contains("--jobs auto"), "{fix}");
    }

    #[test]
    fn waiting_with_slots_enough_names_other_clients_when_the_server_counted_more() {
        let mut reqs = vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 0)];
        reqs[0].queue_ms = Some(30_000.0);
        let mut r = run(2, 2, &["-np", "2"], vec![trial(0, reqs, 100.0)]);
        r.servers = vec![ServerUse {
            url: "http://127.0.0.1:8080".into(),
            total_slots: Some(2),
            trials: 1,
            metrics: Some(ServerDelta { prompt_tokens: 50_000.0, predicted_tokens: 2_000.0, ..Default::default() }),
            ..Default::default()
        }];
        let x = judge(&r).into_iter().find(|x| x.check == "slot_wait").unwrap();
        assert_eq!(x.kind, Kind::Cost);
        assert!(
            x.message.starts_with("trials waited 30% of their agent time for a slot: with no more trials than slots")
                && x.message.contains("other clients"),
            "{}",
            x.message
        );
        // Without the server's counters, the wait is not blamed on jobs either.
        r.servers.clear();
        let x = judge(&r).into_iter().find(|x| x.check == "slot_wait").unwrap();
        assert!(x.message.contains("came from elsewhere") && !x.message.contains("exceeds"), "{}", x.message);
    }

    #[test]
    fn a_clean_run_is_ok_with_its_figures() {
        let mut reqs = vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 100), turn(0, 2, Some(0), 0)];
        reqs[1].queue_ms = Some(1500.0);
        reqs[0].queue_ms = Some(0.0);
        reqs[2].queue_ms = Some(0.0);
        let f = judge(&run(1, 1, &["-np", "1"], vec![trial(0, reqs, 100.0)]));
        let x = one(&f, "slot_thrash");
        assert_eq!(x.kind, Kind::Ok, "{x:?}");
        assert!(x.message.contains("(2 follow-up turn(s) with their slot recorded)"), "{}", x.message);
        let x = one(&f, "slot_wait");
        assert_eq!(
            (x.kind, x.message.as_str()),
            (
                Kind::Ok,
                "trials waited 1.5% of their agent time for a slot (1.5 s of 100.0 s of agent time over 1 trial(s))"
            )
        );
    }

    #[test]
    fn without_slots_or_waits_recorded_both_are_unknown_never_zero() {
        let reqs = vec![turn(0, 0, None, 0), turn(0, 1, None, 3000)];
        let f = judge(&run(4, 2, &[], vec![trial(0, reqs, 100.0)]));
        for check in ["slot_thrash", "slot_wait"] {
            let x = one(&f, check);
            assert_eq!(x.kind, Kind::BlindSpot, "{x:?}");
            assert!(x.message.contains("unknown") && !x.message.contains('%') && !x.message.contains(" 0 "), "{x:?}");
        }
        assert!(one(&f, "slot_wait").message.contains("(queue_ms)"));
    }

    #[test]
    fn a_partly_recorded_wait_says_how_many_requests_recorded_it() {
        let mut reqs = vec![turn(0, 0, Some(0), 0), turn(0, 1, Some(0), 0)];
        reqs[0].queue_ms = Some(500.0);
        let f = judge(&run(1, 1, &[], vec![trial(0, reqs, 100.0)]));
        assert!(one(&f, "slot_wait").message.ends_with("; 1 of the 2 requests recorded their wait)"), "{f:?}");
    }
}
