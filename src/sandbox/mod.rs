//! Isolation: how an agent's command is confined. Under `sandbox` (the default) each agent
//! runs in a bubblewrap sandbox that shows it the system read-only, its trial's workdir and
//! home read-write at their own paths, a private `/tmp`, `/dev` and `/proc` of its own, and the
//! folders its program is installed in read-only; never the problems (whose references are the
//! answers), the results, the user's home or the project folder. The network stays shared, so
//! the agent reaches fixbench's proxy on loopback.

mod bwrap;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::error::Error;
use crate::exec::{self, ExecOutcome, ExecSpec};
pub use view::{is_executable, resolve_program, Guard};

use crate::model::Isolation;

/// The sandbox of one run: what it hides, what it adds, and the namespaces that work here.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    namespaces: Vec<&'static str>,
    extra_ro: Vec<PathBuf>,
    guard: Guard,
}

impl Sandbox {
    /// A sandbox hiding `problems_dir`, `results`, the user's home and the current folder, and
    /// showing `extra_ro` (from `source`, e.g. `harness.toml`'s `sandbox.ro`) read-only.
    /// Nothing is started yet: [`Sandbox::check`] does.
    pub fn new(problems_dir: &Path, results: &Path, extra_ro: &[PathBuf], source: &str) -> Result<Sandbox> {
        let cwd = std::env::current_dir()?;
        let mut private = vec![cwd.clone(), view::real_or_absolute(&cwd, &cwd)];
        let homes = [std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from), passwd_home()];
        for home in homes.into_iter().flatten() {
            private.push(view::real_or_absolute(&home, &cwd));
            private.push(view::absolute(&home, &cwd));
        }
        let mut answers = Vec::new();
        for p in [problems_dir, results] {
            answers.push(view::absolute(p, &cwd));
            answers.push(view::real_or_absolute(p, &cwd));
        }
        let guard = Guard { answers, private };
        let mut ro = Vec::new();
        for p in extra_ro {
            let abs = view::absolute(p, &cwd);
            if !abs.exists() {
                return Err(Error::BadInput(format!(
                    "{source}: `sandbox.ro` lists {}, which does not exist: fix or remove it",
                    abs.display()
                ))
                .into());
            }
            if !guard.allows(&abs) {
                return Err(Error::BadInput(format!(
                    "{source}: `sandbox.ro` lists {}, which would show the agent the problems' answers, the results, \
                     your home or the project folder: list only the folders inside it that the agent needs",
                    abs.display()
                ))
                .into());
            }
            ro.push(abs);
        }
        Ok(Sandbox { bwrap: bwrap::binary(), namespaces: vec![], extra_ro: ro, guard })
    }

    /// Checks, once per process, that bubblewrap can start a sandbox here. There is no
    /// fallback: a run asked to isolate its agents never runs them unisolated.
    pub fn check(&mut self) -> Result<()> {
        match bwrap::probe(&self.bwrap) {
            Ok(ns) => {
                self.namespaces = ns;
                Ok(())
            }
            Err(why) => Err(Error::Environment(format!(
                "cannot start the agent sandbox: {why}. Install bubblewrap and allow user namespaces with \
                 scripts/setup.sh (`apt-get install bubblewrap`; `sysctl kernel.unprivileged_userns_clone=1` \
                 where it is 0), or run the agents unisolated with `--isolation none` (they then see all your files)"
            ))
            .into()),
        }
    }

    /// Whether [`Sandbox::check`] has found that the sandbox starts here.
    pub fn is_checked(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// The folders shown read-only to `argv` (started in `cwd` with `env` on top of ours)
    /// besides the system: `sandbox.ro`, the install folders of the program, its interpreter
    /// and the PATH entries, and the files its arguments name (`python /abs/my_agent.py`: the
    /// script's folder, or the file alone where the guard allows no folder), except those inside
    /// `read_write` (the trial's or the grading's own folders).
    pub fn read_only(
        &self,
        argv: &[String],
        cwd: &Path,
        env: &BTreeMap<String, String>,
        read_write: &[PathBuf],
    ) -> Vec<PathBuf> {
        let path = search_path(env);
        let program = view::resolve_program(&argv[0], cwd, &path);
        let mut all: BTreeSet<PathBuf> = self.extra_ro.iter().cloned().collect();
        all.extend(view::install_binds(program.as_deref(), &path, &self.guard));
        for arg in argv[1..].iter().map(Path::new) {
            if arg.is_absolute() && arg.exists() && !read_write.iter().any(|rw| arg.starts_with(rw)) {
                all.extend(view::install_binds(Some(arg), OsStr::new(""), &self.guard));
            }
        }
        all.into_iter().collect()
    }

    /// The read-only folders that make `program` runnable (its installation, and its
    /// interpreter's), as the guard allows them: a problem's environment's Python.
    pub fn binds_for(&self, program: &Path) -> Vec<PathBuf> {
        view::install_binds(Some(program), OsStr::new(""), &self.guard)
    }

    /// Runs `spec` inside the sandbox; `scratch_root` (holding the trial's workdir and agent
    /// home) is the only folder it may write outside its private `/tmp`.
    pub fn run(&self, spec: ExecSpec, scratch_root: &Path, cancel: &AtomicBool) -> ExecOutcome {
        self.run_in(spec, &[], &[scratch_root.to_path_buf()], cancel)
    }

    /// Runs `spec` inside the sandbox, showing `read_only` besides what its program needs, and
    /// `read_write` as the only folders it may write outside its private `/tmp`.
    pub fn run_in(
        &self,
        mut spec: ExecSpec,
        read_only: &[PathBuf],
        read_write: &[PathBuf],
        cancel: &AtomicBool,
    ) -> ExecOutcome {
        let program = spec.argv[0].clone();
        if view::resolve_program(&program, &spec.cwd, &search_path(&spec.env)).is_none() {
            return ExecOutcome {
                spawn_error: Some(format!("cannot start `{program}`: not found (as a path, or on PATH)")),
                ..Default::default()
            };
        }
        let mut shown = self.read_only(&spec.argv, &spec.cwd, &spec.env, read_write);
        shown.extend(read_only.iter().cloned());
        let mounts = bwrap::Mounts { namespaces: &self.namespaces, read_only: &shown, read_write, cwd: &spec.cwd };
        spec.argv = bwrap::wrap(&self.bwrap, &mounts, &spec.argv);
        spec.env.insert("TMPDIR".into(), "/tmp".into());
        let mut out = exec::run(&spec, cancel);
        if out.exit_code == Some(1) && out.spawn_error.is_none() {
            if let Some(why) = bwrap::own_error(&spec.stderr) {
                out.spawn_error = Some(format!("cannot start `{program}` in the sandbox: {why}"));
            }
        }
        out
    }
}

/// The sandbox `harness` asks for (harness.toml's `sandbox.ro` shown read-only) under
/// `isolation`: `None` under `none`. `start` checks that it starts here (a dry run, which runs
/// nothing, does not).
pub fn for_harness(
    isolation: Isolation,
    problems_dir: &Path,
    results: &Path,
    harness: &crate::config::Harness,
    start: bool,
) -> Result<Option<Sandbox>> {
    if isolation == Isolation::None {
        return Ok(None);
    }
    let ro: Vec<PathBuf> = harness.file.sandbox.ro.iter().map(|p| harness.resolve(p)).collect();
    let mut sandbox = Sandbox::new(problems_dir, results, &ro, &harness.source())?;
    if start {
        sandbox.check()?;
    }
    Ok(Some(sandbox))
}

/// Whether bubblewrap can start a sandbox here (for `fixbench doctor`): the namespace flags
/// that work, or why it cannot. Probed once per process.
pub fn available() -> std::result::Result<Vec<&'static str>, String> {
    bwrap::probe(&bwrap::binary())
}

/// The PATH the agent's program is looked up in: its own environment's, else ours.
fn search_path(env: &BTreeMap<String, String>) -> OsString {
    match env.get("PATH") {
        Some(p) => p.into(),
        None => std::env::var_os("PATH").unwrap_or_default(),
    }
}

/// The user's home from the password database (`$HOME` may point elsewhere).
fn passwd_home() -> Option<PathBuf> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok()??;
    (!user.dir.as_os_str().is_empty()).then_some(user.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwd_home_is_the_one_etc_passwd_lists() {
        let uid = nix::unistd::getuid().to_string();
        let listed = std::fs::read_to_string("/etc/passwd").ok().and_then(|text| {
            text.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 5 && f[2] == uid)
                .map(|f| f[5].to_string())
        });
        // Users from a directory service (LDAP, systemd-homed) are not in the file.
        if let Some(home) = listed.filter(|h| !h.is_empty()) {
            assert_eq!(passwd_home(), Some(PathBuf::from(home)));
        }
    }
}
