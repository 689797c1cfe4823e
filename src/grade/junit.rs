//! Reading pytest's JUnit XML with quick-junit.

use anyhow::Result;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

use crate::store::{Outcome, TestResult};

/// How much of a failure message is kept per test.
const MESSAGE_CAP: usize = 600;

pub fn parse(xml: &str) -> Result<Vec<TestResult>> {
    // pytest writes `<testsuites>` without the `name` quick-junit requires.
    let named;
    let xml = if xml.contains("<testsuites>") {
        named = xml.replacen("<testsuites>", "<testsuites name=\"pytest\">", 1);
        named.as_str()
    } else {
        xml
    };
    let report = Report::deserialize_from_str(xml)?;
    let mut out = Vec::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let name = match &case.classname {
                Some(c) if !c.is_empty() => format!("{}::{}", c.as_str(), case.name.as_str()),
                _ => case.name.as_str().to_string(),
            };
            let (outcome, message) = match &case.status {
                TestCaseStatus::Success { .. } => (Outcome::Passed, None),
                TestCaseStatus::NonSuccess { kind, message, description, .. } => {
                    let o = match kind {
                        NonSuccessKind::Failure => Outcome::Failed,
                        NonSuccessKind::Error => Outcome::Error,
                    };
                    let m = message.as_ref().or(description.as_ref()).map(|m| cap(m.as_str()));
                    (o, m)
                }
                TestCaseStatus::Skipped { message, .. } => {
                    (Outcome::Skipped, message.as_ref().map(|m| cap(m.as_str())))
                }
            };
            out.push(TestResult { name, outcome, message });
        }
    }
    Ok(out)
}

fn cap(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MESSAGE_CAP {
        return s.to_string();
    }
    format!("{}…", crate::text::prefix(s, MESSAGE_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytest_style_report() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="0" tests="3" time="0.1"><testcase classname="tests.test_a" name="test_ok" time="0.001" /><testcase classname="tests.test_a" name="test_bad" time="0.001"><failure message="AssertionError: 2^3^2 == 512">long trace</failure></testcase><testcase classname="" name="tests.test_b" time="0"><error message="collection failure">trace</error></testcase></testsuite></testsuites>"#;
        let tests = parse(xml).unwrap();
        assert_eq!(tests.len(), 3);
        assert_eq!(tests[0].name, "tests.test_a::test_ok");
        assert_eq!(tests[1].outcome, Outcome::Failed);
        assert_eq!(tests[1].message.as_deref(), Some("AssertionError: 2^3^2 == 512"));
        assert_eq!((tests[2].name.as_str(), tests[2].outcome), ("tests.test_b", Outcome::Error));
    }
}
