//! What a trial cost: its tokens times its model's price from `harness.toml`'s `[prices]`.
//!
//! A trial's tokens are, first, its requests through the recording proxy (the server's
//! `timings`, else the answer's `usage`: `prompt_n` leaves out the `cache_n` tokens read
//! from the prompt cache, `predicted_n` were generated); else the usage the agent reported
//! itself (`agent_usage`: `input_tokens` counts the cached ones, `cached_tokens` of them, and
//! `output_tokens`). A trial with neither, or with a generation request left uncounted, has
//! no cost, and neither has a trial whose model has no price: never a zero.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Price;
use crate::store::{RunRecord, TrialRecord};

/// One trial's tokens, split as they are priced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tokens {
    /// Prompt tokens processed afresh (not read from a cache).
    pub uncached: u64,
    /// Prompt tokens read from a cache.
    pub cached: u64,
    pub generated: u64,
}

/// Why a trial has no cost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    /// `harness.toml` has no `[prices."<model>"]` for the trial's model.
    Price(String),
    /// The trial recorded no token counts (no requests through the proxy, no usage from the
    /// agent, or a generation request whose answer carried none).
    Tokens,
}

impl Missing {
    /// The sentence a report shows for it.
    pub fn describe(&self) -> String {
        match self {
            Missing::Price(m) => format!("no price for model `{m}` (add [prices.\"{m}\"] to harness.toml)"),
            Missing::Tokens => "trials without token counts".into(),
        }
    }
}

/// The model a run's trials are priced as: its `model` label, else the model the server
/// reported, else the model name agents were told to use (`--model`).
pub fn priced_model(run: &RunRecord) -> Option<String> {
    super::group::model(run).or_else(|| run.config.model.clone())
}

/// The trial's tokens, or `None` when it recorded none.
pub fn tokens(trial: &TrialRecord) -> Option<Tokens> {
    let requests = &trial.telemetry.requests;
    // A generation request: one of a conversation that the server answered.
    let generation: Vec<_> =
        requests.iter().filter(|r| r.conversation.is_some() && r.status > 0 && r.status < 400).collect();
    if !generation.is_empty() {
        let mut t = Tokens::default();
        for r in generation {
            t.uncached += r.prompt_n?;
            t.cached += r.cache_n.unwrap_or(0);
            t.generated += r.predicted_n?;
        }
        return Some(t);
    }
    let usage = trial.agent_run.agent_usage.as_ref()?;
    let n = |k: &str| usage.get(k).and_then(serde_json::Value::as_u64);
    let (input, output) = (n("input_tokens")?, n("output_tokens")?);
    let cached = n("cached_tokens").unwrap_or(0).min(input);
    Some(Tokens { uncached: input - cached, cached, generated: output })
}

/// Dollars for `tokens` at `price` (dollars per million tokens).
pub fn dollars(tokens: Tokens, price: &Price) -> f64 {
    (tokens.uncached as f64 * price.input
        + tokens.cached as f64 * price.cached()
        + tokens.generated as f64 * price.output)
        / 1e6
}

/// The trial's cost in dollars, or why it has none.
pub fn trial_cost(
    run: &RunRecord,
    trial: &TrialRecord,
    prices: &BTreeMap<String, Price>,
) -> std::result::Result<f64, Missing> {
    let model = priced_model(run).unwrap_or_else(|| "unknown".into());
    let price = prices.get(&model).ok_or(Missing::Price(model))?;
    let tokens = tokens(trial).ok_or(Missing::Tokens)?;
    Ok(dollars(tokens, price))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::report::synth;
    use crate::store::RequestRecord;

    fn request(prompt_n: Option<u64>, cache_n: Option<u64>, predicted_n: Option<u64>) -> RequestRecord {
        RequestRecord { status: 200, conversation: Some(0), prompt_n, cache_n, predicted_n, ..Default::default() }
    }

    fn price() -> Price {
        Price { input: 2.0, cached_input: Some(0.5), output: 8.0 }
    }

    #[test]
    fn cost_prices_fresh_cached_and_generated_tokens_apart() {
        let t = Tokens { uncached: 1_000_000, cached: 2_000_000, generated: 500_000 };
        // 1 M × $2 + 2 M × $0.5 + 0.5 M × $8
        assert!((dollars(t, &price()) - 7.0).abs() < 1e-12);
        let no_discount = Price { cached_input: None, ..price() };
        assert!((dollars(t, &no_discount) - 10.0).abs() < 1e-12);
    }

    #[test]
    fn tokens_come_from_requests_else_the_agents_usage() {
        let mut trial = synth::trial("expr_calc", "a", 0, 15, 15, 11);
        assert_eq!(tokens(&trial), None, "nothing recorded is not zero");
        trial.agent_run.agent_usage = Some(
            serde_json::json!({"format": "codex", "input_tokens": 1000, "cached_tokens": 600, "output_tokens": 50}),
        );
        assert_eq!(tokens(&trial), Some(Tokens { uncached: 400, cached: 600, generated: 50 }));
        // Requests win: the proxy saw every one.
        trial.telemetry.requests = vec![
            request(Some(100), Some(0), Some(20)),
            request(Some(30), Some(100), Some(10)),
            RequestRecord { status: 200, path: "/v1/models".into(), ..Default::default() },
        ];
        assert_eq!(tokens(&trial), Some(Tokens { uncached: 130, cached: 100, generated: 30 }));
        // One answer without counts: the trial's tokens are unknown, not undercounted.
        trial.telemetry.requests.push(request(None, None, None));
        assert_eq!(tokens(&trial), None);
    }

    #[test]
    fn trial_cost_needs_a_price_for_the_runs_model_and_tokens() {
        let mut run = synth::run_record("20260201-120000-0001", Utc::now(), &["a".into()]);
        let mut trial = synth::trial("expr_calc", "a", 0, 15, 15, 11);
        let prices = BTreeMap::from([("frontier".to_string(), price())]);
        assert_eq!(trial_cost(&run, &trial, &prices), Err(Missing::Price("unknown".into())));
        run.config.model = Some("local".into());
        assert_eq!(trial_cost(&run, &trial, &prices), Err(Missing::Price("local".into())));
        run.labels.insert("model".into(), "frontier".into());
        assert_eq!(trial_cost(&run, &trial, &prices), Err(Missing::Tokens));
        trial.telemetry.requests = vec![request(Some(250_000), Some(0), Some(125_000))];
        // 0.25 M × $2 + 0.125 M × $8
        assert_eq!(trial_cost(&run, &trial, &prices), Ok(1.5));
    }
}
