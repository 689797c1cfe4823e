//! JUnit XML through quick-junit (as nextest writes it): one testsuite per trial (named
//! `problem/agent/repeat`), one testcase per frozen test with pytest's message, and one
//! `agent run` testcase that fails on a timeout and errors on a harness or agent error.
//! Suite properties carry the labels, model, quant and server figures.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::group::{self, NO_SERVER};
use crate::store::{self, Outcome, RunRecord, TrialRecord};

/// Writes `run` as JUnit XML to `path` (`run_dir` holds its logs), atomically.
pub fn write_file(run: &RunRecord, run_dir: &Path, path: &Path) -> Result<()> {
    let xml = to_xml(run, run_dir)?;
    store::write_atomic(path, xml.as_bytes())
        .with_context(|| format!("failed to write the JUnit report {}", path.display()))?;
    // CI uploaders may run as another user: not owner-only like the temp file it came from.
    super::plot::readable(path)
}

/// The name of the testcase standing for the agent run itself.
pub const AGENT_CASE: &str = "agent run";

pub fn to_xml(run: &RunRecord, run_dir: &Path) -> Result<String> {
    let mut report = Report::new(format!("fixbench {}", run.run_id));
    report.set_timestamp(run.started_at.fixed_offset());
    if let Some(end) = run.ended_at {
        report.set_time((end - run.started_at).to_std().unwrap_or_default());
    }
    for t in &run.trials {
        report.add_test_suite(suite(run, t, run_dir));
    }
    // A merged run's trials that no shard finished: each a suite whose `agent run` errored, so
    // that a lost shard shows in CI as the trials it lost.
    for id in run.merged.iter().flat_map(|m| &m.missing) {
        let mut s = TestSuite::new(id.as_str());
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type("missing");
        st.set_message("no shard finished this trial: it is missing from the merged run");
        s.add_test_case(TestCase::new(AGENT_CASE, st));
        report.add_test_suite(s);
    }
    Ok(report.to_string()?)
}

fn suite(run: &RunRecord, t: &TrialRecord, run_dir: &Path) -> TestSuite {
    let mut s = TestSuite::new(t.id.as_str());
    s.set_timestamp(t.started_at.fixed_offset());
    s.set_time(secs(t.wall_s));
    s.add_properties(properties(run, t));
    s.add_test_case(agent_case(t));
    for r in &t.grade.tests {
        let (classname, name) = match r.name.rsplit_once("::") {
            Some((c, n)) => (Some(c), n),
            None => (None, r.name.as_str()),
        };
        let status = match r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Skipped => {
                let mut st = TestCaseStatus::skipped();
                if let Some(m) = &r.message {
                    st.set_message(m.as_str());
                }
                st
            }
            Outcome::Failed | Outcome::Error => {
                let kind = if r.outcome == Outcome::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut st = TestCaseStatus::non_success(kind);
                if let Some(m) = &r.message {
                    st.set_message(m.lines().next().unwrap_or(m));
                    st.set_description(m.as_str());
                }
                st
            }
        };
        let mut case = TestCase::new(name, status);
        if let Some(c) = classname {
            case.set_classname(c);
        }
        s.add_test_case(case);
    }
    let p = |rel: &str| run_dir.join(rel).display().to_string();
    s.set_system_out(format!(
        "stdout: {}\nstderr: {}\ndiff: {}\npytest junit: {}\n",
        p(&t.paths.stdout),
        p(&t.paths.stderr),
        p(&t.paths.diff),
        p(&t.paths.junit)
    ));
    s
}

fn agent_case(t: &TrialRecord) -> TestCase {
    let status = if t.agent_run.timed_out {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_type("timeout");
        st.set_message(t.error.clone().unwrap_or_else(|| "the agent ran past its time limit".into()));
        st
    } else if let Some(e) = &t.error {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type("error");
        st.set_message(e.as_str());
        st
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(AGENT_CASE, status);
    case.set_classname(format!("fixbench.{}", t.agent));
    case.set_time(secs(t.agent_run.agent_s));
    case
}

fn properties(run: &RunRecord, t: &TrialRecord) -> Vec<Property> {
    let mut p = vec![
        Property::new("run_id", run.run_id.as_str()),
        Property::new("problem", t.problem.as_str()),
        Property::new("agent", t.agent.as_str()),
        Property::new("repeat", t.repeat.to_string()),
        Property::new("passed", t.grade.passed.to_string()),
        Property::new("total", t.grade.total.to_string()),
        Property::new("baseline", t.grade.baseline.to_string()),
        Property::new("resolved", t.grade.resolved.to_string()),
        Property::new("isolation", t.isolation.as_str()),
        Property::new("cache_state", t.cache_state.as_str()),
    ];
    for (k, v) in &run.labels {
        p.push(Property::new(format!("label.{k}"), v.as_str()));
    }
    p.push(Property::new("model", group::model(run).unwrap_or_else(|| na(run))));
    p.push(Property::new("quant", group::quant(run).unwrap_or_else(|| na(run))));
    match (&run.server, &t.telemetry.server) {
        (None, None) => p.push(Property::new("server", NO_SERVER)),
        (sv, delta) => {
            if let Some(sv) = sv {
                p.push(Property::new("server", sv.url.as_str()));
            }
            if let Some(l) = t.server_label.as_ref().or(sv.as_ref().and_then(|s| s.label.as_ref())) {
                p.push(Property::new("server_label", l.as_str()));
            }
            p.push(Property::new("requests", t.telemetry.requests.len().to_string()));
            let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
            match delta {
                Some(d) => {
                    p.push(Property::new("prefill_tps", f(d.prefill_tps)));
                    p.push(Property::new("decode_tps", f(d.decode_tps)));
                    p.push(Property::new("cache_hit_ratio", f(d.cache_hit_ratio)));
                    p.push(Property::new("prompt_tokens", format!("{}", d.prompt_tokens)));
                    p.push(Property::new("predicted_tokens", format!("{}", d.predicted_tokens)));
                }
                None => p.push(Property::new("server_figures", "n/a")),
            }
            if let Some(tm) = &t.telemetry.timing {
                p.push(Property::new("server_wait_s", format!("{:.3}", tm.server_wait_s)));
                p.push(Property::new("agent_own_s", format!("{:.3}", tm.agent_own_s)));
            }
        }
    }
    p
}

fn na(run: &RunRecord) -> String {
    if run.server.is_none() {
        NO_SERVER.into()
    } else {
        "unknown".into()
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()
}
