//! `fixbench doctor [--server URL] [RUN_ID]`: reads a llama-server's `/props`, `/slots` and
//! `/metrics` (and a stored run's requests) and says in plain sentences what is costing time,
//! each with the flag that fixes it.
//!
//! Gathering (`Evidence::gather`) is kept apart from judging (`diagnose`, plain data in,
//! findings out) so each check can be tested without a server.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::report::runs::{self, ResultsArg};
use crate::store::{RequestRecord, RunRecord};
use crate::telemetry::client::{Reply, Server};
use crate::telemetry::metrics;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// A stored run whose requests to examine too: a run id, `latest` or `latest~N`
    #[arg(value_name = "RUN_ID")]
    pub run: Option<String>,
    /// The llama-server to examine [default: the run's server]
    #[arg(long, env = "FIXBENCH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// It costs time now.
    Cost,
    /// fixbench cannot see something it needs.
    BlindSpot,
    /// Worth knowing; costs nothing by itself.
    Note,
    /// Checked and fine.
    Ok,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// Which check: `slots`, `context`, `reprefill`, `prompt_cache`, `queue`, …
    pub check: &'static str,
    pub message: String,
    /// The server flag (or client setting) that fixes it.
    pub fix: Option<String>,
}

impl Finding {
    fn new(kind: Kind, check: &'static str, message: String, fix: Option<&str>) -> Finding {
        Finding {
            kind,
            check,
            message,
            fix: fix.map(str::to_string),
        }
    }
}

/// An endpoint's answer, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint<T> {
    Ok(T),
    /// 501: turned off by a server flag.
    Off,
    Failed(String),
}

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub url: Option<String>,
    /// Why the server could not be read, when it could not.
    pub unreachable: Option<String>,
    pub props: Option<Value>,
    pub slots: Endpoint<Value>,
    pub metrics: Endpoint<BTreeMap<String, f64>>,
    /// Whether slot actions work (`--slot-save-path`); `None` when not probed.
    pub slot_actions: Option<bool>,
    pub run: Option<RunRecord>,
}

impl Evidence {
    pub fn gather(url: Option<&str>, run: Option<RunRecord>) -> Result<Evidence> {
        let mut ev = Evidence {
            url: url.map(str::to_string),
            unreachable: None,
            props: None,
            slots: Endpoint::Failed("not read".into()),
            metrics: Endpoint::Failed("not read".into()),
            slot_actions: None,
            run,
        };
        let Some(url) = url else { return Ok(ev) };
        let server = Server::new(url)?;
        ev.url = Some(server.root().to_string());
        let props = server.get("/props");
        match props.ok_body("/props") {
            Ok(body) => ev.props = serde_json::from_str(body).ok(),
            Err(why) => {
                ev.unreachable = Some(why);
                return Ok(ev);
            }
        }
        ev.slots = endpoint(server.get("/slots"), "/slots", |b| {
            serde_json::from_str(b).map_err(|e| e.to_string())
        });
        ev.metrics = endpoint(server.get("/metrics"), "/metrics", |b| {
            Ok(metrics::parse(b))
        });
        // An unknown action is refused before anything is done; 501 means no --slot-save-path.
        let probe = server.post_json(
            "/slots/0?action=fixbench-probe",
            &serde_json::json!({}),
            std::time::Duration::from_secs(5),
        );
        ev.slot_actions = probe.status().map(|s| s != 501);
        Ok(ev)
    }
}

fn endpoint<T>(reply: Reply, what: &str, parse: impl Fn(&str) -> Result<T, String>) -> Endpoint<T> {
    if reply.status() == Some(501) {
        return Endpoint::Off;
    }
    match reply.ok_body(what) {
        Ok(body) => match parse(body) {
            Ok(v) => Endpoint::Ok(v),
            Err(e) => Endpoint::Failed(format!("{what} answered something unreadable: {e}")),
        },
        Err(why) => Endpoint::Failed(why),
    }
}

pub fn command(args: DoctorArgs) -> Result<i32> {
    let run = match &args.run {
        Some(name) => Some(runs::load_one(&args.results.store(), name)?),
        None => None,
    };
    let url = args
        .server
        .clone()
        .or_else(|| run.as_ref().and_then(|r| r.config.server_url.clone()));
    if url.is_none() && run.is_none() {
        return Err(Error::BadInput(
            "nothing to examine: give --server URL (or set FIXBENCH_SERVER), a RUN_ID, or both"
                .into(),
        )
        .into());
    }
    let ev = Evidence::gather(url.as_deref(), run)?;
    if let (Some(why), None) = (&ev.unreachable, &ev.run) {
        return Err(Error::Environment(format!(
            "cannot examine the llama-server at {}: {why}",
            ev.url.as_deref().unwrap_or("?")
        ))
        .into());
    }
    let findings = diagnose(&ev);
    if args.json {
        let out = serde_json::json!({
            "server": ev.url,
            "run": ev.run.as_ref().map(|r| r.run_id.clone()),
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&ev, &findings));
    }
    Ok(crate::exit_codes::OK)
}

/// Every check, most costly findings first.
pub fn diagnose(ev: &Evidence) -> Vec<Finding> {
    let mut f = Vec::new();
    let facts = RunFacts::of(ev.run.as_ref());
    if let Some(why) = &ev.unreachable {
        f.push(Finding::new(
            Kind::BlindSpot,
            "server",
            format!("the server could not be read ({why}): only the run's requests were examined"),
            None,
        ));
    } else if ev.props.is_some() {
        endpoints(ev, &mut f);
        slots(ev, &facts, &mut f);
        context(ev, &facts, &mut f);
        prompt_cache_flag(ev, &mut f);
    }
    if let Some(facts) = &facts {
        reprefill(facts, &mut f);
        follow_ups_uncached(facts, &mut f);
        queue(ev, facts, &mut f);
        time(facts, &mut f);
    }
    f.sort_by_key(|x| x.kind);
    f
}

fn prop_u64(ev: &Evidence, pointer: &str) -> Option<u64> {
    ev.props.as_ref()?.pointer(pointer)?.as_u64()
}

fn endpoints(ev: &Evidence, f: &mut Vec<Finding>) {
    let metrics_off = matches!(ev.metrics, Endpoint::Off)
        || ev
            .props
            .as_ref()
            .and_then(|p| p.get("endpoint_metrics"))
            .and_then(Value::as_bool)
            == Some(false);
    if metrics_off {
        f.push(Finding::new(
            Kind::BlindSpot,
            "metrics_endpoint",
            "/metrics is off, so fixbench cannot measure a trial's prompt, cache and decode counters".into(),
            Some("--metrics"),
        ));
    } else if let Endpoint::Failed(why) = &ev.metrics {
        f.push(Finding::new(
            Kind::BlindSpot,
            "metrics_endpoint",
            format!("/metrics could not be read: {why}"),
            None,
        ));
    } else {
        f.push(Finding::new(
            Kind::Ok,
            "metrics_endpoint",
            "/metrics is on".into(),
            None,
        ));
    }
    match &ev.slots {
        Endpoint::Off => f.push(Finding::new(
            Kind::BlindSpot,
            "slots_endpoint",
            "/slots is off, so what each slot holds cannot be seen".into(),
            Some("drop --no-slots"),
        )),
        Endpoint::Failed(why) => f.push(Finding::new(
            Kind::BlindSpot,
            "slots_endpoint",
            format!("/slots could not be read: {why}"),
            None,
        )),
        Endpoint::Ok(_) => f.push(Finding::new(
            Kind::Ok,
            "slots_endpoint",
            "/slots is on".into(),
            None,
        )),
    }
    if ev.slot_actions == Some(false) {
        f.push(Finding::new(
            Kind::Note,
            "slot_save_path",
            "slot actions are off, so `fixbench run --cache-state cold` cannot erase the slots before each trial".into(),
            Some("--slot-save-path DIR"),
        ));
    }
    if let Endpoint::Ok(m) = &ev.metrics {
        if let Some(d) = m.get("requests_deferred").filter(|&&d| d > 0.0) {
            f.push(Finding::new(
                Kind::Cost,
                "queue",
                format!("{d:.0} request(s) are waiting for a free slot right now"),
                Some("-np N (one slot per concurrent session)"),
            ));
        }
    }
}

fn slots(ev: &Evidence, facts: &Option<RunFacts>, f: &mut Vec<Finding>) {
    let Some(n) = prop_u64(ev, "/total_slots") else {
        return;
    };
    match facts.as_ref().map(|r| r.max_conversations) {
        Some(m) if m > 0 && n > m => f.push(Finding::new(
            Kind::Cost,
            "slots",
            format!(
                "the server has {n} slots but the run never had more than {m} conversation(s) going at once: \
                 a follow-up turn can land on a slot that does not hold its conversation's prefix, and then the \
                 whole conversation is prefilled again (the \"two-minute wait\")"
            ),
            Some(&format!("-np {m}")),
        )),
        Some(m) if n < m => f.push(Finding::new(
            Kind::Cost,
            "slots",
            format!(
                "{m} conversations were going at once on {n} slot(s): their requests wait for a free slot, and each can evict the others' prompts"
            ),
            Some(&format!("-np {m}")),
        )),
        Some(m) if m > 0 => f.push(Finding::new(Kind::Ok, "slots", format!("{n} slot(s) for {m} concurrent conversation(s)"), None)),
        _ if n > 1 => f.push(Finding::new(
            Kind::Note,
            "slots",
            format!(
                "the server has {n} slots: right for {n} agents at once, but with one agent at a time a follow-up \
                 turn can land on a slot that does not hold its prefix and be prefilled again"
            ),
            Some("-np 1 (when one agent runs at a time)"),
        )),
        _ => f.push(Finding::new(Kind::Ok, "slots", format!("{n} slot"), None)),
    }
}

fn context(ev: &Evidence, facts: &Option<RunFacts>, f: &mut Vec<Finding>) {
    let Some(n_ctx) = prop_u64(ev, "/default_generation_settings/n_ctx") else {
        return;
    };
    let from_metrics = match &ev.metrics {
        Endpoint::Ok(m) => m.get("n_tokens_max").map(|&x| x as u64).filter(|&x| x > 0),
        _ => None,
    };
    let (used, source) = match (facts.as_ref().and_then(|r| r.max_tokens), from_metrics) {
        (Some(u), _) => (u, "the run's longest request"),
        (None, Some(u)) => (u, "the server's largest request so far"),
        (None, None) => return,
    };
    if used as f64 > n_ctx as f64 * 0.9 {
        f.push(Finding::new(
            Kind::Cost,
            "context",
            format!(
                "{source} used {used} of the {n_ctx} tokens a slot holds: longer conversations get shifted or cut, \
                 and a shifted prompt cannot reuse its cache"
            ),
            Some(&format!("-c {} (per slot)", suggest_ctx(used * 2))),
        ));
    } else if n_ctx > 8192 && used * 4 < n_ctx {
        f.push(Finding::new(
            Kind::Cost,
            "context",
            format!(
                "each slot holds {n_ctx} tokens of KV cache but {source} used {used}: that memory could keep more \
                 of the model on the GPU (fewer -ncmoe / CPU layers) or hold more slots"
            ),
            Some(&format!("-c {} (per slot; without --kv-unified, -c is split between the slots)", suggest_ctx(used * 2))),
        ));
    } else {
        f.push(Finding::new(
            Kind::Ok,
            "context",
            format!("{source} used {used} of {n_ctx} tokens per slot"),
            None,
        ));
    }
}

/// A round context size at or above `tokens`.
fn suggest_ctx(tokens: u64) -> u64 {
    tokens.max(4096).next_power_of_two()
}

fn prompt_cache_flag(ev: &Evidence, f: &mut Vec<Finding>) {
    let cache_prompt = ev
        .props
        .as_ref()
        .and_then(|p| p.pointer("/default_generation_settings/params/cache_prompt"))
        .and_then(Value::as_bool);
    if cache_prompt == Some(false) {
        f.push(Finding::new(
            Kind::Cost,
            "prompt_cache",
            "the prompt cache is off: every request prefills its whole prompt".into(),
            Some("drop --no-cache-prompt"),
        ));
    }
}

fn reprefill(facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.prefilled == 0 {
        return;
    }
    // Turns that found nothing cached at all are the prompt-cache check's business; what is
    // left was evicted between turns.
    let evicted = facts.reprefilled - facts.reprefilled_uncached;
    let evicted_share = evicted as f64 / facts.prefilled as f64;
    if evicted_share > 0.10 {
        let secs = facts.prefill_tps.map(|tps| evicted as f64 / tps);
        let cost = secs
            .map(|s| format!(", about {s:.0} s of prefill"))
            .unwrap_or_default();
        f.push(Finding::new(
            Kind::Cost,
            "reprefill",
            format!(
                "{evicted} of the {} prompt tokens the server prefilled ({:.0}%{cost}) had already been processed by the \
                 previous turn of the same conversation: the cache lost them between turns",
                facts.prefilled,
                evicted_share * 100.0
            ),
            Some("-np 1 when one agent runs at a time; else a larger --cache-ram MiB keeps evicted prompts in memory"),
        ));
    } else {
        let rest = if facts.reprefilled_uncached > 0 {
            format!(
                "; the other {} re-prefilled tokens are the turns that found nothing cached",
                facts.reprefilled_uncached
            )
        } else {
            String::new()
        };
        f.push(Finding::new(
            Kind::Ok,
            "reprefill",
            format!(
                "{:.1}% of prefilled tokens were lost from the cache between turns ({evicted} of {}){rest}",
                evicted_share * 100.0,
                facts.prefilled
            ),
            None,
        ));
    }
}

fn follow_ups_uncached(facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.uncached_follow_ups > 0 {
        f.push(Finding::new(
            Kind::Cost,
            "prompt_cache",
            format!(
                "{} of the {} follow-up turns found nothing at all in the prompt cache, not even their system prompt \
                 ({} tokens prefilled again): the client sends `cache_prompt: false`, or the server runs with \
                 --no-cache-prompt",
                facts.uncached_follow_ups, facts.follow_ups, facts.reprefilled_uncached
            ),
            Some("cache_prompt: true (client) / drop --no-cache-prompt (server)"),
        ));
    }
}

fn queue(ev: &Evidence, facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.queued_s > 1.0 && facts.queued_s > 0.1 * facts.server_wait_s {
        let n = prop_u64(ev, "/total_slots")
            .map(|n| format!(" (the server has {n})"))
            .unwrap_or_default();
        f.push(Finding::new(
            Kind::Cost,
            "queue",
            format!(
                "streamed requests waited {:.1} s in all before their prefill started: more requests at once than slots{n}",
                facts.queued_s
            ),
            Some(&format!("-np {}", facts.max_requests.max(1))),
        ));
    }
}

fn time(facts: &RunFacts, f: &mut Vec<Finding>) {
    if facts.agent_s <= 0.0 {
        return;
    }
    let pct = |x: f64| x / facts.agent_s * 100.0;
    let mut parts = Vec::new();
    if let Some(p) = facts.prompt_s {
        parts.push(format!("prefill {p:.1} s"));
    }
    if let Some(d) = facts.decode_s {
        parts.push(format!("decode {d:.1} s"));
    }
    let inner = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    f.push(Finding::new(
        Kind::Note,
        "time",
        format!(
            "over {} trial(s) the agents ran {:.1} s: {:.1} s ({:.0}%) waiting on the server{inner}, {:.1} s ({:.0}%) in \
             their own work and tools",
            facts.trials,
            facts.agent_s,
            facts.server_wait_s,
            pct(facts.server_wait_s),
            facts.agent_s - facts.server_wait_s,
            pct(facts.agent_s - facts.server_wait_s)
        ),
        None,
    ));
    if let (Some(p), Some(d)) = (facts.prompt_s, facts.decode_s) {
        if p > 2.0 * d && p > 0.3 * facts.server_wait_s {
            f.push(Finding::new(
                Kind::Cost,
                "prefill",
                format!("prefill took {p:.1} s against {d:.1} s of decoding: prompt processing is what the agents wait for"),
                Some("keep the cache hitting (see above); on a GPU -fa on and a larger -ub (e.g. -ub 2048 -b 2048)"),
            ));
        }
    }
}

/// A run's requests summed up for the checks.
#[derive(Debug, Clone, Default)]
struct RunFacts {
    trials: usize,
    agent_s: f64,
    server_wait_s: f64,
    prompt_s: Option<f64>,
    decode_s: Option<f64>,
    prefilled: u64,
    reprefilled: u64,
    prefill_tps: Option<f64>,
    follow_ups: usize,
    /// Follow-up turns that found nothing cached, and the tokens they re-prefilled.
    uncached_follow_ups: usize,
    reprefilled_uncached: u64,
    max_tokens: Option<u64>,
    /// Most conversations whose first-to-last request spans overlapped within one trial.
    max_conversations: u64,
    /// Most requests running at once within one trial.
    max_requests: u64,
    queued_s: f64,
}

impl RunFacts {
    fn of(run: Option<&RunRecord>) -> Option<RunFacts> {
        let run = run?;
        let mut r = RunFacts::default();
        let (mut p_tokens, mut p_ms) = (0u64, 0.0f64);
        for t in run
            .trials
            .iter()
            .filter(|t| !t.requests.is_empty() || t.timing.is_some())
        {
            r.trials += 1;
            if let Some(ts) = &t.timing {
                r.agent_s += ts.server_wait_s + ts.agent_own_s;
                r.server_wait_s += ts.server_wait_s;
                add(&mut r.prompt_s, ts.prompt_s);
                add(&mut r.decode_s, ts.decode_s);
            }
            for q in &t.requests {
                r.prefilled += q.prompt_n.unwrap_or(0);
                r.reprefilled += q.reprefilled_tokens.unwrap_or(0);
                if let (Some(n), Some(ms)) = (q.prompt_n, q.prompt_ms) {
                    p_tokens += n;
                    p_ms += ms;
                }
                if q.turn.is_some_and(|t| t > 0) && q.cache_n.is_some() {
                    r.follow_ups += 1;
                    if q.cache_n == Some(0) {
                        r.uncached_follow_ups += 1;
                        r.reprefilled_uncached += q.reprefilled_tokens.unwrap_or(0);
                    }
                }
                let used =
                    q.prompt_n.unwrap_or(0) + q.cache_n.unwrap_or(0) + q.predicted_n.unwrap_or(0);
                if used > 0 {
                    r.max_tokens = Some(r.max_tokens.unwrap_or(0).max(used));
                }
                if let (Some(ttft), Some(pms)) = (q.ttft_ms, q.prompt_ms) {
                    r.queued_s += ((ttft - pms) / 1000.0).max(0.0);
                }
            }
            r.max_conversations = r
                .max_conversations
                .max(max_overlap(&conversation_spans(&t.requests)));
            let spans: Vec<(f64, f64)> = t
                .requests
                .iter()
                .map(|q| (q.offset_ms, q.offset_ms + q.total_ms))
                .collect();
            r.max_requests = r.max_requests.max(max_overlap(&spans));
        }
        if r.trials == 0 {
            return None;
        }
        r.prefill_tps = (p_tokens > 0 && p_ms > 0.0).then(|| p_tokens as f64 / (p_ms / 1000.0));
        Some(r)
    }
}

fn add(acc: &mut Option<f64>, x: Option<f64>) {
    if let Some(x) = x {
        *acc = Some(acc.unwrap_or(0.0) + x);
    }
}

fn conversation_spans(reqs: &[RequestRecord]) -> Vec<(f64, f64)> {
    let mut spans: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for q in reqs {
        let Some(c) = q.conversation else { continue };
        let (s, e) = (q.offset_ms, q.offset_ms + q.total_ms);
        let span = spans.entry(c).or_insert((s, e));
        span.0 = span.0.min(s);
        span.1 = span.1.max(e);
    }
    spans.into_values().collect()
}

/// The most spans covering one instant.
fn max_overlap(spans: &[(f64, f64)]) -> u64 {
    let mut edges: Vec<(f64, i64)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // Ends sort before starts at the same instant: back-to-back requests do not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut best) = (0i64, 0i64);
    for (_, d) in edges {
        cur += d;
        best = best.max(cur);
    }
    best as u64
}

/// The text report: what was examined, then one paragraph per finding.
pub fn render(ev: &Evidence, findings: &[Finding]) -> String {
    let mut out = String::new();
    if let Some(url) = &ev.url {
        let p = ev.props.as_ref();
        let s = |k: &str| {
            p.and_then(|p| p.pointer(k))
                .and_then(Value::as_str)
                .unwrap_or("?")
        };
        let model = s("/model_path")
            .rsplit('/')
            .next()
            .unwrap_or("?")
            .to_string();
        match (p, &ev.unreachable) {
            (Some(_), _) => out.push_str(&format!(
                "server  {url}: {model}, {} slot(s) × {} tokens, build {}\n",
                prop_u64(ev, "/total_slots")
                    .map(|n| n.to_string())
                    .unwrap_or("?".into()),
                prop_u64(ev, "/default_generation_settings/n_ctx")
                    .map(|n| n.to_string())
                    .unwrap_or("?".into()),
                s("/build_info")
            )),
            (None, _) => out.push_str(&format!("server  {url}: not readable\n")),
        }
    }
    if let Some(run) = &ev.run {
        let reqs: usize = run.trials.iter().map(|t| t.requests.len()).sum();
        out.push_str(&format!(
            "run     {}: {} trial(s), {reqs} request(s)\n",
            run.run_id,
            run.trials.len()
        ));
    }
    out.push('\n');
    for x in findings {
        let tag = match x.kind {
            Kind::Cost => "costs time",
            Kind::BlindSpot => "blind spot",
            Kind::Note => "note",
            Kind::Ok => "ok",
        };
        out.push_str(&format!("{tag:>10}  {}", x.message));
        if let Some(fix) = &x.fix {
            out.push_str(&format!("\n{:>10}  fix: {fix}", ""));
        }
        out.push('\n');
    }
    if !findings.iter().any(|x| x.kind == Kind::Cost) {
        out.push_str("\nnothing found that costs time.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrialRecord;

    fn props(slots: u64, n_ctx: u64) -> Value {
        serde_json::json!({
            "total_slots": slots,
            "default_generation_settings": {"n_ctx": n_ctx, "params": {"cache_prompt": true}},
            "model_path": "/m/Qwen3-8B-Q4_K_M.gguf",
            "build_info": "b1",
        })
    }

    fn ev(props: Value, run: Option<RunRecord>) -> Evidence {
        Evidence {
            url: Some("http://127.0.0.1:8080".into()),
            unreachable: None,
            props: Some(props),
            slots: Endpoint::Ok(serde_json::json!([])),
            metrics: Endpoint::Ok(BTreeMap::new()),
            slot_actions: Some(true),
            run,
        }
    }

    fn req(
        conv: u32,
        turn: u32,
        offset: f64,
        prompt_n: u64,
        cache_n: u64,
        re: u64,
    ) -> RequestRecord {
        RequestRecord {
            offset_ms: offset,
            total_ms: 1000.0,
            status: 200,
            prompt_n: Some(prompt_n),
            cache_n: Some(cache_n),
            prompt_ms: Some(prompt_n as f64),
            predicted_n: Some(10),
            predicted_ms: Some(100.0),
            ttft_ms: Some(prompt_n as f64 + 5.0),
            reprefilled_tokens: (turn > 0).then_some(re),
            conversation: Some(conv),
            turn: Some(turn),
            ..Default::default()
        }
    }

    fn run_with(requests: Vec<RequestRecord>) -> RunRecord {
        use crate::report::synth;
        let mut run = synth::run_record("r1", chrono::Utc::now(), &["a".to_string()]);
        let mut t: TrialRecord = synth::trial("p", "a", 0, 0, 1, 0);
        t.timing = Some(crate::telemetry::summary::time_split(&requests, 60.0));
        t.requests = requests;
        run.trials.push(t);
        run
    }

    fn find<'a>(f: &'a [Finding], check: &str, kind: Kind) -> Option<&'a Finding> {
        f.iter().find(|x| x.check == check && x.kind == kind)
    }

    #[test]
    fn more_slots_than_conversations_names_np() {
        let run = run_with(vec![
            req(0, 0, 0.0, 100, 0, 0),
            req(0, 1, 2000.0, 20, 100, 0),
        ]);
        let f = diagnose(&ev(props(4, 4096), Some(run)));
        let x = find(&f, "slots", Kind::Cost).expect("slots finding");
        assert_eq!(x.fix.as_deref(), Some("-np 1"));
        assert!(find(&f, "reprefill", Kind::Ok).is_some());
    }

    #[test]
    fn high_reprefill_share_is_a_cost() {
        // Evicted between turns: only the shared system prompt was still cached.
        let run = run_with(vec![
            req(0, 0, 0.0, 100, 0, 0),
            req(0, 1, 2000.0, 110, 10, 90),
        ]);
        let f = diagnose(&ev(props(1, 4096), Some(run)));
        let x = find(&f, "reprefill", Kind::Cost).expect("reprefill finding");
        assert!(x.message.contains("90 of the 210"), "{}", x.message);
        assert!(find(&f, "prompt_cache", Kind::Cost).is_none());
        assert!(find(&f, "slots", Kind::Ok).is_some());
    }

    #[test]
    fn follow_ups_with_nothing_cached_point_at_the_prompt_cache() {
        let run = run_with(vec![
            req(0, 0, 0.0, 100, 0, 0),
            req(0, 1, 2000.0, 120, 0, 100),
        ]);
        let f = diagnose(&ev(props(1, 4096), Some(run)));
        let x = find(&f, "prompt_cache", Kind::Cost).expect("prompt cache finding");
        assert!(
            x.message.contains("1 of the 1 follow-up") && x.message.contains("100 tokens"),
            "{}",
            x.message
        );
        assert!(
            find(&f, "reprefill", Kind::Ok).is_some(),
            "not blamed on eviction"
        );
    }

    #[test]
    fn oversized_context_and_disabled_endpoints() {
        let mut e = ev(
            props(1, 131072),
            Some(run_with(vec![req(0, 0, 0.0, 1000, 0, 0)])),
        );
        e.metrics = Endpoint::Off;
        e.slots = Endpoint::Off;
        e.slot_actions = Some(false);
        let f = diagnose(&e);
        assert_eq!(
            find(&f, "context", Kind::Cost)
                .unwrap()
                .fix
                .as_deref()
                .map(|s| s.starts_with("-c 4096")),
            Some(true)
        );
        assert_eq!(
            find(&f, "metrics_endpoint", Kind::BlindSpot)
                .unwrap()
                .fix
                .as_deref(),
            Some("--metrics")
        );
        assert!(find(&f, "slots_endpoint", Kind::BlindSpot).is_some());
        assert!(find(&f, "slot_save_path", Kind::Note).is_some());
        assert_eq!(f[0].kind, Kind::Cost, "costs come first");
    }

    #[test]
    fn prompt_cache_off_in_props() {
        let mut p = props(1, 4096);
        p["default_generation_settings"]["params"]["cache_prompt"] = false.into();
        let f = diagnose(&ev(p, None));
        assert!(find(&f, "prompt_cache", Kind::Cost).is_some());
        assert!(find(&f, "slots", Kind::Ok).is_some());
    }

    #[test]
    fn queueing_from_ttft_beyond_prefill() {
        let mut a = req(0, 0, 0.0, 100, 0, 0);
        a.ttft_ms = Some(5100.0);
        a.total_ms = 6000.0;
        let f = diagnose(&ev(props(1, 4096), Some(run_with(vec![a]))));
        assert!(find(&f, "queue", Kind::Cost)
            .unwrap()
            .message
            .contains("5.0 s"));
    }

    #[test]
    fn overlap_counts() {
        assert_eq!(max_overlap(&[(0.0, 1.0), (1.0, 2.0)]), 1);
        assert_eq!(max_overlap(&[(0.0, 3.0), (1.0, 2.0), (1.5, 4.0)]), 3);
    }
}
