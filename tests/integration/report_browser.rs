//! `fixbench report` in a real browser (Debian's chromium, headless, over the DevTools
//! protocol): a real run against a real llama-server, reported by `run --report`, loads with no
//! console message, exception or request; its matrix has the run's cells; clicking a cell and
//! then a trial shows the trial's diff, its transcript turn by turn and its request timeline;
//! a fragment opens the same trial; filters in the fragment, two runs compared and a gate's
//! report. Screenshots are kept under `target/test-artifacts/`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::browser::{Browser, Page};
use crate::llama::{multiturn_cmd, LlamaServer};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(20);

/// Opens `file` at `fragment` and waits until the page has applied it.
fn open(browser: &Browser, file: &Path, fragment: &str) -> Page {
    let page = browser.open(file, fragment);
    page.wait_until("document.body.dataset.ready === '1'", WAIT).expect("the page sets data-ready");
    page
}

fn assert_clean(page: &Page) {
    let problems = page.problems();
    assert!(problems.is_empty(), "the page logged, threw or fetched: {problems:#?}");
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a PNG");
    assert_eq!(reader.info().width, 1280, "{}", path.display());
}

#[test]
fn a_real_runs_report_shows_its_matrix_and_each_trials_diff_and_transcript_in_chromium() {
    let server = LlamaServer::start(&[]);
    let sb = Sandbox::new();
    // An agent that talks to the model for two turns, edits the package, and prints markup
    // that would load an image and run script if the page ever took it for HTML.
    let agent = format!(
        "sh -c '{} && echo \"# touched by the agent\" >> expr_calc/__init__.py && echo \"<img src=nothere.png onerror=alert(1)>\"'",
        multiturn_cmd("--turns 2 --stream --max-tokens 12")
    );
    let file = sb.path().join("out/report.html");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = run_expect(
        fixbench(sb.path())
            .args(["run", "--server", &server.url(), "--problem", "expr_calc", "--isolation", "none"])
            .args(["--agent", "oracle", "--cmd", &agent, "--json", "--report", file.to_str().unwrap()]),
        0,
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("wrote {}", file.display())) && stderr.contains("1 run, 2 trials"), "{stderr}");
    let run_id = run["run_id"].as_str().unwrap();
    let t = run["trials"].as_array().unwrap().iter().find(|t| t["agent"] == "cmd").expect("the cmd agent's trial");
    let transcript_file = sb.path().join("results").join(run_id).join(t["paths"]["transcript"].as_str().unwrap());
    let entries: Vec<Value> =
        std::fs::read_to_string(transcript_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 2);

    let browser = Browser::launch();
    let page = open(&browser, &file, "");
    let cells = page.eval_json(
        "[...document.querySelectorAll('#matrix td.cell')].map(c => [c.dataset.problem, c.dataset.group, c.querySelector('b').innerText]).sort()",
    );
    assert_eq!(
        cells,
        serde_json::json!([["expr_calc", "cmd", "0/1"], ["expr_calc", "oracle", "1/1"]]),
        "one cell per problem and agent, resolved/n"
    );
    page.screenshot(Path::new("report-matrix.png"));

    // Click the cell, then its trial: a real mouse click through the DevTools protocol.
    page.click(r#"#matrix td.cell[data-group="cmd"] a"#);
    page.wait_for("#trials a.trial-link", WAIT);
    let id = format!("{run_id}/expr_calc/cmd/0");
    assert_eq!(
        page.eval_json("[...document.querySelectorAll('#trials a.trial-link')].map(a => a.dataset.trial)"),
        serde_json::json!([id])
    );
    page.click("#trials a.trial-link");
    page.wait_for("#trial-view .diff .diff-add", WAIT);
    assert!(page.text("#trial-view .diff").contains("+# touched by the agent"), "{}", page.text("#trial-view .diff"));
    assert_eq!(page.count("#transcript .turn"), 2, "{}", page.text("#transcript"));
    let said = entries[0]["answer"]["text"].as_str().unwrap();
    assert!(!said.is_empty());
    let transcript = page.text("#transcript");
    assert!(transcript.contains(said.trim()), "the first answer is shown: {said:?} in {transcript}");
    // The system prompt is collapsed: in the page, not on show until opened.
    assert!(transcript.contains("system prompt (49 chars)"), "{transcript}");
    let all = page.eval_json("document.getElementById('transcript').textContent");
    assert!(all.as_str().unwrap().contains("You are a terse assistant"), "{all}");
    assert!(page.text("#trial-view .stdout").contains("<img src=nothere.png"), "the agent's output is text");
    assert_eq!(page.count("#trial-view .stdout img"), 0);
    assert_eq!(page.count("#trial-view svg.timeline"), 1);
    assert!(page.count("#trial-view svg.timeline rect.decode") >= 2, "a decode bar per request");
    let hash = page.eval_json("location.hash");
    assert!(hash.as_str().unwrap().contains("trial="), "the open trial is in the fragment: {hash}");
    let shot = page.screenshot(Path::new("report-trial.png"));
    assert_png(&shot);
    assert_clean(&page);

    // The same trial straight from a link, and back to the matrix.
    let page = open(&browser, &file, &format!("trial={id}"));
    page.wait_for("#trial-view .diff .diff-add", WAIT);
    assert_eq!(page.count("#transcript .turn"), 2);
    page.eval_json("history.pushState(null, '', '#'); window.dispatchEvent(new HashChangeEvent('hashchange')); 1");
    page.wait_until("document.getElementById('trial-view').hidden", WAIT).expect("closing the trial hides its page");
    assert_clean(&page);
}

#[test]
fn filters_in_the_fragment_two_runs_and_a_gates_report_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let opts = fixbench::synth::Options { runs: 2, trials: 24, transcripts: true, ..Default::default() };
    let ids = fixbench::synth::generate(&fixbench::store::Store::new(&results), &opts).unwrap();
    let r = results.to_str().unwrap();
    let file = tmp.path().join("two.html");
    run_expect(
        fixbench(tmp.path()).args(["report", "--results", r, "-o", file.to_str().unwrap(), &ids[0], &ids[1]]),
        0,
    );

    let browser = Browser::launch();
    let page = open(&browser, &file, "");
    let all = page.count("#matrix td.cell");
    assert!(all >= 4, "{all}");
    assert!(page.count("#compare tr") >= 3, "the compare table: {}", page.text("#compare"));
    let failing = page.count("#matrix td.cell[data-fail='1']");
    assert!(failing > 0 && failing < all, "the synthetic runs resolve some cells and not others");

    let page = open(&browser, &file, "failures=1");
    let shown = page.eval_json(
        "[...document.querySelectorAll('#matrix td.cell')].filter(c => getComputedStyle(c).visibility !== 'hidden').map(c => c.dataset.fail)",
    );
    assert_eq!(shown.as_array().unwrap().len(), failing, "only the failing cells: {shown}");
    assert!(page.eval_json("document.getElementById('failures').checked").as_bool().unwrap());
    // Ticking a filter writes it into the fragment, so the view can be linked.
    page.click("#different");
    page.wait_until("location.hash.includes('different=1')", WAIT).expect("the filter is kept in the fragment");
    assert_clean(&page);

    // The gate's report: the verdict first, then the two runs.
    let gate_file = tmp.path().join("gate.html");
    let out = fixbench(tmp.path())
        .args(["gate", "--results", r, "--baseline", &ids[0], &ids[1], "--report", gate_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 5)), "{out:?}");
    let page = open(&browser, &file_or(&gate_file), "");
    let banner = page.text("#banner");
    let verdict = if out.status.code() == Some(0) { "gate passed" } else { "gate FAILED" };
    assert!(banner.contains(verdict) && banner.contains(&ids[1]), "{banner}");
    assert!(page.count("#compare tr") >= 3);
    page.screenshot(Path::new("report-gate.png"));
    assert_clean(&page);
}

fn file_or(p: &Path) -> std::path::PathBuf {
    assert!(p.is_file(), "{} was not written", p.display());
    p.to_path_buf()
}
