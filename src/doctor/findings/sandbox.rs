//! Whether the agent sandbox (bubblewrap) starts on this machine: `fixbench run` isolates its
//! agents unless told `--isolation none`, and refuses to run them when it cannot.

use super::{Finding, Kind};
use crate::doctor::evidence::Evidence;
use crate::model::Isolation;

const UNISOLATED: &str = "--isolation none (the agents then see all your files)";

pub(super) fn sandbox(ev: &Evidence, f: &mut Vec<Finding>) {
    let Some(probe) = &ev.sandbox else { return };
    let why = match probe {
        Ok(flags) => {
            return f.push(Finding::new(
                Kind::Ok,
                "sandbox",
                format!("the agent sandbox starts here (bubblewrap {})", flags.join(" ")),
                None,
            ))
        }
        Err(why) => why,
    };
    let fix = if why.contains("not installed") {
        format!("install bubblewrap with scripts/setup.sh (apt-get install bubblewrap), or enable user namespaces where it still fails; or {UNISOLATED}")
    } else {
        format!(
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also \
             kernel.apparmor_restrict_unprivileged_userns=0), or reinstall bubblewrap with scripts/setup.sh; or {UNISOLATED}"
        )
    };
    let unisolated_run = ev.run.as_ref().is_some_and(|r| r.config.isolation == Isolation::None);
    let (kind, message) = if unisolated_run {
        (
            Kind::Note,
            format!("the agent sandbox cannot start here ({why}); the run examined used --isolation none, so its agents saw all your files"),
        )
    } else {
        (
            Kind::Blocker,
            format!("the agent sandbox cannot start here ({why}): `fixbench run` refuses to run agents until it can"),
        )
    };
    f.push(Finding::new(kind, "sandbox", message, Some(&fix)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunRecord;

    fn ev(sandbox: Result<Vec<&'static str>, String>, run: Option<RunRecord>) -> Evidence {
        Evidence { sandbox: Some(sandbox), ..Evidence::of_run(run) }
    }

    fn judge(ev: &Evidence) -> Finding {
        let mut f = Vec::new();
        sandbox(ev, &mut f);
        assert_eq!(f.len(), 1, "{f:?}");
        f.remove(0)
    }

    #[test]
    fn a_sandbox_that_starts_is_ok_and_names_its_namespaces() {
        let x = judge(&ev(Ok(vec!["--unshare-pid", "--unshare-user-try"]), None));
        assert_eq!((x.kind, x.fix), (Kind::Ok, None));
        assert!(x.message.contains("--unshare-pid --unshare-user-try"), "{}", x.message);
    }

    #[test]
    fn no_bubblewrap_blocks_runs_and_names_setup_and_isolation_none() {
        let x = judge(&ev(Err("`/opt/none/bwrap` is not installed".into()), None));
        assert_eq!(x.kind, Kind::Blocker);
        assert!(x.message.contains("`/opt/none/bwrap` is not installed"), "{}", x.message);
        let fix = x.fix.unwrap();
        assert!(
            fix.starts_with("install bubblewrap with scripts/setup.sh") && fix.contains("--isolation none"),
            "{fix}"
        );
    }

    #[test]
    fn refused_namespaces_point_at_the_sysctl_first() {
        let x = judge(&ev(Err("bwrap: setting up uid map: Permission denied".into()), None));
        assert_eq!(x.kind, Kind::Blocker);
        let fix = x.fix.unwrap();
        assert!(fix.starts_with("enable unprivileged user namespaces") && fix.contains("--isolation none"), "{fix}");
    }

    #[test]
    fn a_run_without_isolation_makes_it_a_note() {
        let mut run = crate::report::synth::run_record("r1", chrono::Utc::now(), &["a".to_string()]);
        run.config.isolation = Isolation::None;
        let x = judge(&ev(Err("`bwrap` is not installed".into()), Some(run)));
        assert_eq!(x.kind, Kind::Note);
        assert!(x.message.contains("used --isolation none"), "{}", x.message);
    }
}
