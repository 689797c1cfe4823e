//! Injected bugs, the engine behind `fixbench inject`: Python's own parser lists the minimal
//! edits of a working package (`candidates`, by `mutate.py`), each can be put in (`apply`) and
//! written as a bugs.toml snippet (`snippet`, `compatible`), and `select` grades them against
//! the frozen suite to choose K that each stay caught.

// Until `fixbench inject` calls it, nothing in the binary uses the engine (drop both allows
// then).

mod edit;
mod select;

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::exec::{self, ExecSpec};
use crate::files::Files;
pub use edit::{apply, snippet};
pub use select::{select, Options, Tried};

/// The script that lists candidates: `python -I -B mutate.py DIR` prints a JSON list.
const SCRIPT: &str = include_str!("mutate.py");
/// A package of a few thousand lines takes about a second.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// Bytes of the script's output kept: about 200 per candidate.
const OUTPUT_CAP: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `<`↔`>=`, `<=`↔`>`, `==`↔`!=`, `in`↔`not in`, `is`↔`is not`.
    Comparison,
    /// `<`↔`<=`, `>`↔`>=`; a slice bound or `range` argument ±1, or its own `± 1` dropped.
    OffByOne,
    /// `and`↔`or`; a `not` dropped.
    Boolean,
    /// An `else:` or `elif` clause removed, or an `if` body made `pass`.
    DroppedBranch,
    /// `return <expr>` removed (or made `pass`), so the function goes on or returns None.
    DroppedReturn,
    /// The first two positional arguments of a call swapped.
    SwappedArguments,
    /// An int n → n + 1 (0 → 1, 1 → 0), `True`↔`False`.
    Constant,
}

impl Kind {
    #[cfg(test)]
    pub const ALL: [Kind; 7] = [
        Kind::Comparison,
        Kind::OffByOne,
        Kind::Boolean,
        Kind::DroppedBranch,
        Kind::DroppedReturn,
        Kind::SwappedArguments,
        Kind::Constant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Comparison => "comparison",
            Kind::OffByOne => "off_by_one",
            Kind::Boolean => "boolean",
            Kind::DroppedBranch => "dropped_branch",
            Kind::DroppedReturn => "dropped_return",
            Kind::SwappedArguments => "swapped_arguments",
            Kind::Constant => "constant",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Comparison => "a flipped comparison",
            Kind::OffByOne => "an off-by-one bound",
            Kind::Boolean => "a flipped boolean operator or a dropped `not`",
            Kind::DroppedBranch => "a dropped branch",
            Kind::DroppedReturn => "a dropped return",
            Kind::SwappedArguments => "two call arguments swapped",
            Kind::Constant => "a changed constant",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One candidate edit: `text[start..end]` of `file` (byte offsets), which is `original`,
/// becomes `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// Relative to the package folder, with `/`.
    pub file: String,
    pub kind: Kind,
    /// 1-based, of `start`.
    pub line: usize,
    pub start: usize,
    pub end: usize,
    pub original: String,
    pub replacement: String,
    /// The dotted name of the enclosing function or class (`Stack.push`); empty at module
    /// level.
    #[serde(default)]
    pub scope: String,
}

impl Mutation {
    /// One line for bugs.toml's `summary`: "a flipped comparison in parser.py:42
    /// (Parser.parse): `<` → `>=`".
    pub fn summary(&self) -> String {
        let scope = if self.scope.is_empty() { String::new() } else { format!(" ({})", self.scope) };
        format!(
            "{} in {}:{}{}: `{}` → `{}`",
            self.kind.describe(),
            self.file,
            self.line,
            scope,
            one_line(&self.original),
            one_line(&self.replacement)
        )
    }
}

/// A snippet on one line, shortened, for a summary.
fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(59).collect::<String>())
    } else {
        flat
    }
}

/// Whether pytest would take `rel` for a test file (the candidates leave those alone).
pub fn is_test_file(rel: &str) -> bool {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    base.starts_with("test_") || base.ends_with("_test.py") || base == "conftest.py"
}

/// The candidate mutations of the `.py` files of `files` (test files left out), listed by
/// `python` (3.8 or later) in file, offset and kind order.
pub fn candidates(python: &Path, files: &Files) -> Result<Vec<Mutation>> {
    let sources: BTreeMap<&String, &String> =
        files.iter().filter(|(rel, _)| rel.ends_with(".py") && !is_test_file(rel)).collect();
    if sources.is_empty() {
        return Ok(vec![]);
    }
    let scratch = tempfile::tempdir().context("failed to make a scratch folder for the mutation candidates")?;
    let root = scratch.path().join("package");
    for (rel, text) in &sources {
        let rel_path = Path::new(rel.as_str());
        if !rel_path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::BadInput(format!("`{rel}` is not a plain relative path inside the package")).into());
        }
        let path = root.join(rel_path);
        std::fs::create_dir_all(path.parent().unwrap_or(&root))
            .and_then(|()| std::fs::write(&path, text))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    let script = scratch.path().join("mutate.py");
    std::fs::write(&script, SCRIPT).with_context(|| format!("failed to write {}", script.display()))?;

    let spec = ExecSpec {
        argv: vec![
            python.display().to_string(),
            "-I".into(),
            "-B".into(),
            script.display().to_string(),
            root.display().to_string(),
        ],
        cwd: scratch.path().to_path_buf(),
        env: BTreeMap::new(),
        env_clear: false,
        timeout: SCRIPT_TIMEOUT,
        stdout: scratch.path().join("stdout"),
        stderr: scratch.path().join("stderr"),
        log_cap: OUTPUT_CAP,
        inherit_fd: None,
    };
    let outcome = exec::run(&spec, &AtomicBool::new(false));
    let stderr = std::fs::read_to_string(&spec.stderr).unwrap_or_default();
    let failed = |why: String| -> anyhow::Error {
        let tail: String =
            stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        let tail = if tail.is_empty() { String::new() } else { format!("\n{tail}") };
        Error::Environment(format!(
            "`{}` could not list the mutation candidates: {why}; inject needs Python 3.8 or later (scripts/setup.sh makes .venv){tail}",
            python.display()
        ))
        .into()
    };
    if let Some(e) = &outcome.spawn_error {
        return Err(failed(e.clone()));
    }
    if outcome.timed_out {
        return Err(failed(format!("it ran past {} s", SCRIPT_TIMEOUT.as_secs())));
    }
    if outcome.exit_code != Some(0) {
        let how = match (outcome.exit_code, outcome.signal) {
            (Some(c), _) => format!("it exited with {c}"),
            (None, Some(s)) => format!("it was killed by signal {s}"),
            _ => "it did not exit".to_string(),
        };
        return Err(failed(how));
    }
    if outcome.stdout.dropped > 0 {
        return Err(failed(format!("its output passed {OUTPUT_CAP} bytes")));
    }
    let stdout = std::fs::read_to_string(&spec.stdout).map_err(|e| failed(format!("its output is unreadable: {e}")))?;
    let found: Vec<Mutation> =
        serde_json::from_str(&stdout).map_err(|e| failed(format!("its output is not a list of candidates: {e}")))?;
    for m in &found {
        let matches = files.get(&m.file).and_then(|text| text.get(m.start..m.end)).is_some_and(|t| t == m.original);
        if !matches {
            return Err(failed(format!(
                "it printed a candidate that does not match {} at bytes {}..{}",
                m.file, m.start, m.end
            )));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::edit::compatible;
    use super::*;
    use crate::problem::bugs::{self, Bug};

    const EVERY_KIND: &str = include_str!("testdata/every_kind.py");

    fn python3() -> Option<PathBuf> {
        let found = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("python3")).find(|p| p.is_file()));
        if found.is_none() {
            eprintln!("note: no python3 on PATH; the mutation candidate tests are skipped");
        }
        found
    }

    fn package() -> Files {
        [
            ("pkg/every_kind.py".to_string(), EVERY_KIND.to_string()),
            ("pkg/test_every_kind.py".to_string(), "assert 1 < 2\n".to_string()),
            ("conftest.py".to_string(), "X = 1 < 2\n".to_string()),
            ("README.md".to_string(), "1 < 2\n".to_string()),
        ]
        .into()
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    /// Runs `code` (under `exec`'s test lock: its runs reap any child) with the module `every_kind` (from `text`) importable; its stdout, trimmed.
    fn run_with(python: &Path, text: &str, code: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("every_kind.py"), text).unwrap();
        let out = std::process::Command::new(python)
            .args(["-I", "-B", "-c", &format!("import sys; sys.path.insert(0, '.')\nimport every_kind\nglobals().update(vars(every_kind))\n{code}")])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{code}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn find<'a>(ms: &'a [Mutation], kind: Kind, original: &str, replacement: &str) -> &'a Mutation {
        find_in(ms, None, kind, original, replacement)
    }

    fn find_in<'a>(
        ms: &'a [Mutation],
        scope: Option<&str>,
        kind: Kind,
        original: &str,
        replacement: &str,
    ) -> &'a Mutation {
        ms.iter()
            .find(|m| {
                m.kind == kind
                    && m.original == original
                    && m.replacement == replacement
                    && scope.is_none_or(|s| s == m.scope)
            })
            .unwrap_or_else(|| panic!("no {kind} `{original}` → `{replacement}` in {scope:?}: {ms:#?}"))
    }

    #[test]
    fn candidates_of_every_kind_leave_skipped_code_alone() {
        let _serial = crate::exec::tests::serial();
        let Some(python) = python3() else { return };
        let ms = candidates(&python, &package()).unwrap();
        assert!(ms.iter().all(|m| m.file == "pkg/every_kind.py"), "test files and others are left alone");
        let kinds: BTreeSet<Kind> = ms.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, Kind::ALL.into_iter().collect(), "every kind is found");
        let keys: Vec<_> = ms.iter().map(|m| (&m.file, m.start, m.kind)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "ordered by file, offset and kind");
        for m in &ms {
            assert_eq!(&EVERY_KIND[m.start..m.end], m.original);
            assert_eq!(line_of(EVERY_KIND, &EVERY_KIND[m.start..]), m.line, "{m:?}");
        }
        let skipped = [
            line_of(EVERY_KIND, "__all__"),
            line_of(EVERY_KIND, "__version__"),
            line_of(EVERY_KIND, "if TYPE_CHECKING"),
            line_of(EVERY_KIND, "if __name__"),
            line_of(EVERY_KIND, "print(clamp"),
        ];
        let hit: Vec<&Mutation> = ms.iter().filter(|m| skipped.contains(&m.line)).collect();
        assert!(hit.is_empty(), "{hit:#?}");
        assert!(!ms.iter().any(|m| m.line == 1 || m.original.contains("int")), "doc strings, annotations");

        find(&ms, Kind::Comparison, "in", "not in");
        find(&ms, Kind::Comparison, "is", "is not");
        find(&ms, Kind::Comparison, "==", "!=");
        find(&ms, Kind::OffByOne, "<", "<=");
        find(&ms, Kind::OffByOne, "len(items) - 1", "len(items)");
        find(&ms, Kind::OffByOne, "len(items)", "len(items) + 1");
        find(&ms, Kind::OffByOne, "0", "1");
        find(&ms, Kind::Boolean, "and", "or");
        find(&ms, Kind::Boolean, "not ", "");
        find(&ms, Kind::DroppedBranch, "    else:\n        return x\n", "");
        find(&ms, Kind::DroppedBranch, "            raise ValueError(\"frozen\")\n", "            pass\n");
        find(&ms, Kind::DroppedReturn, "    return divide(a, b)\n", "");
        find(&ms, Kind::DroppedReturn, "return a / b", "pass");
        find(&ms, Kind::SwappedArguments, "a, b", "b, a");
        find(&ms, Kind::Constant, "False", "True");
        find(&ms, Kind::Constant, "10", "11");
        // A non-ASCII character before the operator on its line: offsets are bytes.
        let gt = find_in(&ms, Some("accent"), Kind::Comparison, ">", "<=");
        assert_eq!(gt.scope, "accent");
        assert_eq!(find(&ms, Kind::DroppedBranch, "    elif x > hi:\n        return hi\n", "").scope, "clamp");
        assert_eq!(find(&ms, Kind::Constant, "False", "True").scope, "Stack.__init__");
        // Each `return` whose removal is the same edit as a dropped `if` body is listed once.
        assert!(!ms.iter().any(|m| m.kind == Kind::DroppedBranch && m.original == "        return lo\n"));
    }

    #[test]
    fn mutations_change_behaviour_as_their_kind_says() {
        let _serial = crate::exec::tests::serial();
        let Some(python) = python3() else { return };
        let ms = candidates(&python, &package()).unwrap();
        let files = package();
        let with = |m: &Mutation| apply(&files, &[m]).unwrap()["pkg/every_kind.py"].clone();
        let check =
            "print(clamp(5, 0, 3), window([1, 2, 3, 4], 1, 2), count_in([1, 2, None], {1}, False), accent('abc'))";
        assert_eq!(run_with(&python, EVERY_KIND, check), "3 [2, 3] 3 éabc");
        let elif = find(&ms, Kind::DroppedBranch, "    elif x > hi:\n        return hi\n", "");
        assert_eq!(run_with(&python, &with(elif), check), "5 [2, 3] 3 éabc");
        let upper = find(&ms, Kind::OffByOne, "start + size", "start + size + 1");
        assert_eq!(run_with(&python, &with(upper), check), "3 [2, 3, 4] 3 éabc");
        let and = find(&ms, Kind::Boolean, "and", "or");
        assert_eq!(run_with(&python, &with(and), check), "3 [2, 3] 6 éabc");
        let gt = find_in(&ms, Some("accent"), Kind::Comparison, ">", "<=");
        assert_eq!(run_with(&python, &with(gt), check), "3 [2, 3] 3 abc");
        let swap = find(&ms, Kind::SwappedArguments, "a, b", "b, a");
        assert_eq!(run_with(&python, &with(swap), "print(ratio(1, 4))"), "4.0");
        let ret = find(&ms, Kind::DroppedReturn, "    return divide(a, b)\n", "");
        assert_eq!(run_with(&python, &with(ret), "print(ratio(1, 4))"), "None");
    }

    #[test]
    fn snippets_of_several_bugs_rebuild_what_apply_makes_on_a_real_file() {
        let _serial = crate::exec::tests::serial();
        let Some(python) = python3() else { return };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/mini_sheet/mini_sheet.reference");
        let files: Files = ["formula.py", "values.py"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
            .collect();
        let ms = candidates(&python, &files).unwrap();
        assert!(ms.len() > 100, "{}", ms.len());
        // Every seventh candidate that fits, up to 8 in each file.
        let mut chosen: Vec<&Mutation> = vec![];
        for m in ms.iter().step_by(7) {
            let in_file = chosen.iter().filter(|c| c.file == m.file).count();
            if in_file < 8 && compatible(&files[&m.file], &chosen, m) {
                chosen.push(m);
            }
        }
        assert!(chosen.len() >= 12, "{}", chosen.len());
        assert!(chosen.iter().filter(|m| m.file == "values.py").count() >= 4);
        let bugs: Vec<Bug> = chosen
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (range, fixed, broken) = snippet(&files[&m.file], m);
                assert_eq!(files[&m.file][range].to_string(), fixed);
                Bug { id: format!("b{i}"), file: m.file.clone(), summary: m.summary(), fixed, broken, tests: vec![] }
            })
            .collect();
        let want = apply(&files, &chosen).unwrap();
        let forward: Vec<&Bug> = bugs.iter().collect();
        assert_eq!(bugs::apply(&files, &forward).unwrap(), want);
        let backward: Vec<&Bug> = bugs.iter().rev().collect();
        assert_eq!(bugs::apply(&files, &backward).unwrap(), want);
        for (bug, m) in bugs.iter().zip(&chosen) {
            assert_eq!(bugs::apply(&files, &[bug]).unwrap(), apply(&files, &[m]).unwrap());
        }
    }

    #[test]
    fn a_python_that_fails_or_prints_garbage_is_an_environment_error() {
        let _serial = crate::exec::tests::serial();
        let dir = tempfile::tempdir().unwrap();
        let files = package();
        for (name, script) in [("garbage", "echo '[{\"nope\": 1}]'"), ("failing", "echo boom >&2; exit 3")] {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let err = candidates(&path, &files).unwrap_err();
            let typed = err.downcast_ref::<Error>().unwrap();
            assert!(matches!(typed, Error::Environment(_)), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
        let err = candidates(&dir.path().join("failing"), &files).unwrap_err().to_string();
        assert!(err.contains("exited with 3") && err.contains("boom"), "{err}");
        let missing = dir.path().join("no-python");
        assert!(matches!(
            candidates(&missing, &files).unwrap_err().downcast_ref::<Error>(),
            Some(Error::Environment(_))
        ));
        // No Python file: nothing to run.
        let md: Files = [("README.md".to_string(), "x".to_string())].into();
        assert!(candidates(&missing, &md).unwrap().is_empty());
    }

    #[test]
    fn kinds_name_and_describe_themselves_and_summaries_fit_one_line() {
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert!(!k.describe().is_empty());
        }
        let m = Mutation {
            file: "a.py".into(),
            kind: Kind::DroppedBranch,
            line: 3,
            start: 0,
            end: 0,
            original: "    else:\n        return x\n".into(),
            replacement: String::new(),
            scope: "clamp".into(),
        };
        assert_eq!(m.summary(), "a dropped branch in a.py:3 (clamp): `else: return x` → ``");
    }
}
