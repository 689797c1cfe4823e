//! A real browser for the tests of HTML output: Debian's `chromium`, headless, driven over the
//! DevTools protocol (the `headless_chrome` crate, which never downloads a browser here).
//! `scripts/setup-chromium.sh` installs and checks it; `scripts/test.sh` exports its path as
//! `FIXBENCH_CHROMIUM`. With no chromium the tests fail, saying so: they never skip.
//!
//! ```ignore
//! let browser = Browser::launch();
//! let page = browser.open(&file, "trial=3");          // file://…#trial=3
//! page.wait_for("#matrix td", Duration::from_secs(5));
//! page.click("#matrix td.cell");
//! assert_eq!(page.text("#diff h2"), "…");
//! assert_eq!(page.count("#matrix td"), 12);
//! let v = page.eval_json("[...document.querySelectorAll('th')].map(t => t.textContent)");
//! page.screenshot(Path::new("report.png"));            // under target/test-artifacts/
//! assert!(page.problems().is_empty(), "{:#?}", page.problems());
//! ```
//!
//! `problems()` is everything that went wrong or reached out since the page opened: console
//! errors and warnings, uncaught exceptions, the browser's own error and warning log entries, and
//! every network request other than the file itself (attempted or failed; `data:` and `blob:`
//! URLs are not network). Helpers panic with the reason, the page's problems included.
//!
//! examples/report_paint.rs includes this file too (`#[path]`), for the same launch flags.

#![allow(dead_code)]

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Network, Page as Cdp, Runtime};
use headless_chrome::{LaunchOptions, Tab};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The chromium to drive: `FIXBENCH_CHROMIUM`, else Debian's `/usr/bin/chromium`; panics,
/// naming scripts/setup-chromium.sh, when there is none.
pub fn chromium_path() -> PathBuf {
    find_chromium(std::env::var_os("FIXBENCH_CHROMIUM")).unwrap_or_else(|e| panic!("{e}"))
}

fn find_chromium(env: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let (path, from) = match env {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "FIXBENCH_CHROMIUM"),
        _ => (PathBuf::from("/usr/bin/chromium"), "the default"),
    };
    if path.is_file() {
        return Ok(path);
    }
    Err(format!(
        "no chromium at {} ({from}): run scripts/setup-chromium.sh, which installs and checks Debian's chromium \
         and prints its path (or set FIXBENCH_CHROMIUM to a working one)",
        path.display()
    ))
}

/// Where the tests keep what a person may want to look at afterwards (screenshots):
/// `<target dir>/test-artifacts/`, created. Follows `CARGO_TARGET_DIR`.
pub fn artifact_dir() -> PathBuf {
    let target = match option_env!("CARGO_TARGET_TMPDIR") {
        // <target>/tmp for integration tests
        Some(tmp) => Path::new(tmp).parent().expect("CARGO_TARGET_TMPDIR has a parent").to_path_buf(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target")),
    };
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// One headless chromium with a fresh, empty profile, removed when dropped.
pub struct Browser {
    inner: headless_chrome::Browser,
    _profile: tempfile::TempDir,
}

/// The `file://` URL of `path` (made absolute), with `#fragment` when it is not empty.
pub fn file_url(path: &Path, fragment: &str) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut url = String::from("file://");
    for b in abs.to_str().expect("a UTF-8 path").bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' | b'+' | b',' | b'=' | b'@' => {
                url.push(b as char)
            }
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    if !fragment.is_empty() {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

impl Browser {
    /// Starts chromium (see [`chromium_path`]) headless with the flags scripts/setup-chromium.sh
    /// checks: no sandbox, no GPU, no background traffic (it would flood a closed network).
    pub fn launch() -> Browser {
        let path = chromium_path();
        let profile = tempfile::Builder::new().prefix("fixbench-chromium-").tempdir().expect("a temp profile dir");
        // headless_chrome adds --headless, --no-sandbox, --disable-gpu, --user-data-dir and its
        // defaults (--disable-background-networking, --disable-sync, --no-first-run, …).
        let extra: Vec<&OsStr> = ["--disable-quic", "--disable-component-update", "--hide-scrollbars", "--mute-audio"]
            .map(OsStr::new)
            .into();
        let options = LaunchOptions::default_builder()
            .path(Some(path.clone()))
            .headless(true)
            .sandbox(false)
            .enable_gpu(false)
            .window_size(Some((1280, 900)))
            .user_data_dir(Some(profile.path().to_path_buf()))
            .args(extra)
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .expect("chromium launch options");
        let inner = headless_chrome::Browser::new(options).unwrap_or_else(|e| {
            panic!(
                "cannot start {} headless: {e:#}; run scripts/setup-chromium.sh to check it on this machine",
                path.display()
            )
        });
        Browser { inner, _profile: profile }
    }

    /// Opens `path` in a fresh tab (`#fragment` appended when not empty) and waits until its
    /// document has loaded. Problems are collected from before the navigation.
    pub fn open(&self, path: &Path, fragment: &str) -> Page {
        let page = self.tab(&file_url(path, fragment));
        page.navigate();
        page.wait_until_loaded(Duration::from_secs(20));
        page
    }

    /// Like `open` but returns as soon as the navigation is sent, for timing a load
    /// (examples/report_paint.rs); `before_load` runs in the page before any of its scripts.
    pub fn open_url_with(&self, url: &str, before_load: &str) -> Page {
        let page = self.tab(url);
        if !before_load.is_empty() {
            page.tab
                .call_method(Cdp::AddScriptToEvaluateOnNewDocument {
                    source: before_load.to_string(),
                    world_name: None,
                    include_command_line_api: None,
                })
                .expect("Page.addScriptToEvaluateOnNewDocument");
        }
        page.navigate();
        page
    }

    /// A new tab with its problem collector attached, not yet navigated.
    fn tab(&self, url: &str) -> Page {
        let tab = self.inner.new_tab().expect("a new chromium tab");
        let problems = Arc::new(Mutex::new(Vec::new()));
        let own = url.split('#').next().unwrap_or(url).to_string();
        let sink = Arc::clone(&problems);
        let requests: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let problem = describe(event, &own, &requests);
            if let Some(p) = problem {
                sink.lock().unwrap().push(p);
            }
        }))
        .expect("an event listener");
        tab.enable_runtime().expect("Runtime.enable");
        tab.enable_log().expect("Log.enable");
        tab.call_method(Network::Enable {
            max_total_buffer_size: None,
            max_resource_buffer_size: None,
            max_post_data_size: None,
        })
        .expect("Network.enable");
        Page { tab, url: url.to_string(), problems }
    }

    /// How many pages (tabs) are open, about:blank ones included.
    pub fn tabs(&self) -> usize {
        self.inner.get_tabs().lock().unwrap().len()
    }
}

/// One problem in words, from a DevTools event, or None when the event is not one.
fn describe(event: &Event, own_url: &str, requests: &Mutex<HashMap<String, String>>) -> Option<String> {
    use Runtime::ConsoleAPICalledEventTypeOption as Console;
    match event {
        Event::RuntimeConsoleAPICalled(e) => {
            let p = &e.params;
            let kind = match p.Type {
                Console::Error => "console.error",
                Console::Warning => "console.warn",
                Console::Assert => "console.assert",
                _ => return None,
            };
            let args: Vec<String> = p.args.iter().map(remote_text).collect();
            Some(format!("{kind}: {}", args.join(" ")))
        }
        Event::RuntimeExceptionThrown(e) => {
            let d = &e.params.exception_details;
            let what = d.exception.as_ref().map(remote_text).unwrap_or_else(|| d.text.clone());
            let at = d.url.as_deref().unwrap_or("");
            Some(format!("uncaught exception: {what} (at {at}:{}:{})", d.line_number + 1, d.column_number + 1))
        }
        Event::LogEntryAdded(e) => {
            let entry = &e.params.entry;
            let level = match entry.level {
                Log::LogEntryLevel::Error => "error",
                Log::LogEntryLevel::Warning => "warning",
                _ => return None,
            };
            let url = entry.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
            Some(format!("browser {level} ({:?}): {}{url}", entry.source, entry.text))
        }
        Event::NetworkRequestWillBeSent(e) => {
            let url = &e.params.request.url;
            requests.lock().unwrap().insert(e.params.request_id.clone(), url.clone());
            let base = url.split('#').next().unwrap_or(url);
            if base == own_url || url.starts_with("data:") || url.starts_with("blob:") || url == "about:blank" {
                return None;
            }
            Some(format!("network request: {} {url}", e.params.request.method))
        }
        Event::NetworkLoadingFailed(e) => {
            let p = &e.params;
            let url = requests.lock().unwrap().get(&p.request_id).cloned().unwrap_or_else(|| p.request_id.clone());
            let blocked = p.blocked_reason.as_ref().map(|r| format!(", blocked: {r:?}")).unwrap_or_default();
            Some(format!("request failed: {url}: {}{blocked}", p.error_text))
        }
        _ => None,
    }
}

/// A console argument or exception as text: its value when a primitive, else its description.
fn remote_text(o: &Runtime::RemoteObject) -> String {
    match (&o.value, &o.description) {
        (Some(Value::String(s)), _) => s.clone(),
        (Some(v), _) => v.to_string(),
        (None, Some(d)) => d.clone(),
        (None, None) => format!("{:?}", o.Type),
    }
}

/// One tab showing one page.
pub struct Page {
    tab: Arc<Tab>,
    url: String,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Page {
    fn navigate(&self) {
        self.tab.navigate_to(&self.url).unwrap_or_else(|e| panic!("cannot open {}: {e:#}", self.url));
    }

    /// Waits until the document at our URL is complete (its load event has run).
    pub fn wait_until_loaded(&self, timeout: Duration) {
        let url = serde_json::to_string(&self.url).unwrap();
        self.wait_until(&format!("location.href === {url} && document.readyState === 'complete'"), timeout)
            .unwrap_or_else(|| panic!("{} did not load in {timeout:?}{}", self.url, self.problems_note()));
    }

    /// The URL opened, fragment included.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The tab itself, for anything not wrapped here.
    pub fn tab(&self) -> &Tab {
        &self.tab
    }

    /// Polls the JS expression `cond` until it is truthy; the time it took, or None on timeout.
    pub fn wait_until(&self, cond: &str, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        let js = format!("!!({cond})");
        loop {
            // before the navigation commits, the expression may run in the old page or fail
            if let Ok(Value::Bool(true)) = self.try_eval_json(&js) {
                return Some(start.elapsed());
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until an element matches the CSS `selector`; panics after `timeout`.
    pub fn wait_for(&self, selector: &str, timeout: Duration) {
        let sel = serde_json::to_string(selector).unwrap();
        self.wait_until(&format!("document.querySelector({sel})"), timeout).unwrap_or_else(|| {
            panic!("nothing matched {selector:?} in {timeout:?} on {}{}", self.url, self.problems_note())
        });
    }

    /// Evaluates `js` (an expression; a promise is awaited) and returns its value as JSON, or
    /// the exception it threw.
    pub fn try_eval_json(&self, js: &str) -> Result<Value, String> {
        let r = self
            .tab
            .call_method(Runtime::Evaluate {
                expression: js.to_string(),
                object_group: None,
                include_command_line_api: None,
                silent: Some(true),
                context_id: None,
                return_by_value: Some(true),
                generate_preview: None,
                user_gesture: Some(true),
                await_promise: Some(true),
                throw_on_side_effect: None,
                timeout: None,
                disable_breaks: None,
                repl_mode: None,
                allow_unsafe_eval_blocked_by_csp: None,
                unique_context_id: None,
            })
            .map_err(|e| format!("{e:#}"))?;
        if let Some(d) = r.exception_details {
            return Err(d.exception.as_ref().map(remote_text).unwrap_or(d.text));
        }
        Ok(r.result.value.unwrap_or(Value::Null))
    }

    /// Evaluates `js` and returns its value as JSON (`undefined` is null); panics if it throws.
    pub fn eval_json(&self, js: &str) -> Value {
        self.try_eval_json(js).unwrap_or_else(|e| panic!("{js} threw on {}: {e}", self.url))
    }

    /// Clicks the first element matching `selector` with the mouse (scrolled into view first).
    pub fn click(&self, selector: &str) {
        let el = self
            .tab
            .find_element(selector)
            .unwrap_or_else(|e| panic!("nothing to click matches {selector:?}: {e:#}{}", self.problems_note()));
        el.click().unwrap_or_else(|e| panic!("cannot click {selector:?}: {e:#}"));
    }

    /// The rendered text (`innerText`) of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> String {
        let sel = serde_json::to_string(selector).unwrap();
        match self.eval_json(&format!("document.querySelector({sel})?.innerText ?? null")) {
            Value::String(s) => s,
            _ => panic!("nothing matches {selector:?} on {}{}", self.url, self.problems_note()),
        }
    }

    /// How many elements match `selector`.
    pub fn count(&self, selector: &str) -> usize {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval_json(&format!("document.querySelectorAll({sel}).length")).as_u64().expect("a count") as usize
    }

    /// A PNG of the viewport, written to `path` (relative: under [`artifact_dir`]); the path
    /// written is printed and returned.
    pub fn screenshot(&self, path: &Path) -> PathBuf {
        let path = if path.is_absolute() { path.to_path_buf() } else { artifact_dir().join(path) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let png = self
            .tab
            .capture_screenshot(Cdp::CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| panic!("cannot take a screenshot of {}: {e:#}", self.url));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        println!("screenshot of {} saved to {}", self.url, path.display());
        path
    }

    /// Every console error and warning, uncaught exception, browser error or warning, and network
    /// request (other than the file itself) since the page opened, in order.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    fn problems_note(&self) -> String {
        let p = self.problems();
        if p.is_empty() {
            String::new()
        } else {
            format!("; the page's problems: {p:#?}")
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.tab.close(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: Duration = Duration::from_secs(10);

    /// `name` with `html` in a fresh temp dir (kept alive by the returned guard).
    fn fixture(name: &str, html: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, html).unwrap();
        (dir, path)
    }

    /// Problems, after giving late events (a failed request) a moment to arrive.
    fn problems_within(page: &Page, want: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let p = page.problems();
            if want(&p) || start.elapsed() > SECS {
                return p;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn browser_click_changes_text_and_the_fragment_is_seen() {
        let (_d, path) = fixture(
            "click page.html",
            r#"<!doctype html><meta charset="utf-8"><title>t</title>
            <p id="out">before</p><p id="hash"></p>
            <button id="go" onclick="document.getElementById('out').textContent = 'after ' + (++window.n)">go</button>
            <ul><li>a</li><li>b</li><li>c</li></ul>
            <script>window.n = 0; document.getElementById('hash').textContent = location.hash.slice(1);
            document.body.dataset.ready = "1";</script>"#,
        );
        let browser = Browser::launch();
        let page = browser.open(&path, "trial=run-1/7");
        page.wait_for("body[data-ready='1']", SECS);
        assert!(page.url().contains("click%20page.html#trial=run-1/7"), "{}", page.url());
        assert_eq!(page.text("#out"), "before");
        // (d) the fragment reaches the page's script
        assert_eq!(page.text("#hash"), "trial=run-1/7");
        assert_eq!(page.eval_json("location.hash"), Value::from("#trial=run-1/7"));
        // (a) a real click
        page.click("#go");
        page.wait_until("document.getElementById('out').textContent === 'after 1'", SECS).expect("the click ran");
        page.click("#go");
        assert_eq!(page.text("#out"), "after 2");
        assert_eq!(page.count("li"), 3);
        assert_eq!(page.count("table"), 0);
        assert_eq!(
            page.eval_json("[...document.querySelectorAll('li')].map(l => l.textContent)"),
            serde_json::json!(["a", "b", "c"])
        );
        assert!(page.try_eval_json("nope.nope").unwrap_err().contains("nope"));
        assert_eq!(page.problems(), Vec::<String>::new(), "a clean page has no problems");
    }

    #[test]
    fn browser_reports_console_errors_and_uncaught_exceptions() {
        let (_d, errors) = fixture(
            "errors.html",
            r#"<!doctype html><p>x</p><script>console.log("fine"); console.error("boom", 42);
            console.warn("careful");</script>"#,
        );
        let (_d2, throws) = fixture(
            "throws.html",
            r#"<!doctype html><p>x</p><script>function f() { throw new TypeError("kaput"); } f();</script>
            <script>Promise.reject(new Error("unhandled"));</script>"#,
        );
        let browser = Browser::launch();
        let page = browser.open(&errors, "");
        let p = problems_within(&page, |p| p.len() >= 2);
        assert_eq!(p, ["console.error: boom 42", "console.warn: careful"], "{p:#?}");

        let page = browser.open(&throws, "");
        let p = problems_within(&page, |p| p.len() >= 2);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("uncaught exception: TypeError: kaput"), "{p:#?}");
        assert!(p[0].contains("throws.html:1:"), "{p:#?}");
        assert!(p[1].contains("unhandled"), "{p:#?}");
    }

    #[test]
    fn browser_reports_network_requests() {
        let (_d, fetches) = fixture(
            "fetch.html",
            r#"<!doctype html><p>x</p><script>fetch('https://example.com/').catch(() => {});</script>"#,
        );
        let (_d2, image) = fixture(
            "img.html",
            r#"<!doctype html><img src="http://127.0.0.1:9/x.png"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">"#,
        );
        let browser = Browser::launch();
        let page = browser.open(&fetches, "");
        let p = problems_within(&page, |p| p.iter().any(|m| m.starts_with("request failed")));
        assert!(p.iter().any(|m| m == "network request: GET https://example.com/"), "{p:#?}");
        assert!(p.iter().any(|m| m.starts_with("request failed: https://example.com/")), "{p:#?}");

        let page = browser.open(&image, "");
        let p = problems_within(&page, |p| p.iter().any(|m| m.starts_with("request failed")));
        assert!(p.iter().any(|m| m == "network request: GET http://127.0.0.1:9/x.png"), "{p:#?}");
        assert!(p.iter().any(|m| m.starts_with("request failed: http://127.0.0.1:9/x.png")), "{p:#?}");
        assert!(!p.iter().any(|m| m.contains("data:")), "a data: URL is not network: {p:#?}");
    }

    #[test]
    fn browser_screenshot_is_a_png() {
        let (_d, path) = fixture(
            "shot.html",
            r#"<!doctype html><body style="margin:0;background:#1e6ef0"><h1 style="color:white">fixbench</h1>"#,
        );
        let browser = Browser::launch();
        let page = browser.open(&path, "");
        let shot = page.screenshot(Path::new("browser-selftest.png"));
        assert!(shot.starts_with(artifact_dir()), "{}", shot.display());
        let bytes = std::fs::read(&shot).unwrap();
        let decoder = png::Decoder::new(bytes.as_slice());
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("a PNG frame");
        // the window is 1280x900; the viewport is the window less the (invisible) browser frame
        assert!(info.width == 1280 && (600..=900).contains(&info.height), "{}x{}", info.width, info.height);
        // the page's blue background, not a blank frame
        let px = &buf[..info.line_size];
        let ch = info.color_type.samples();
        let (r, g, b) = (px[ch * 640], px[ch * 640 + 1], px[ch * 640 + 2]);
        assert!(b > 200 && r < 80 && (90..140).contains(&g), "pixel {r},{g},{b}");
    }

    #[test]
    fn browser_missing_chromium_names_the_setup_script() {
        let err = find_chromium(Some("/nonexistent/chromium".into())).unwrap_err();
        assert!(err.contains("/nonexistent/chromium (FIXBENCH_CHROMIUM)"), "{err}");
        assert!(err.contains("run scripts/setup-chromium.sh"), "{err}");
    }
}
