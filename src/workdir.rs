//! Stage 2: workdirs. A fresh folder per trial holding what the agent may see, and a second,
//! clean folder per grading holding the frozen files plus only the agent's package.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::files::is_cache;
use crate::problem::{Problem, PROMPT_FILE, TESTS_DIR};

/// What `copy_tree` left out, so grading can say what the agent's tree held besides code.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Skipped {
    pub paths: Vec<String>,
}

/// Copies the regular files and folders of `src` into `dst`. Symbolic links, sockets and
/// caches are left out (a link could point at the reference or outside the tree).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<Skipped> {
    let mut skipped = Skipped::default();
    fs::create_dir_all(dst).with_context(|| format!("failed to create {}", dst.display()))?;
    let walker = walkdir::WalkDir::new(src).follow_links(false).min_depth(1).sort_by_file_name();
    let mut it = walker.into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.with_context(|| format!("failed to walk {}", src.display()))?;
        let rel = entry.path().strip_prefix(src).expect("walkdir yields paths under its root");
        let ft = entry.file_type();
        if is_cache(&entry.file_name().to_string_lossy()) {
            if ft.is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let target = dst.join(rel);
        if ft.is_dir() {
            fs::create_dir_all(&target)?;
        } else if ft.is_file() {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy {} to {}", entry.path().display(), target.display()))?;
        } else {
            skipped.paths.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(skipped)
}

/// Fills a trial's workdir: `PROBLEM.md`, the starter package and the tests. Never the reference.
pub fn prepare_trial(problem: &Problem, workdir: &Path) -> Result<()> {
    fs::copy(problem.prompt_path(), workdir.join(PROMPT_FILE))
        .with_context(|| format!("failed to copy {}", problem.prompt_path().display()))?;
    copy_tree(&problem.package_dir(), &workdir.join(&problem.name))?;
    copy_tree(&problem.tests_dir(), &workdir.join(TESTS_DIR))?;
    Ok(())
}

/// The pytest configuration grading runs under: the grading folder on `sys.path`, nothing else.
pub const GRADE_INI: &str = "[pytest]\npythonpath = .\naddopts =\ntestpaths = tests\n";

/// Fills a clean grading folder: the frozen tests from the problem, our own `pytest.ini`, and
/// the package from `package_src` (the agent's version; may be missing).
pub fn prepare_grade(problem: &Problem, package_src: &Path, grade_dir: &Path) -> Result<Skipped> {
    copy_tree(&problem.tests_dir(), &grade_dir.join(TESTS_DIR))?;
    fs::write(grade_dir.join("pytest.ini"), GRADE_INI)?;
    let pkg_dst = grade_dir.join(&problem.name);
    if package_src.is_dir() && !package_src.is_symlink() {
        copy_tree(package_src, &pkg_dst)
    } else {
        fs::create_dir_all(&pkg_dst)?;
        Ok(Skipped::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_skips_links_and_caches() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a.py"), "x").unwrap();
        fs::create_dir(src.path().join("__pycache__")).unwrap();
        fs::write(src.path().join("__pycache__/a.cpython-311.pyc"), "forged").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("leak.py")).unwrap();
        let skipped = copy_tree(src.path(), dst.path()).unwrap();
        assert!(dst.path().join("a.py").is_file());
        assert!(!dst.path().join("__pycache__").exists());
        assert!(!dst.path().join("leak.py").exists());
        assert_eq!(skipped.paths, ["leak.py"]);
    }
}
