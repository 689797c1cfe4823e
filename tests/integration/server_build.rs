//! The llama-server that setup builds must serve on this machine: the smoke test that accepts a
//! binary, the cache that heals itself, and what a user is told when a server dies at start-up.
//! A binary that segfaults as it loads the model (as ggml's AMX path does on some Xeons) is
//! played by a script that kills itself with SIGSEGV; the real build comes from scripts/setup.sh.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::llama::{model, server_binary};
use crate::util::*;

/// A stand-in llama-server that logs a line and dies of `signal` (or exits with `code`).
fn crashing_server(dir: &Path, how: &str) -> PathBuf {
    let p = dir.join("llama-server");
    let body = match how {
        "segv" => "kill -SEGV $$",
        "ill" => "kill -ILL $$",
        code => &format!("exit {code}"),
    };
    std::fs::write(&p, format!("#!/bin/sh\necho 'load_tensors: loading model tensors'\n{body}\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    p
}

fn script(name: &str) -> Command {
    Command::new(repo().join("scripts").join(name))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_smoke_test_passes_the_real_build_and_names_the_signal_that_killed_a_broken_one() {
    let out = script("smoke-llama-server.sh").arg(server_binary()).arg(model()).output().unwrap();
    assert!(out.status.success(), "the real llama-server fails the smoke test:\n{}", stderr_of(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("ok: ") && said.contains(" tokens in "), "{said}");

    let dir = tempfile::tempdir().unwrap();
    for (how, words) in [
        ("segv", "was killed by SIGSEGV (signal 11)"),
        ("ill", "was killed by SIGILL (signal 4)"),
        ("3", "exited with code 3"),
    ] {
        let bin = crashing_server(dir.path(), how);
        let out = script("smoke-llama-server.sh").arg(&bin).arg(model()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{how}");
        let err = stderr_of(&out);
        assert!(err.contains(&format!("{} {words} while starting", bin.display())), "{err}");
        assert!(err.contains("load_tensors: loading model tensors"), "the log's tail is shown: {err}");
    }
}

/// A cache folder laid out as build-llama-server.sh lays it out, holding `binary` with `key`.
fn cache_with(binary: &Path, key: Option<&str>) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    let bin = cache.path().join("llama-server-0.3.36/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(binary, bin.join("llama-server")).unwrap();
    if let Some(k) = key {
        std::fs::write(bin.join("build-key"), format!("{k}\n")).unwrap();
    }
    cache
}

fn check(cache: &Path) -> (i32, String) {
    let out = script("build-llama-server.sh")
        .arg("--check")
        .env("FIXBENCH_CACHE", cache)
        .env("FIXBENCH_MODEL", model())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out)))
}

#[test]
fn a_cached_binary_is_accepted_only_with_this_machines_key_and_a_passing_smoke_test() {
    let real = fixbench::server::cached_binary();
    let key_file = real.with_file_name("build-key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap_or_else(|_| panic!("no {}: run scripts/setup.sh", key_file.display()));
    let key = key.trim();
    assert!(
        key.contains("llama-cpp-python=0.3.36") && key.contains(" cpu=") && key.contains("-DGGML_NATIVE=OFF"),
        "{key}"
    );

    let good = cache_with(&real, Some(key));
    let (code, said) = check(good.path());
    assert_eq!(code, 0, "{said}");

    let empty = tempfile::tempdir().unwrap();
    assert_eq!(check(empty.path()), (1, "no cached llama-server\n".into()));

    let old = cache_with(&real, None);
    let (code, said) = check(old.path());
    assert_eq!((code, said.as_str()), (1, "the cached llama-server has no build key (an older setup built it)\n"));

    let other = cache_with(&real, Some(&key.replace(" cpu=", " cpu=other-")));
    let (code, said) = check(other.path());
    assert!(code == 1 && said.contains("was built with other options"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let broken = cache_with(&crashing_server(dir.path(), "segv"), Some(key));
    let (code, said) = check(broken.path());
    assert_eq!(code, 1);
    assert!(said.starts_with("the cached llama-server fails the smoke test: ") && said.contains("SIGSEGV"), "{said}");
}

#[test]
fn serve_sh_says_how_the_server_died_shows_its_log_and_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let bin = crashing_server(dir.path(), "segv");
    let port = crate::llama::free_port().to_string();
    let out = script("serve.sh")
        .args(["start", "--port", &port])
        .env("FIXBENCH_CACHE", dir.path())
        .env("FIXBENCH_LLAMA_SERVER", &bin)
        .env("FIXBENCH_MODEL", model())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    for want in [
        "killed by SIGSEGV (signal 11) during startup",
        "load_tensors: loading model tensors",
        "build-llama-server.sh",
        "FIXBENCH_LLAMA_SERVER",
    ] {
        assert!(err.contains(want), "`{want}` missing:\n{err}");
    }
}

#[test]
fn a_sweep_whose_server_segfaults_records_the_signal_log_and_way_out_and_goes_on() {
    let sb = Sandbox::new();
    let bin = crashing_server(sb.path(), "segv");
    let sweep = sb.path().join("crash.toml");
    std::fs::write(
        &sweep,
        format!(
            "[[server]]\nlabel = \"crash\"\nbinary = \"{}\"\nmodel = \"{}\"\nargs = []\n",
            bin.display(),
            model().display()
        ),
    )
    .unwrap();
    let out = fixbench(sb.path())
        .args(["sweep", sweep.to_str().unwrap(), "--agent", "null", "--problem", "expr_calc"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(err.contains("llama-server was killed by SIGSEGV (signal 11) during start-up"), "{err}");
    assert!(err.contains("scripts/build-llama-server.sh") && err.contains("FIXBENCH_LLAMA_SERVER"), "{err}");
    assert!(err.contains("load_tensors: loading model tensors"), "{err}");
}

#[test]
fn a_sweep_takes_its_default_binary_from_the_harness_file_that_config_names() {
    let sb = Sandbox::new();
    let bin = crashing_server(sb.path(), "segv");
    let config = sb.path().join("elsewhere.toml");
    std::fs::write(&config, format!("[server]\nbinary = \"{}\"\n", bin.display())).unwrap();
    let sweep = sb.path().join("plain.toml");
    std::fs::write(&sweep, format!("[[server]]\nlabel = \"plain\"\nmodel = \"{}\"\nargs = []\n", model().display()))
        .unwrap();
    let out = fixbench(sb.path())
        .args([
            "sweep",
            sweep.to_str().unwrap(),
            "--agent",
            "null",
            "--problem",
            "expr_calc",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        err.contains("llama-server was killed by SIGSEGV (signal 11) during start-up"),
        "the --config file's binary was not used: {err}"
    );
}
