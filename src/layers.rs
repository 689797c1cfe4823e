//! The layers of `src/`, lowest first, and the test that keeps them: a module may use only
//! modules of its own layer or below, and no two modules (nor two files of one folder) may use
//! each other, directly or round a longer cycle. The test reads the `crate::` and `super::` paths of every file under `src/`,
//! leaving out comments and each file's `#[cfg(test)]` tests.
//!
//! ```text
//! commands        cli, commands/           flags, settings, printing
//! orchestration   runner, sweep, validate, author, merge, report, doctor, progress
//! stages          problem → workdir → agent → grade → telemetry, diff
//! process/config  exec, sandbox, server, interrupt, host, config, settings
//! store           store, files
//! model           model, error, exit_codes, text  plain data
//! ```

/// Each layer's modules, lowest first.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("model", &["model", "error", "exit_codes", "layers", "text"]),
    ("store", &["store", "files"]),
    ("process and config", &["exec", "sandbox", "server", "interrupt", "host", "config", "settings"]),
    ("pipeline stages", &["problem", "workdir", "agent", "grade", "telemetry", "diff"]),
    ("orchestration", &["runner", "sweep", "validate", "author", "merge", "report", "doctor", "progress"]),
    ("commands", &["commands", "cli"]),
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use regex::Regex;

    use super::LAYERS;

    type ModPath = Vec<String>;

    /// Every file's module path (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`) and its code,
    /// without comment lines and without its `#[cfg(test)]` tests.
    fn sources() -> BTreeMap<ModPath, String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeMap::new();
        for entry in walkdir::WalkDir::new(&src).sort_by_file_name() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: ModPath = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
            let code: String =
                code.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
            out.insert(parts, code);
        }
        out
    }

    /// The module paths `code` (of module `me`) names through `crate::` and `super::`.
    fn uses(me: &ModPath, code: &str) -> Vec<ModPath> {
        let path = Regex::new(r"\b(crate|(?:super::)*super)::((?:\w+::)*)(\w+|\{)").unwrap();
        let mut out = Vec::new();
        for m in path.captures_iter(code) {
            let base: ModPath = if &m[1] == "crate" {
                vec![]
            } else {
                let ups = m[1].matches("super").count();
                me[..me.len().saturating_sub(ups)].to_vec()
            };
            let mut segs: ModPath = base;
            segs.extend(m[2].split("::").filter(|s| !s.is_empty()).map(String::from));
            if &m[3] == "{" {
                // `prefix::{a, b::c, …}`: the first name of each part at the top level.
                let rest = &code[m.get(3).unwrap().end()..];
                for first in group_heads(rest) {
                    let mut p = segs.clone();
                    if first != "self" {
                        p.push(first);
                    }
                    out.push(p);
                }
            } else {
                segs.push(m[3].to_string());
                out.push(segs);
            }
        }
        out
    }

    /// The first identifier of each comma-separated part of a `{…}` group (text after `{`).
    fn group_heads(rest: &str) -> Vec<String> {
        let (mut depth, mut heads, mut current, mut at_start) = (0, Vec::new(), String::new(), true);
        for c in rest.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    heads.push(std::mem::take(&mut current));
                    at_start = true;
                    continue;
                }
                _ => {}
            }
            if depth == 0 && at_start {
                if c.is_alphanumeric() || c == '_' {
                    current.push(c);
                } else if !current.is_empty() {
                    at_start = false;
                }
            }
        }
        heads.push(current);
        heads.into_iter().filter(|h| !h.is_empty()).collect()
    }

    /// The longest prefix of `p` that is a module of `known`.
    fn module_of(p: &ModPath, known: &BTreeSet<ModPath>) -> Option<ModPath> {
        (1..=p.len()).rev().map(|n| p[..n].to_vec()).find(|q| known.contains(q))
    }

    /// Edges between modules: (user, used), both module paths, user != used.
    fn edges() -> BTreeSet<(ModPath, ModPath)> {
        let files = sources();
        let known: BTreeSet<ModPath> = files.keys().cloned().collect();
        let mut out = BTreeSet::new();
        for (me, code) in &files {
            for used in uses(me, code) {
                if let Some(m) = module_of(&used, &known) {
                    if &m != me {
                        out.insert((me.clone(), m));
                    }
                }
            }
        }
        out
    }

    fn layer_of(top: &str) -> usize {
        LAYERS
            .iter()
            .position(|(_, mods)| mods.contains(&top))
            .unwrap_or_else(|| panic!("src/{top} is in no layer: add it to layers::LAYERS"))
    }

    #[test]
    fn every_module_has_a_layer() {
        for m in sources().keys() {
            layer_of(&m[0]);
        }
    }

    #[test]
    fn modules_use_only_their_own_layer_or_lower_ones() {
        let mut upward = Vec::new();
        for (a, b) in edges() {
            let (la, lb) = (layer_of(&a[0]), layer_of(&b[0]));
            if lb > la {
                upward.push(format!("{} ({}) uses {} ({})", a.join("::"), LAYERS[la].0, b.join("::"), LAYERS[lb].0));
            }
        }
        assert!(upward.is_empty(), "imports upwards:\n  {}", upward.join("\n  "));
    }

    /// Every cycle of `edges` (`a → b → … → a`, pairs included), found by a depth-first search
    /// from each node.
    fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<String> {
        let mut found = Vec::new();
        for (start, _) in edges {
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((at, trail)) = stack.pop() {
                for (_, next) in edges.iter().filter(|(a, _)| a == &at) {
                    if next == start {
                        found.push(format!("{} → {start}", trail.join(" → ")));
                    } else if seen.insert(next.clone()) {
                        let mut t = trail.clone();
                        t.push(next.clone());
                        stack.push((next.clone(), t));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn no_two_top_modules_use_each_other() {
        let tops: BTreeSet<(String, String)> =
            edges().into_iter().map(|(a, b)| (a[0].clone(), b[0].clone())).filter(|(a, b)| a != b).collect();
        let found = cycles(&tops);
        assert!(found.is_empty(), "modules that use each other:\n  {}", found.join("\n  "));
    }

    #[test]
    fn no_two_files_of_one_folder_use_each_other() {
        // The edges between files of one folder, by folder; the folder's own mod.rs may use its
        // files and they it, as a module and its parts do.
        let mut folders: BTreeMap<ModPath, BTreeSet<(String, String)>> = BTreeMap::new();
        for (a, b) in edges() {
            if a.len() == b.len() && a.len() > 1 && a[..a.len() - 1] == b[..b.len() - 1] {
                let folder = a[..a.len() - 1].to_vec();
                folders.entry(folder).or_default().insert((a.join("::"), b.join("::")));
            }
        }
        let found: Vec<String> = folders.values().flat_map(cycles).collect();
        assert!(found.is_empty(), "files of one folder that use each other:\n  {}", found.join("\n  "));
    }

    #[test]
    fn cycles_are_found_through_any_number_of_steps() {
        let e = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert!(cycles(&e(&[("a", "b"), ("b", "c")])).is_empty());
        assert!(!cycles(&e(&[("a", "b"), ("b", "a")])).is_empty());
        assert!(cycles(&e(&[("a", "b"), ("b", "c"), ("c", "a")])).iter().any(|c| c == "a → b → c → a"));
    }

    #[test]
    fn the_reader_sees_paths_groups_and_supers() {
        let me: ModPath = vec!["telemetry".into(), "proxy".into(), "forward".into()];
        let code = "use crate::store::{self, RunRecord};\nuse super::{abandoned::{self, Rest}, Shared};\nlet x = crate::report::table::new_table();\nuse super::super::client;\n";
        let got: Vec<String> = uses(&me, code).iter().map(|p| p.join("::")).collect();
        for want in [
            "store",
            "store::RunRecord",
            "telemetry::proxy::abandoned",
            "telemetry::proxy::Shared",
            "report::table::new_table",
            "telemetry::client",
        ] {
            assert!(got.contains(&want.to_string()), "{want} not in {got:?}");
        }
        assert!(!got.iter().any(|g| g.ends_with("self") || g.ends_with("Rest")), "{got:?}");
    }
}
