//! Three accounts of one pytest session must agree before its grade is believed: the JUnit
//! file (in a folder the graded code can write), fixbench's own channel (a pipe it cannot take
//! back), and pytest's summary line. The graded package runs inside that process, so each could
//! be forged alone; a forger must forge all three alike.

use std::collections::BTreeMap;

use super::channel::{Counts, Reports};
use crate::store::{Outcome, TestResult};

/// What the three accounts say; `junit` is `None` when the file is missing or does not parse
/// (with why), `summary` when stdout has no summary line.
pub struct Accounts<'a> {
    pub junit: Result<&'a [TestResult], &'a str>,
    pub channel: &'a Reports,
    pub summary: Option<Counts>,
    /// The process's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
}

/// Why the accounts disagree, one sentence each; empty when they agree.
pub fn disagreements(a: &Accounts) -> Vec<String> {
    let mut why = Vec::new();
    let ch = a.channel;
    if ch.truncated {
        why.push("fixbench's report channel was flooded past its cap".to_string());
    }
    if ch.stray > 0 {
        why.push(format!(
            "{} message(s) on fixbench's report channel were not pytest's, or came after its session ended",
            ch.stray
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let twice = ch.reports.iter().filter(|r| !seen.insert((r.name.as_str(), r.when.as_str()))).count();
    if twice > 0 {
        why.push(format!("{twice} test report(s) arrived twice on fixbench's report channel"));
    }
    match ch.end {
        None => why.push("pytest's session never finished on fixbench's report channel".to_string()),
        Some(status) if a.exit_code != Some(status) => why.push(format!(
            "pytest's session finished with status {status} but the process {}",
            match a.exit_code {
                Some(c) => format!("exited with {c}"),
                None => "was killed".to_string(),
            }
        )),
        Some(_) => {}
    }
    let channel_tests = ch.tests();
    match a.junit {
        Err(e) => why.push(format!("the JUnit report {e}")),
        Ok(junit) => {
            let j: BTreeMap<&str, Outcome> = junit.iter().map(|t| (t.name.as_str(), t.outcome)).collect();
            let c: BTreeMap<&str, Outcome> = channel_tests.iter().map(|t| (t.name.as_str(), t.outcome)).collect();
            let differ: Vec<String> = j
                .keys()
                .chain(c.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|n| j.get(*n) != c.get(*n))
                .map(|n| format!("{n}: JUnit {}, channel {}", word(j.get(n)), word(c.get(n))))
                .collect();
            if !differ.is_empty() {
                why.push(format!(
                    "the JUnit report and fixbench's channel disagree on {} test(s) ({}{})",
                    differ.len(),
                    differ.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
                    if differ.len() > 3 { "; …" } else { "" }
                ));
            }
        }
    }
    match a.summary {
        None => why.push("pytest printed no summary line".to_string()),
        Some(s) if s != ch.counts() => why.push(format!(
            "pytest's summary line ({}) differs from fixbench's channel ({})",
            show(s),
            show(ch.counts())
        )),
        Some(_) => {}
    }
    why
}

fn word(o: Option<&Outcome>) -> &'static str {
    match o {
        None => "absent",
        Some(Outcome::Passed) => "passed",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::Error) => "error",
        Some(Outcome::Skipped) => "skipped",
    }
}

fn show(c: Counts) -> String {
    let parts: Vec<String> = [
        (c.passed, "passed"),
        (c.failed, "failed"),
        (c.errors, "errors"),
        (c.skipped, "skipped"),
        (c.xfailed, "xfailed"),
        (c.xpassed, "xpassed"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    if parts.is_empty() {
        "no tests".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel::Report;
    use super::*;

    fn reports(outcomes: &[(&str, &str)]) -> Reports {
        Reports {
            reports: outcomes
                .iter()
                .map(|(n, o)| Report { name: n.to_string(), when: "call".into(), outcome: o.to_string(), xfail: false })
                .collect(),
            end: Some(1),
            ..Default::default()
        }
    }

    fn t(name: &str, outcome: Outcome) -> TestResult {
        TestResult { name: name.into(), outcome, message: None }
    }

    #[test]
    fn agreeing_accounts_pass_and_a_rewritten_junit_is_caught() {
        let ch = reports(&[("t::a", "passed"), ("t::b", "failed")]);
        let honest = [t("t::a", Outcome::Passed), t("t::b", Outcome::Failed)];
        let summary = Some(Counts { passed: 1, failed: 1, ..Default::default() });
        let ok = Accounts { junit: Ok(&honest), channel: &ch, summary, exit_code: Some(1) };
        assert_eq!(disagreements(&ok), Vec::<String>::new());

        let forged = [t("t::a", Outcome::Passed), t("t::b", Outcome::Passed)];
        let bad = Accounts { junit: Ok(&forged), channel: &ch, summary, exit_code: Some(1) };
        let why = disagreements(&bad);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("t::b: JUnit passed, channel failed"), "{why:?}");
    }

    #[test]
    fn a_forged_summary_a_lost_end_and_an_exit_that_lies_are_caught() {
        let ch = reports(&[("t::a", "failed")]);
        let junit = [t("t::a", Outcome::Failed)];
        let forged_summary = Some(Counts { passed: 1, ..Default::default() });
        let why =
            disagreements(&Accounts { junit: Ok(&junit), channel: &ch, summary: forged_summary, exit_code: Some(0) });
        assert!(
            why.iter().any(|w| w.contains("summary line (1 passed) differs from fixbench's channel (1 failed)")),
            "{why:?}"
        );
        assert!(why.iter().any(|w| w.contains("finished with status 1 but the process exited with 0")), "{why:?}");

        let mut twice = ch.clone();
        twice.reports.push(twice.reports[0].clone());
        let why = disagreements(&Accounts {
            junit: Ok(&junit),
            channel: &twice,
            summary: Some(Counts { failed: 1, ..Default::default() }),
            exit_code: Some(1),
        });
        assert!(why.iter().any(|w| w.contains("1 test report(s) arrived twice")), "{why:?}");

        let mut no_end = ch.clone();
        no_end.end = None;
        let why =
            disagreements(&Accounts { junit: Err("is missing"), channel: &no_end, summary: None, exit_code: Some(0) });
        assert_eq!(why.len(), 3, "{why:?}");
    }
}
