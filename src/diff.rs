//! The agent's change as a unified diff of its package against the starter.

use similar::TextDiff;

use crate::files::Files;

/// A unified diff (`a/<path>` → `b/<path>`, paths relative to the problem folder) over every
/// file added, removed or changed.
pub fn unified(before: &Files, after: &Files) -> String {
    let mut out = String::new();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let old = before.get(name).map(String::as_str).unwrap_or("");
        let new = after.get(name).map(String::as_str).unwrap_or("");
        if before.contains_key(name) && after.contains_key(name) && old == new {
            continue;
        }
        let a = if before.contains_key(name) { format!("a/{name}") } else { "/dev/null".into() };
        let b = if after.contains_key(name) { format!("b/{name}") } else { "/dev/null".into() };
        out.push_str(&format!("diff --fixbench a/{name} b/{name}\n"));
        out.push_str(&TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(&a, &b).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_added_and_removed_files() {
        let before: Files = [("pkg/a.py".into(), "x = 1\n".into()), ("pkg/gone.py".into(), "y\n".into())].into();
        let after: Files = [("pkg/a.py".into(), "x = 2\n".into()), ("pkg/new.py".into(), "z\n".into())].into();
        let d = unified(&before, &after);
        assert!(d.contains("--- a/pkg/a.py\n+++ b/pkg/a.py\n") && d.contains("-x = 1\n+x = 2\n"), "{d}");
        assert!(d.contains("--- /dev/null\n+++ b/pkg/new.py"), "{d}");
        assert!(d.contains("--- a/pkg/gone.py\n+++ /dev/null"), "{d}");
        assert_eq!(unified(&before, &before), "");
    }
}
