//! One Python virtual environment per distinct requirement set. A problem that declares PyPI
//! `requires` is graded by a Python that has them: an environment made with uv from the grading
//! Python (the *base*), holding the base's pytest version and the requirements, made once before
//! any trial and kept under `<cache>/envs/<key>/`. Nothing is installed during a trial; the
//! agent is shown the environment read-only.
//!
//! The key is a hash of everything the environment is made from ([`key`]). An environment is made
//! in place, at the path it keeps (a venv is not relocatable: its scripts' `#!` lines hold the
//! path), under an exclusive lock on `<envs>/<key>.lock`, so two fixbench processes never make
//! the same one at once and the second reuses the first's. Its marker, `fixbench-env.json`, is
//! written last: a folder without it is what a killed build left, and is made again. A reused
//! environment is never trusted because it was made: its Python must start and import pytest
//! (one interpreter start), else it is made again, once.
//!
//! uv runs with our environment (PATH, HOME, proxies, `UV_CACHE_DIR`, `UV_DEFAULT_INDEX` /
//! `UV_INDEX_URL` for a mirror) less the variables that would point it or the interpreter
//! elsewhere (`PYTHON*`, `VIRTUAL_ENV`, `CONDA_PREFIX`, `UV_PYTHON`), with `UV_NO_CONFIG=1` (no
//! `uv.toml` or `pyproject.toml` of yours changes what is installed) and
//! `UV_PYTHON_DOWNLOADS=never` (the environment's Python is the base, never one uv fetches). uv's
//! own cache (`~/.cache/uv` unless `UV_CACHE_DIR`) is kept, so remaking an environment is fast;
//! files are copied from it, so an environment needs nothing outside its folder but the base
//! interpreter's installation (its `bin/python` is a symlink to the base).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::exec::{self, ExecSpec};
use crate::sandbox::resolve_program;

/// What an environment is made from.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// PEP 508 requirements, as the problem lists them (order and surrounding spaces do not
    /// matter). Empty is allowed, and makes an environment with pytest alone; a caller grades
    /// such problems with the base Python itself.
    pub requires: &'a [String],
    /// The grading Python: a path (relative to the current folder) or a name on PATH. It may be
    /// a venv's Python: the environment is made from the interpreter that venv was made from.
    pub base_python: &'a Path,
    /// The base's pytest version, installed into the environment as `pytest==<it>`.
    pub pytest_version: &'a str,
}

/// A ready environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    /// `<dir>/bin/python`, a symlink to the base interpreter.
    pub python: PathBuf,
    pub dir: PathBuf,
    pub key: String,
    /// Whether this call made it (`false`: an existing one was checked and reused).
    pub made: bool,
    /// How long this call took, waiting for another process's build included.
    pub seconds: f64,
    /// The pytest plugins its distributions declare (`pytest11` entry points), which grading
    /// names with `-p`: nothing else is loaded, whatever lands in it later.
    pub plugins: Vec<String>,
    /// [`files::bytes_hash`](crate::files::bytes_hash) of its files as made (the marker and
    /// the build log aside): a changed environment is never reused, and a trial that changes
    /// it is void.
    pub tree: String,
}

/// Lists the `pytest11` entry points of the environment's distributions, one per line.
const PLUGINS_PROBE: &str = "import importlib.metadata as m\n\
eps = m.entry_points()\n\
found = eps.select(group='pytest11') if hasattr(eps, 'select') else eps.get('pytest11', [])\n\
print('\\n'.join(sorted({e.name for e in found})))\n";

/// The environment's files, as [`Env::tree`] hashes them.
pub fn tree_of(dir: &Path) -> Result<String> {
    crate::files::bytes_hash(dir, &[MARKER])
}

/// The file written last into a finished environment.
pub const MARKER: &str = "fixbench-env.json";

/// How an environment is made, in the key: bumped when the commands below change.
const RECIPE: u32 = 1;

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
const VENV_TIMEOUT: Duration = Duration::from_secs(120);
/// Building an sdist (a C extension) may take long on 2 cores.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How often a wait for another process's build checks for Ctrl-C.
const LOCK_POLL: Duration = Duration::from_millis(100);

const SETUP: &str = "run scripts/setup.sh (it installs uv into .venv), or set FIXBENCH_UV to a uv binary";

/// The base interpreter's real path (a venv's Python names the one it was made from), its
/// exact version and build, and what its wheels must fit. `-I`: no PYTHON* variables, no user
/// site.
const BASE_PROBE: &str = "import os, platform, sys\n\
print(os.path.realpath(getattr(sys, '_base_executable', '') or sys.executable))\n\
print(sys.version.replace('\\n', ' '))\n\
print(sys.platform, platform.machine(), *platform.libc_ver())\n";

/// The environment's check: it starts, imports pytest, and runs the base's interpreter.
const ENV_PROBE: &str = "import sys, pytest\n\
print(pytest.__version__)\n\
print(sys.version.replace('\\n', ' '))\n";

/// Everything an environment is made from: hashed into its key and kept in its marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Recipe {
    recipe: u32,
    /// Trimmed, sorted, without duplicates.
    requires: Vec<String>,
    /// The base interpreter's real path.
    python: PathBuf,
    python_version: String,
    platform: String,
    pytest_version: String,
    uv_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    #[serde(flatten)]
    recipe: Recipe,
    made_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    plugins: Vec<String>,
    #[serde(default)]
    tree: String,
}

impl Recipe {
    fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a recipe serializes");
        hex::encode(Sha256::digest(bytes))[..16].to_string()
    }
}

/// The environment's key: a hash of its requirements (trimmed, sorted), the base interpreter's
/// real path and exact version (`sys.version`, platform, libc), the pytest version and uv's
/// version. Starts the base Python and `uv --version`.
pub fn key(spec: &Spec) -> Result<String> {
    Ok(recipe(spec, &uv(spec.base_python)?)?.key())
}

/// The uv that makes environments: `FIXBENCH_UV`, else `uv` beside the base Python (the venv
/// that scripts/setup.sh makes has it), else `uv` on PATH.
pub fn uv(base_python: &Path) -> Result<PathBuf> {
    find_uv(std::env::var_os("FIXBENCH_UV"), base_python, &std::env::var_os("PATH").unwrap_or_default())
}

fn find_uv(var: Option<OsString>, base_python: &Path, path: &OsStr) -> Result<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    if let Some(v) = var.filter(|v| !v.is_empty()) {
        return resolve_program(&v.to_string_lossy(), &cwd, path)
            .filter(|p| crate::sandbox::is_executable(p))
            .ok_or_else(|| {
                Error::Environment(format!(
                    "FIXBENCH_UV is `{}`, which is no executable file: point it at a uv binary, or unset it",
                    v.to_string_lossy()
                ))
                .into()
            });
    }
    let beside = base_python.parent().filter(|d| !d.as_os_str().is_empty()).map(|d| cwd.join(d).join("uv"));
    if let Some(b) = beside.filter(|b| crate::sandbox::is_executable(b)) {
        return Ok(b);
    }
    resolve_program("uv", &cwd, path).ok_or_else(|| {
        Error::Environment(format!(
            "no `uv` beside {} nor on PATH, and problems with `requires` need it to make their environments: {SETUP}",
            base_python.display()
        ))
        .into()
    })
}

/// The environment for `spec`, made if it is missing, half made or does not run; reused
/// otherwise. `problem_dir` (e.g. `problems/ledger`) names the problem in errors: a requirement
/// that cannot be installed is an [`Error::BadInput`] naming the problem, the requirement and
/// uv's reason. A missing uv, an unreachable package index or a base Python that does not run
/// is an [`Error::Environment`]. `cancel` (Ctrl-C) stops a build or a wait for another's.
pub fn ensure(spec: &Spec, cache_root: &Path, problem_dir: &Path, cancel: &AtomicBool) -> Result<Env> {
    ensure_with(spec, &uv(spec.base_python)?, cache_root, problem_dir, cancel)
}

fn ensure_with(spec: &Spec, uv: &Path, cache_root: &Path, problem_dir: &Path, cancel: &AtomicBool) -> Result<Env> {
    let start = Instant::now();
    let problem = Problem::new(problem_dir);
    for r in spec.requires {
        if let Some(why) = malformed(r.trim()) {
            return Err(problem.bad(&format!("requirement `{r}` {why}")));
        }
    }
    let recipe = recipe(spec, uv)?;
    let key = recipe.key();
    let envs = cache_root.join("envs");
    fs::create_dir_all(&envs).with_context(|| format!("failed to create {}", envs.display()))?;
    let _lock = lock(&envs.join(format!("{key}.lock")), cancel)?;
    let dir = envs.join(&key);
    let python = dir.join("bin").join("python");
    let env = |made, marker: &Marker| Env {
        python: python.clone(),
        dir: dir.clone(),
        key: key.clone(),
        made,
        seconds: start.elapsed().as_secs_f64(),
        plugins: marker.plugins.clone(),
        tree: marker.tree.clone(),
    };
    if dir.exists() {
        // Reused only as it was made: same recipe, same files (an agent run unsandboxed could
        // have planted a plugin in it), and it still starts.
        let marker = read_marker(&dir).filter(|m| m.recipe == recipe);
        if let Some(m) = marker {
            if !m.tree.is_empty() && tree_of(&dir).is_ok_and(|t| t == m.tree) && verify(&python, &dir, &recipe).is_ok()
            {
                return Ok(env(false, &m));
            }
        }
        fs::remove_dir_all(&dir).with_context(|| format!("failed to remove {} to make it again", dir.display()))?;
    }
    let build =
        Build { recipe: &recipe, uv, dir: &dir, log: envs.join(format!("{key}.log")), problem: &problem, cancel };
    if let Err(e) = build.run() {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    if let Err(why) = verify(&python, &dir, &recipe) {
        return Err(Error::Environment(format!(
            "made the environment of {} in {}, but its Python {why}; uv's log: {}",
            problem.named(),
            dir.display(),
            build.log.display()
        ))
        .into());
    }
    let argv = [python.to_string_lossy().into_owned(), "-I".into(), "-B".into(), "-c".into(), PLUGINS_PROBE.into()];
    let plugins: Vec<String> = exec::probe_output(&argv, &BTreeMap::new(), &dir, PROBE_TIMEOUT)
        .ok_or_else(|| {
            Error::Environment(format!("cannot list the pytest plugins of the environment in {}", dir.display()))
        })?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let marker = Marker { recipe: recipe.clone(), made_at: chrono::Utc::now(), plugins, tree: tree_of(&dir)? };
    crate::store::write_atomic(&dir.join(MARKER), &serde_json::to_vec_pretty(&marker)?)?;
    Ok(env(true, &marker))
}

/// The problem an environment is made for, as errors name it.
struct Problem {
    name: String,
    toml: PathBuf,
}

impl Problem {
    fn new(dir: &Path) -> Problem {
        let name =
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
        Problem { name, toml: dir.join("problem.toml") }
    }

    fn named(&self) -> String {
        format!("problem `{}`", self.name)
    }

    fn bad(&self, what: &str) -> anyhow::Error {
        let what = what.trim_end_matches('.');
        Error::BadInput(format!("{}: {what}. Fix `requires` in {}", self.named(), self.toml.display())).into()
    }
}

/// Why `r` is not a PEP 508 requirement uv should be given, if it is not: it must start with a
/// package name, then extras, a version, markers or `@ url`. Paths, bare URLs and options
/// (`-r file`, `--index-url`) are refused here; uv judges the rest.
fn malformed(r: &str) -> Option<&'static str> {
    const WHAT: &str =
        "is not a PEP 508 requirement (a package name with optional extras, version and markers, e.g. `attrs==23.2.0`)";
    if r.is_empty() {
        return Some("is empty");
    }
    if !r.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some(WHAT);
    }
    let rest = r.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "._-".contains(c)).trim_start();
    match rest.chars().next() {
        None => None,
        Some(c) if "[(<>=!~;@".contains(c) => None,
        Some(_) => Some(WHAT),
    }
}

fn recipe(spec: &Spec, uv: &Path) -> Result<Recipe> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let given = spec.base_python.to_string_lossy();
    let base = resolve_program(&given, &cwd, &std::env::var_os("PATH").unwrap_or_default())
        .ok_or_else(|| Error::Environment(format!("no Python at `{given}`: check --python / FIXBENCH_PYTHON")))?;
    let argv = [base.to_string_lossy().into_owned(), "-I".into(), "-c".into(), BASE_PROBE.into()];
    let text = exec::probe_output(&argv, &BTreeMap::new(), &cwd, PROBE_TIMEOUT).ok_or_else(|| {
        Error::Environment(format!("{} does not run: check --python / FIXBENCH_PYTHON", base.display()))
    })?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let [python, python_version, platform] = lines[..] else {
        return Err(Error::Environment(format!("{} answered its probe oddly: {text:?}", base.display())).into());
    };
    let uv_argv = [uv.to_string_lossy().into_owned(), "--version".into()];
    let uv_version = exec::probe_output(&uv_argv, &uv_env(), &cwd, PROBE_TIMEOUT)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Environment(format!("`{} --version` failed: {SETUP}", uv.display())))?;
    let mut requires: Vec<String> = spec.requires.iter().map(|r| r.trim().to_string()).collect();
    requires.sort();
    requires.dedup();
    Ok(Recipe {
        recipe: RECIPE,
        requires,
        python: PathBuf::from(python),
        python_version: python_version.into(),
        platform: platform.into(),
        pytest_version: spec.pytest_version.trim().into(),
        uv_version,
    })
}

/// The variables uv runs with (see the module's comment).
fn uv_env() -> BTreeMap<String, String> {
    let dropped = |k: &str| k.starts_with("PYTHON") || matches!(k, "VIRTUAL_ENV" | "CONDA_PREFIX" | "UV_PYTHON");
    let mut env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !dropped(k))
        .collect();
    env.insert("UV_NO_CONFIG".into(), "1".into());
    env.insert("UV_PYTHON_DOWNLOADS".into(), "never".into());
    env
}

/// Holds `path` locked exclusively, waiting for another holder (checking `cancel`).
fn lock(path: &Path, cancel: &AtomicBool) -> Result<nix::fcntl::Flock<fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(anyhow::Error::new(e).context(format!("failed to lock {}", path.display()))),
        }
        if cancel.load(Ordering::SeqCst) {
            return Err(
                Error::Interrupted("while waiting for another fixbench to make a Python environment".into()).into()
            );
        }
        std::thread::sleep(LOCK_POLL);
    }
}

fn read_marker(dir: &Path) -> Option<Marker> {
    serde_json::from_slice(&fs::read(dir.join(MARKER)).ok()?).ok()
}

/// Whether the environment's Python starts, imports the recipe's pytest and is the base's
/// interpreter; why not, as a fragment after "its Python".
fn verify(python: &Path, dir: &Path, recipe: &Recipe) -> std::result::Result<(), String> {
    let argv = [python.to_string_lossy().into_owned(), "-I".into(), "-B".into(), "-c".into(), ENV_PROBE.into()];
    let text = exec::probe_output(&argv, &BTreeMap::new(), dir, PROBE_TIMEOUT)
        .ok_or_else(|| "does not start or cannot import pytest".to_string())?;
    let mut lines = text.lines().map(str::trim);
    let (pytest, version) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    if pytest != recipe.pytest_version {
        return Err(format!("has pytest {pytest}, not {}", recipe.pytest_version));
    }
    if version != recipe.python_version {
        return Err(format!("is Python {version}, not the base's {}", recipe.python_version));
    }
    Ok(())
}

/// One build of an environment: `uv venv`, then `uv pip install`, logged to `log`.
struct Build<'a> {
    recipe: &'a Recipe,
    uv: &'a Path,
    dir: &'a Path,
    log: PathBuf,
    problem: &'a Problem,
    cancel: &'a AtomicBool,
}

/// How one uv command ended: whether it succeeded, and its stderr.
struct Ran {
    ok: bool,
    stderr: String,
}

impl Build<'_> {
    fn run(&self) -> Result<()> {
        fs::write(&self.log, "").with_context(|| format!("failed to write {}", self.log.display()))?;
        let dir = self.dir.to_string_lossy().into_owned();
        let venv = self.uv_cmd(&["venv", "--python", &self.recipe.python.to_string_lossy(), &dir], VENV_TIMEOUT)?;
        if !venv.ok {
            return Err(Error::Environment(format!(
                "cannot make the environment of {}: `uv venv` failed: {}; uv's log: {}",
                self.problem.named(),
                key_lines(&venv.stderr),
                self.log.display()
            ))
            .into());
        }
        let pytest = format!("pytest=={}", self.recipe.pytest_version);
        // Copied, not hard-linked from uv's cache: an environment shares no file with the cache
        // nor with another environment, so code that writes into one (unsandboxed) harms no other.
        // Compiled, since grading runs with `-B` in a read-only view and would compile every import.
        let mut install = vec!["pip", "install", "--link-mode", "copy", "--compile-bytecode"];
        let python = self.dir.join("bin").join("python").to_string_lossy().into_owned();
        install.extend(["--python", &python, "--", &pytest]);
        install.extend(self.recipe.requires.iter().map(String::as_str));
        let ran = self.uv_cmd(&install, INSTALL_TIMEOUT)?;
        if ran.ok {
            return Ok(());
        }
        self.unreachable(&ran)?;
        Err(self.diagnose(&python, &pytest, &ran)?)
    }

    /// Names the requirements at fault: each alone (with pytest) in a dry run; when every one
    /// resolves alone, they conflict together.
    fn diagnose(&self, python: &str, pytest: &str, whole: &Ran) -> Result<anyhow::Error> {
        let dry = |req: Option<&str>| {
            let mut argv = vec!["pip", "install", "--dry-run", "--python", python, "--", pytest];
            argv.extend(req);
            self.uv_cmd(&argv, DRY_RUN_TIMEOUT)
        };
        let alone = dry(None)?;
        if !alone.ok {
            self.unreachable(&alone)?;
            return Ok(Error::Environment(format!(
                "cannot make the environment of {}: {pytest} (the grading Python's pytest) cannot be installed: {}",
                self.problem.named(),
                key_lines(&alone.stderr)
            ))
            .into());
        }
        let requires = &self.recipe.requires;
        let mut faults = Vec::new();
        for r in requires {
            let ran = if requires.len() == 1 { Ran { ok: false, stderr: whole.stderr.clone() } } else { dry(Some(r))? };
            if !ran.ok {
                self.unreachable(&ran)?;
                faults.push(format!("requirement `{r}` cannot be installed: {}", key_lines(&ran.stderr)));
            }
        }
        if faults.is_empty() {
            let all: Vec<String> = requires.iter().map(|r| format!("`{r}`")).collect();
            faults.push(format!(
                "requirements {} cannot be installed together: {}",
                all.join(", "),
                key_lines(&whole.stderr)
            ));
        }
        Ok(self.problem.bad(&faults.join("; ")))
    }

    /// An error when uv failed for want of the package index, not for the requirements.
    fn unreachable(&self, ran: &Ran) -> Result<()> {
        if !is_network(&ran.stderr) {
            return Ok(());
        }
        Err(Error::Environment(format!(
            "cannot make the environment of {}: uv could not reach the package index: {}. Check the network \
             (UV_DEFAULT_INDEX points uv at a mirror) and run again",
            self.problem.named(),
            key_lines(&ran.stderr).trim_end_matches('.')
        ))
        .into())
    }

    /// Runs `uv <args>` (no progress bars) in a folder of its own, appending to the log.
    fn uv_cmd(&self, args: &[&str], timeout: Duration) -> Result<Ran> {
        let work = tempfile::Builder::new().prefix("fixbench-uv-").tempdir()?;
        let mut argv = vec![self.uv.to_string_lossy().into_owned(), args[0].to_string()];
        if args[0] == "pip" {
            argv.push(args[1].into());
            argv.push("--no-progress".into());
            argv.extend(args[2..].iter().map(|a| a.to_string()));
        } else {
            argv.push("--no-progress".into());
            argv.extend(args[1..].iter().map(|a| a.to_string()));
        }
        let spec = ExecSpec {
            argv: argv.clone(),
            cwd: work.path().to_path_buf(),
            env: uv_env(),
            env_clear: true,
            timeout,
            stdout: work.path().join("out"),
            stderr: work.path().join("err"),
            log_cap: exec::DEFAULT_LOG_CAP,
            inherit_fd: None,
        };
        let run = exec::run(&spec, self.cancel);
        let stdout = fs::read_to_string(&spec.stdout).unwrap_or_default();
        let mut stderr = fs::read_to_string(&spec.stderr).unwrap_or_default();
        if let Ok(mut log) = fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = write!(
                log,
                "$ {}\n{stdout}{stderr}\n",
                shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default()
            );
        }
        if run.interrupted {
            return Err(Error::Interrupted(format!("while making the environment of {}", self.problem.named())).into());
        }
        if let Some(e) = run.spawn_error {
            return Err(Error::Environment(format!("{e}: {SETUP}")).into());
        }
        if run.timed_out {
            stderr.push_str(&format!("\nerror: uv ran past fixbench's {} s limit and was killed\n", timeout.as_secs()));
        }
        Ok(Ran { ok: run.exit_code == Some(0), stderr })
    }
}

/// Whether uv's output says it could not reach the package index.
fn is_network(stderr: &str) -> bool {
    const SIGNS: &[&str] = &[
        "error sending request",
        "Request failed after",
        "tcp connect error",
        "dns error",
        "failed to lookup address",
        "Connection refused",
        "Network is unreachable",
        "Network connectivity is disabled",
        "operation timed out",
    ];
    SIGNS.iter().any(|s| stderr.contains(s))
}

/// uv's reason on one line: its `error:` and `cause:` lines joined, without the echo of a
/// requirement under a `^^^` pointer; a build's own output is kept at its end.
fn key_lines(stderr: &str) -> String {
    const MAX: usize = 1200;
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(first) = lines.iter().position(|l| l.starts_with("error:")) else {
        let tail: Vec<&str> = lines.iter().rev().map(|l| l.trim()).filter(|l| !l.is_empty()).take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return if tail.is_empty() { "uv said nothing".into() } else { tail.join(" ") };
    };
    let pointer = |l: &str| !l.trim().is_empty() && l.trim().chars().all(|c| c == '^');
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate().skip(first) {
        let t = line.trim();
        if t.is_empty() || t.starts_with("hint:") || pointer(line) || lines.get(i + 1).is_some_and(|n| pointer(n)) {
            continue;
        }
        if let Some(e) = t.strip_prefix("error:") {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(e.trim());
        } else if let Some(c) = t.strip_prefix("cause:") {
            out.push_str(": ");
            out.push_str(c.trim());
        } else {
            out.push(' ');
            out.push_str(t);
        }
    }
    if out.len() > MAX {
        let head = crate::text::prefix(&out, MAX / 3);
        let mut cut = out.len() - (MAX - MAX / 3);
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("{head} … {}", &out[cut..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;

    const NO_VERSION: &str = "Using Python 3.11.7 environment at: uvt/e1\n\
error: No solution found when resolving dependencies\n  \
cause: Because there is no version of attrs==99.0 and you require attrs==99.0, we can conclude that your requirements are unsatisfiable.\n";
    const NO_PACKAGE: &str = "Using Python 3.11.7 environment at: uvt/e1\n\
error: No solution found when resolving dependencies\n  \
cause: Because no-such-package-fixbench-xyz was not found in the package registry and you require no-such-package-fixbench-xyz==1.0, we can conclude that your requirements are unsatisfiable.\n";
    const NOT_PEP508: &str = "error: Failed to parse: `attrs==0.0.0-nope`\n  \
cause: after parsing `0.0.0`, found `-nope`, which is not part of a valid version\n         \
attrs==0.0.0-nope\n              ^^^^^^^^^^^^\n";
    const NO_BUILD: &str = "Using Python 3.11.7 environment at: uvt/e1\n\
error: Failed to build `badpkg @ file:///tmp/badpkg`\n  \
cause: The build backend returned an error\n  \
cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)\n\n         \
[stderr]\n         boom: this package does not build\n\n\
hint: Build failures usually indicate a problem with the package or the build environment\n";
    const OFFLINE: &str = "Using Python 3.11.7 environment at: uvt/e1\n\
error: Request failed after 3 retries in 8.7s\n  cause: Failed to fetch: http://127.0.0.1:9/simple/attrs/\n  \
cause: error sending request for url (http://127.0.0.1:9/simple/attrs/)\n  cause: client error (Connect)\n  \
cause: tcp connect error\n  cause: Connection refused (os error 111)\n";

    #[test]
    fn uvs_reason_is_one_line() {
        assert_eq!(
            key_lines(NO_VERSION),
            "No solution found when resolving dependencies: Because there is no version of attrs==99.0 and you \
             require attrs==99.0, we can conclude that your requirements are unsatisfiable."
        );
        assert_eq!(
            key_lines(NOT_PEP508),
            "Failed to parse: `attrs==0.0.0-nope`: after parsing `0.0.0`, found `-nope`, which is not part of a valid version"
        );
        assert_eq!(
            key_lines(NO_BUILD),
            "Failed to build `badpkg @ file:///tmp/badpkg`: The build backend returned an error: Call to \
             `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1) [stderr] boom: \
             this package does not build"
        );
        assert!(key_lines(NO_PACKAGE).contains("no-such-package-fixbench-xyz was not found in the package registry"));
        assert_eq!(key_lines("Using Python\n\npanic: x\n"), "Using Python panic: x");
        let long = format!("error: start\n{}\n  cause: the end\n", "  x\n".repeat(2000));
        let line = key_lines(&long);
        assert!(line.len() < 1300 && line.starts_with("start x") && line.ends_with("x: the end"), "{line}");
    }

    #[test]
    fn an_unreachable_index_is_told_apart_from_a_bad_requirement() {
        assert!(is_network(OFFLINE));
        for bad in [NO_VERSION, NO_PACKAGE, NOT_PEP508, NO_BUILD] {
            assert!(!is_network(bad), "{bad}");
        }
    }

    #[test]
    fn what_is_not_a_pep508_requirement_is_refused_before_uv() {
        for ok in [
            "attrs",
            "attrs==23.2.0",
            "attrs [tests] >=1",
            "a.b-c_d~=1.0",
            "x; python_version<'4'",
            "y @ https://e/y.whl",
        ] {
            assert_eq!(malformed(ok), None, "{ok}");
        }
        for bad in ["", "-r reqs.txt", "--index-url=http://x", "./pkg", "/abs/pkg", "https://e/y.whl", "attrs\n-e ."] {
            assert!(malformed(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn uv_is_fixbench_uv_then_beside_the_python_then_on_path() {
        let d = tempfile::tempdir().unwrap();
        let (venv, other) = (d.path().join("venv/bin"), d.path().join("other"));
        for dir in [&venv, &other] {
            fs::create_dir_all(dir).unwrap();
            script(&dir.join("uv"), "");
        }
        let python = venv.join("python");
        let path = other.as_os_str();
        assert_eq!(find_uv(None, &python, path).unwrap(), venv.join("uv"));
        assert_eq!(find_uv(Some(other.join("uv").into()), &python, path).unwrap(), other.join("uv"));
        assert_eq!(find_uv(None, &d.path().join("elsewhere/python"), path).unwrap(), other.join("uv"));
        let missing = find_uv(None, &d.path().join("elsewhere/python"), OsStr::new("")).unwrap_err();
        assert!(
            matches!(missing.downcast_ref(), Some(Error::Environment(m)) if m.contains("scripts/setup.sh")),
            "{missing}"
        );
        let wrong = find_uv(Some(d.path().join("nope").into()), &python, path).unwrap_err();
        assert!(wrong.to_string().contains("FIXBENCH_UV"), "{wrong}");
    }

    fn script(path: &Path, body: &str) {
        fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A base Python that answers the two probes, and a uv that logs its calls, "makes" an
    /// environment by copying that Python, and fails an install naming a requirement in `bad`.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new(version: &str) -> Fake {
            let fake = Fake { dir: tempfile::tempdir().unwrap() };
            fs::create_dir_all(fake.bin()).unwrap();
            fake.python_version(version);
            let uv = format!(
                "echo \"$*\" >> {calls}\n\
                 case \"$1\" in\n\
                   --version) echo 'uv 0.13.9 (fake)' ;;\n\
                   venv) for a; do dir=\"$a\"; done; mkdir -p \"$dir/bin\"; cp {made} \"$dir/bin/python\" ;;\n\
                   pip) for a; do if grep -qxF -- \"$a\" {bad} 2>/dev/null; then\n\
                     echo 'error: No solution found when resolving dependencies' >&2\n\
                     echo \"  cause: Because there is no version of $a and you require $a, we can conclude that your requirements are unsatisfiable.\" >&2\n\
                     exit 1; fi; done ;;\n\
                 esac\n",
                calls = fake.dir.path().join("calls").display(),
                made = fake.dir.path().join("made-python").display(),
                bad = fake.dir.path().join("bad").display(),
            );
            script(&fake.uv(), &uv);
            fake
        }

        fn bin(&self) -> PathBuf {
            self.dir.path().join("bin")
        }
        fn python(&self) -> PathBuf {
            self.bin().join("python")
        }
        fn uv(&self) -> PathBuf {
            self.bin().join("uv")
        }
        fn cache(&self) -> PathBuf {
            self.dir.path().join("cache")
        }

        /// The base Python's version; the Python of the envs made from now on answers the same.
        fn python_version(&self, version: &str) {
            let body = format!(
                "case \"$*\" in\n\
                   *pytest11*) ;;\n\
                   *pytest*) echo 8.3.4; echo '{version}' ;;\n\
                   *) echo /fake/python3.11; echo '{version}'; echo 'linux x86_64 glibc 2.36' ;;\n\
                 esac\n"
            );
            script(&self.python(), &body);
            script(&self.dir.path().join("made-python"), &body);
        }

        fn bad(&self, requirement: &str) {
            fs::write(self.dir.path().join("bad"), format!("{requirement}\n")).unwrap();
        }

        /// uv's calls so far, but `--version`.
        fn calls(&self) -> Vec<String> {
            let text = fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default();
            text.lines().filter(|l| *l != "--version").map(String::from).collect()
        }

        fn ensure(&self, requires: &[&str]) -> Result<Env> {
            let requires: Vec<String> = requires.iter().map(|r| r.to_string()).collect();
            let spec = Spec { requires: &requires, base_python: &self.python(), pytest_version: "8.3.4" };
            ensure_with(&spec, &self.uv(), &self.cache(), Path::new("problems/ledger"), &AtomicBool::new(false))
        }

        fn key(&self, requires: &[&str], pytest: &str) -> String {
            let requires: Vec<String> = requires.iter().map(|r| r.to_string()).collect();
            let spec = Spec { requires: &requires, base_python: &self.python(), pytest_version: pytest };
            recipe(&spec, &self.uv()).unwrap().key()
        }
    }

    #[test]
    fn the_key_ignores_order_and_spaces_but_not_pytest_nor_python() {
        let _serial = crate::exec::tests::serial();
        let fake = Fake::new("3.11.7 (main) [GCC 12.2.0]");
        let k = fake.key(&["attrs==23.2.0", "six==1.16.0"], "8.3.4");
        assert_eq!(k.len(), 16);
        assert_eq!(fake.key(&[" six==1.16.0", "attrs==23.2.0 ", "six==1.16.0"], "8.3.4"), k);
        assert_ne!(fake.key(&["attrs==23.2.0"], "8.3.4"), k);
        assert_ne!(fake.key(&["attrs==23.2.0", "six==1.16.0"], "8.3.5"), k);
        fake.python_version("3.11.8 (main) [GCC 12.2.0]");
        assert_ne!(fake.key(&["attrs==23.2.0", "six==1.16.0"], "8.3.4"), k);
    }

    #[test]
    fn an_env_is_made_once_marked_and_reused() {
        let _serial = crate::exec::tests::serial();
        let fake = Fake::new("3.11.7");
        let made = fake.ensure(&["attrs==23.2.0"]).unwrap();
        assert!(made.made);
        assert_eq!(made.dir, fake.cache().join("envs").join(&made.key));
        assert_eq!(made.python, made.dir.join("bin/python"));
        let calls = fake.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls[0].starts_with("venv --no-progress --python /fake/python3.11 "), "{calls:?}");
        assert!(calls[1].ends_with(&format!("--python {} -- pytest==8.3.4 attrs==23.2.0", made.python.display())));
        let marker: serde_json::Value = serde_json::from_slice(&fs::read(made.dir.join(MARKER)).unwrap()).unwrap();
        assert_eq!(marker["requires"], serde_json::json!(["attrs==23.2.0"]));
        assert_eq!(marker["python"], "/fake/python3.11");
        assert_eq!(marker["pytest_version"], "8.3.4");
        assert_eq!(marker["uv_version"], "uv 0.13.9 (fake)");
        assert!(marker["made_at"].is_string());

        let again = fake.ensure(&["attrs==23.2.0"]).unwrap();
        assert!(!again.made);
        assert_eq!((again.dir, again.key), (made.dir, made.key));
        assert_eq!(fake.calls().len(), 2, "reused without uv");
    }

    #[test]
    fn a_half_made_env_and_one_that_does_not_run_are_made_again() {
        let _serial = crate::exec::tests::serial();
        let fake = Fake::new("3.11.7");
        let key = fake.key(&["attrs==23.2.0"], "8.3.4");
        let dir = fake.cache().join("envs").join(&key);
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::write(dir.join("lib/partial"), "killed here").unwrap();
        let env = fake.ensure(&["attrs==23.2.0"]).unwrap();
        assert!(env.made, "a folder without its marker is made again");
        assert!(!dir.join("lib/partial").exists());
        assert!(dir.join(MARKER).exists());

        script(&env.python, "exit 1\n");
        let env = fake.ensure(&["attrs==23.2.0"]).unwrap();
        assert!(env.made, "a marked env whose Python does not run is made again");
        assert_eq!(fake.calls().iter().filter(|c| c.starts_with("venv")).count(), 2);
    }

    #[test]
    fn an_env_that_never_runs_is_an_error_after_one_build() {
        let _serial = crate::exec::tests::serial();
        let fake = Fake::new("3.11.7");
        // The made env's Python has another pytest.
        script(&fake.dir.path().join("made-python"), "echo 7.0.0; echo 3.11.7\n");
        let err = fake.ensure(&["attrs==23.2.0"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err.downcast_ref(), Some(Error::Environment(_))), "{msg}");
        assert!(msg.contains("problem `ledger`") && msg.contains("has pytest 7.0.0, not 8.3.4"), "{msg}");
        assert_eq!(fake.calls().iter().filter(|c| c.starts_with("venv")).count(), 1);
    }

    #[test]
    fn a_requirement_that_cannot_be_installed_is_named_with_the_fix() {
        let _serial = crate::exec::tests::serial();
        let fake = Fake::new("3.11.7");
        fake.bad("attrs==99.0");
        let err = fake.ensure(&["six==1.16.0", "attrs==99.0"]).unwrap_err();
        assert!(matches!(err.downcast_ref(), Some(Error::BadInput(_))), "{err}");
        assert_eq!(
            err.to_string(),
            "problem `ledger`: requirement `attrs==99.0` cannot be installed: No solution found when resolving \
             dependencies: Because there is no version of attrs==99.0 and you require attrs==99.0, we can conclude \
             that your requirements are unsatisfiable. Fix `requires` in problems/ledger/problem.toml"
        );
        let key = fake.key(&["six==1.16.0", "attrs==99.0"], "8.3.4");
        assert!(!fake.cache().join("envs").join(key).exists(), "the half-made env is removed");

        let err = fake.ensure(&["attrs==23.2.0", "./vendored"]).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(Error::BadInput(m)) if m.contains("`./vendored` is not a PEP 508")),
            "{err}"
        );
    }
}
