//! Stage 2: workdirs. A fresh folder per trial holding what the agent may see, and a second,
//! clean folder per grading holding the frozen files plus only the agent's package.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::files::is_cache;
use crate::problem::{Layout, Problem, PROMPT_FILE};

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

/// Fills a trial's workdir: the problem folder as the agent may see it (`PROBLEM.md`, the
/// starter, the tests and whatever else the repository holds). Never the reference nor
/// `problem.toml`.
pub fn prepare_trial(problem: &Problem, workdir: &Path) -> Result<()> {
    fs::create_dir_all(workdir)?;
    for entry in fs::read_dir(&problem.dir).with_context(|| format!("failed to read {}", problem.dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if problem.layout.hidden(&name) || is_cache(&name) {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&entry.path(), &workdir.join(&name))?;
        } else if ft.is_file() {
            fs::copy(entry.path(), workdir.join(&name))
                .with_context(|| format!("failed to copy {}", entry.path().display()))?;
        }
    }
    if !workdir.join(PROMPT_FILE).is_file() {
        fs::copy(problem.prompt_path(), workdir.join(PROMPT_FILE))
            .with_context(|| format!("failed to copy {}", problem.prompt_path().display()))?;
    }
    Ok(())
}

/// The pytest configuration grading runs under: the problem's `pythonpath` folders on
/// `sys.path`, its test paths collected, no options from anywhere else (an ini file of the
/// problem or the agent is never read: pytest takes this one, in the grading folder's root).
pub fn grade_ini(layout: &Layout) -> String {
    format!(
        "[pytest]\npythonpath = {}\naddopts =\ntestpaths = {}\n",
        layout.pythonpath.join(" "),
        layout.testpaths().join(" ")
    )
}

/// Fills a clean grading folder: the problem's own files (frozen tests, their helpers and
/// `conftest.py`, the rest of the repository), our own `pytest.ini`, and the editable files
/// from `src_root` (the agent's workdir, or any folder laid out like the problem; what is
/// missing there is missing here). Links and special files the agent left are not copied.
pub fn prepare_grade(problem: &Problem, src_root: &Path, grade_dir: &Path) -> Result<Skipped> {
    fs::create_dir_all(grade_dir)?;
    for rel in problem.layout.frozen_files(&problem.dir)? {
        let target = grade_dir.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(problem.dir.join(&rel), &target)
            .with_context(|| format!("failed to copy {} into the grading folder", rel.display()))?;
    }
    let mut skipped = Skipped::default();
    for e in &problem.layout.editable {
        // Reached through a link anywhere on the way (the workdir itself, a parent folder
        // the agent replaced by a link to the reference): not the agent's files, not copied.
        if crate::files::through_link(src_root, &e.path) {
            skipped.paths.push(e.path.clone());
            continue;
        }
        let src = src_root.join(&e.path);
        if !src.exists() {
            continue;
        }
        let walker = walkdir::WalkDir::new(&src).follow_links(false).sort_by_file_name();
        let mut it = walker.into_iter();
        while let Some(entry) = it.next() {
            let entry = entry.with_context(|| format!("failed to walk {}", src.display()))?;
            let rel = entry.path().strip_prefix(src_root).expect("under its root").to_string_lossy().into_owned();
            let ft = entry.file_type();
            let target = grade_dir.join(&rel);
            let frozen = fs::symlink_metadata(&target).ok();
            if is_cache(&entry.file_name().to_string_lossy()) || (ft.is_dir() && problem.layout.is_test(&rel)) {
                if ft.is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if ft.is_dir() {
                // A folder where the problem has a file (`mkdir conftest.py`): left out.
                if frozen.as_ref().is_some_and(|m| !m.is_dir()) {
                    skipped.paths.push(rel);
                    it.skip_current_dir();
                    continue;
                }
                fs::create_dir_all(&target)?;
            } else if ft.is_file() {
                // Never over a file grading took from the problem.
                if problem.layout.is_editable(&rel) && frozen.is_none() {
                    fs::copy(entry.path(), &target).with_context(|| {
                        format!("failed to copy {} to {}", entry.path().display(), target.display())
                    })?;
                }
            } else {
                skipped.paths.push(rel);
            }
        }
    }
    fs::write(grade_dir.join("pytest.ini"), grade_ini(&problem.layout))?;
    Ok(skipped)
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
