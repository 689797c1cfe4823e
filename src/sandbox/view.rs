//! What a sandboxed agent sees: the system read-only, its own trial folder read-write, and the
//! folders its program is installed in read-only, never the answers or the user's files.

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

/// System folders shown read-only when present (symlinks such as `/bin -> usr/bin` are kept
/// as symlinks).
pub const SYSTEM: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];

/// Folders the sandbox must never show.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Never shown, nor any folder that holds them or lies inside them (problems/, results/).
    pub answers: Vec<PathBuf>,
    /// Never shown, nor any folder that holds them; folders inside them may be (the user's
    /// home, where `~/.pyenv` lives; the project folder, where `.agents/` lives).
    pub private: Vec<PathBuf>,
}

impl Guard {
    /// Whether `p` may be shown to the agent. Both `p` and its real path are checked.
    pub fn allows(&self, p: &Path) -> bool {
        let ok = |p: &Path| {
            p.parent().is_some()
                && !self.answers.iter().any(|a| a.starts_with(p) || p.starts_with(a))
                && !self.private.iter().any(|h| h.starts_with(p))
        };
        ok(p) && p.canonicalize().map(|real| ok(&real)).unwrap_or(true)
    }
}

/// An absolute, lexically clean form of `p` (symlinks kept), relative to `base`.
pub fn absolute(p: &Path, base: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// `p` in the form the guard compares: its real path when it exists, else absolute.
pub fn real_or_absolute(p: &Path, base: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| absolute(p, base))
}

pub fn is_system(p: &Path) -> bool {
    SYSTEM.iter().any(|s| p.starts_with(s))
}

/// Finds `program` as `execvp` would: a name with a slash is taken relative to `cwd`, a bare
/// name is looked up in `path`.
pub fn resolve_program(program: &str, cwd: &Path, path: &OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        let p = absolute(Path::new(program), cwd);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path).filter(|d| d.is_absolute()).map(|d| d.join(program)).find(|p| is_executable(p))
}

/// Whether `p` is a file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The folder a program or PATH entry is installed under, so that its libraries come along:
/// the folder above the outermost `node_modules` (npm's `lib/`), else the prefix above a
/// `bin`/`sbin`/`shims` folder (a venv, pyenv, nvm, `npm --prefix`), else its own folder.
pub fn install_root(p: &Path) -> PathBuf {
    let comps: Vec<_> = p.components().collect();
    if let Some(i) = comps.iter().position(|c| c.as_os_str() == "node_modules") {
        return comps[..i].iter().collect();
    }
    let dir = if p.is_dir() { p } else { p.parent().unwrap_or(p) };
    match dir.file_name().and_then(OsStr::to_str) {
        Some("bin" | "sbin" | "shims") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The interpreter a script names on its `#!` line (through `env` when it uses it).
pub fn shebang_interpreter(script: &Path, path: &OsStr) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?.strip_prefix("#!")?.lines().next()?.to_string();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if Path::new(first).file_name() == Some(OsStr::new("env")) {
        let name = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
        return resolve_program(name, Path::new("/"), path);
    }
    Some(PathBuf::from(first))
}

/// Read-only folders (and, where no folder may be shown, single files) that make `program`
/// and the tools on `path` runnable, each allowed by `guard`; outside the system folders,
/// without duplicates, parents before children.
pub fn install_binds(program: Option<&Path>, path: &OsStr, guard: &Guard) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut add = |p: &Path, single_file_ok: bool| {
        for p in [Some(p.to_path_buf()), p.canonicalize().ok()].into_iter().flatten() {
            if is_system(&p) || !p.is_absolute() {
                continue;
            }
            let root = install_root(&p);
            let own = if p.is_dir() { p.clone() } else { p.parent().unwrap_or(&p).to_path_buf() };
            let choice = [root, own, p.clone()]
                .into_iter()
                .filter(|c| single_file_ok || c.is_dir())
                .find(|c| !is_system(c) && guard.allows(c));
            if let Some(c) = choice {
                found.push(c);
            }
        }
    };
    for dir in std::env::split_paths(path).filter(|d| d.is_absolute() && d.is_dir()) {
        add(&dir, false);
    }
    if let Some(program) = program {
        add(program, true);
        if let Some(interp) = shebang_interpreter(program, path) {
            add(&interp, true);
        }
    }
    found.sort();
    found.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in found {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_roots_follow_common_layouts() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in [".agents/bin", ".agents/lib/node_modules/@x/pi/dist", "venv/bin", "tools"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join(".agents/lib/node_modules/@x/pi/dist/cli.js"), "").unwrap();
        std::fs::write(r.join("tools/agent.sh"), "").unwrap();
        assert_eq!(install_root(&r.join(".agents/lib/node_modules/@x/pi/dist/cli.js")), r.join(".agents/lib"));
        assert_eq!(install_root(&r.join(".agents/bin")), r.join(".agents"));
        assert_eq!(install_root(&r.join("venv/bin/python")), r.join("venv"));
        assert_eq!(install_root(&r.join("tools/agent.sh")), r.join("tools"));
        assert_eq!(install_root(Path::new("/root/.pyenv/shims")), PathBuf::from("/root/.pyenv"));
    }

    #[test]
    fn the_guard_hides_answers_and_whatever_holds_them() {
        let g = Guard { answers: vec!["/w/proj/problems".into()], private: vec!["/root".into(), "/w/proj".into()] };
        for shown in ["/w/proj/.agents", "/root/.pyenv", "/w/other"] {
            assert!(g.allows(Path::new(shown)), "{shown}");
        }
        for hidden in ["/", "/w", "/w/proj", "/w/proj/problems", "/w/proj/problems/x.reference", "/root"] {
            assert!(!g.allows(Path::new(hidden)), "{hidden}");
        }
    }

    #[test]
    fn binds_cover_the_program_its_interpreter_and_path_but_nothing_guarded() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().canonicalize().unwrap();
        let proj = r.join("proj");
        for d in ["proj/problems/p/p.reference", "proj/.agents/bin", "venv/bin", "home/.tool/bin"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        let script = proj.join("agent.sh"); // in the project root: only the file may be shown
        std::fs::write(&script, format!("#!{}/venv/bin/python\n", r.display())).unwrap();
        std::fs::write(r.join("venv/bin/python"), "").unwrap();
        let path =
            std::env::join_paths([proj.join(".agents/bin"), r.join("home/.tool/bin"), "/usr/bin".into(), proj.clone()])
                .unwrap();
        let guard = Guard { answers: vec![proj.join("problems")], private: vec![proj.clone(), r.join("home")] };
        let binds = install_binds(Some(&script), &path, &guard);
        assert_eq!(binds, vec![r.join("home/.tool"), proj.join(".agents"), script, r.join("venv")]);
    }

    #[test]
    fn programs_resolve_like_execvp() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("tool"), "").unwrap();
        assert_eq!(resolve_program("tool", Path::new("/"), bin.as_os_str()), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(resolve_program("tool", Path::new("/"), bin.as_os_str()), Some(bin.join("tool")));
        assert_eq!(resolve_program("bin/tool", t.path(), OsStr::new("")), Some(bin.join("tool")));
        assert_eq!(resolve_program("./missing", t.path(), OsStr::new("")), None);
    }
}
