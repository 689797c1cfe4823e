//! The text report: what was examined, then one paragraph per finding with its fix.

use serde_json::Value;

use super::evidence::Evidence;
use super::findings::{prop_u64, Finding, Kind};

/// The text report: what was examined, then one paragraph per finding.
pub fn render(ev: &Evidence, findings: &[Finding]) -> String {
    let mut out = String::new();
    if let Some(url) = &ev.url {
        let p = ev.props.as_ref();
        let s = |k: &str| p.and_then(|p| p.pointer(k)).and_then(Value::as_str).unwrap_or("?");
        let model = s("/model_path").rsplit('/').next().unwrap_or("?").to_string();
        match (p, &ev.other_kind) {
            (Some(_), _) => out.push_str(&format!(
                "server  {url}: {model}, {} slot(s) × {} tokens, build {}\n",
                prop_u64(ev, "/total_slots").map(|n| n.to_string()).unwrap_or("?".into()),
                prop_u64(ev, "/default_generation_settings/n_ctx").map(|n| n.to_string()).unwrap_or("?".into()),
                s("/build_info")
            )),
            (None, Some(d)) => {
                let version = d.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
                out.push_str(&format!("server  {url}: {}{version} ({})\n", d.kind, d.evidence));
            }
            (None, _) => out.push_str(&format!("server  {url}: not readable\n")),
        }
    }
    if let Some(run) = &ev.run {
        let reqs: usize = run.trials.iter().map(|t| t.telemetry.requests.len()).sum();
        out.push_str(&format!("run     {}: {} trial(s), {reqs} request(s)\n", run.run_id, run.trials.len()));
    }
    out.push('\n');
    for x in findings {
        let tag = match x.kind {
            Kind::Blocker => "blocker",
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
    if !findings.iter().any(|x| matches!(x.kind, Kind::Cost | Kind::Blocker)) {
        out.push_str("\nnothing found that costs time.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocker_is_shown_with_its_fix_and_is_not_called_nothing() {
        let ev = Evidence::of_run(None);
        let blocker = Finding {
            kind: Kind::Blocker,
            check: "sandbox",
            message: "the agent sandbox cannot start here".into(),
            fix: Some("scripts/setup.sh".into()),
        };
        let text = render(&ev, std::slice::from_ref(&blocker));
        assert_eq!(text, "\n   blocker  the agent sandbox cannot start here\n            fix: scripts/setup.sh\n");
        let ok = Finding { kind: Kind::Ok, ..blocker };
        assert!(render(&ev, &[ok]).ends_with("\nnothing found that costs time.\n"));
    }
}
