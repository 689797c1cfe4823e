//! The gate's one-screen explanation of a verdict, and its number formatting.

use std::fmt::Write as _;

use super::evaluate::{plural, Verdict};
use crate::exit_codes::GATE_FAILED;

/// The one-screen explanation.
pub fn render(v: &Verdict, base_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "gate: run {} against baseline {base_name}", v.run);
    let _ = writeln!(
        s,
        "paired {} (problem/agent), {} vs {} repeat(s), {} tests per suite repeat",
        plural(v.pairs, "pair"),
        v.repeats.0,
        v.repeats.1,
        v.score.tests
    );
    let sc = &v.score;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "score    {:.1} → {:.1} tests passed per suite repeat: {} {:.1}, 95% CI {:.1} to {:.1} (bootstrap over trials)",
        sc.baseline,
        sc.run,
        if sc.drop >= 0.0 { "drop" } else { "gain" },
        sc.drop.abs(),
        sc.drop_ci.0,
        sc.drop_ci.1
    );
    let _ = writeln!(
        s,
        "         per test: {} pass→fail, {} fail→pass, McNemar p = {}; judged by {}: {}",
        sc.pass_to_fail,
        sc.fail_to_pass,
        fmt_p(sc.mcnemar_p),
        sc.judged_by,
        if sc.regressed { format!("REGRESSED (allowed drop {})", sc.max_drop) } else { "ok".to_string() }
    );
    for c in &v.speed {
        match (&c.missing, c.slowdown) {
            (Some(why), _) => {
                let _ = writeln!(s, "{:<8} n/a: {why}", c.metric);
            }
            (None, Some(x)) => {
                let ci = c.slowdown_ci.unwrap_or((f64::NAN, f64::NAN));
                let judged = match c.max_slowdown {
                    None => "not gated (no --max-slowdown)".to_string(),
                    Some(m) if c.regressed => format!("REGRESSED (allowed ×{m})"),
                    Some(m) => format!("ok (allowed ×{m})"),
                };
                let _ = writeln!(
                    s,
                    "{:<8} {} → {} {}: ×{:.2} {}, 95% CI {:.2} to {:.2}; {judged}",
                    c.metric,
                    fmt_speed(c.baseline),
                    fmt_speed(c.run),
                    c.unit,
                    x,
                    if x > 1.0 { "slower" } else { "faster or same" },
                    ci.0,
                    ci.1
                );
            }
            _ => {}
        }
    }
    if !v.moved.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "what moved:");
        for m in v.moved.iter().take(8) {
            let broke = if m.broke.is_empty() {
                String::new()
            } else {
                let shown: Vec<&str> = m.broke.iter().take(3).map(String::as_str).collect();
                let more = m.broke.len().saturating_sub(3);
                format!(
                    "; broke: {}{}",
                    shown.join(", "),
                    if more > 0 { format!(" (+{more} more)") } else { String::new() }
                )
            };
            let _ = writeln!(s, "  {:<28} {:.1} → {:.1} passed{broke}", m.pair, m.baseline, m.run);
        }
        if v.moved.len() > 8 {
            let _ = writeln!(s, "  … and {} more", v.moved.len() - 8);
        }
    }
    for n in &v.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = writeln!(s);
    if v.passed {
        let _ = writeln!(s, "gate: PASSED");
    } else {
        let _ = writeln!(s, "gate: FAILED (exit {GATE_FAILED})");
        for f in &v.failures {
            let _ = writeln!(s, "  - {f}");
        }
    }
    s
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn fmt_speed(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "n/a".into(),
    }
}
