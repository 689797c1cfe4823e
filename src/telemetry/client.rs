//! A small blocking client for the server's own endpoints (`/health`, `/v1/models`, `/props`,
//! `/slots`, `/metrics`, slot actions). The agents' traffic goes through the proxy, never
//! through here.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::Error;

/// How long `/health` may answer 503 (model loading) before a run gives up.
pub const LOAD_WAIT: Duration = Duration::from_secs(120);
/// How long a refused connection is retried (a server that is still binding its port).
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// What one call got back: the status and body, or why there was no answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// No HTTP answer at all (refused, reset, timed out): the sentence says which.
    Unreachable(String),
}

impl Reply {
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Ok { status, .. } => Some(*status),
            Reply::Unreachable(_) => None,
        }
    }

    /// The body of a 2xx answer, else a sentence saying what came back instead.
    pub fn ok_body(&self, what: &str) -> std::result::Result<&str, String> {
        match self {
            Reply::Ok { status, body, .. } if (200..300).contains(status) => Ok(body),
            Reply::Ok { status: status @ (401 | 403), body, .. } => Err(format!(
                "{what} answered HTTP {status} ({}): the server wants an API key: set FIXBENCH_API_KEY (or \
                 LLAMA_API_KEY) to the one it expects",
                error_message(body)
            )),
            Reply::Ok { status, body, .. } => Err(format!("{what} answered HTTP {status}: {}", error_message(body))),
            Reply::Unreachable(why) => Err(format!("{what} did not answer ({why})")),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Reply::Ok { headers, .. } => {
                headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
            }
            Reply::Unreachable(_) => None,
        }
    }
}

/// The `error.message` of a llama-server error body, else the body's first 200 characters.
pub fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message").or_else(|| v.get("message")).and_then(|m| m.as_str()).map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string());
    msg.chars().take(200).collect()
}

/// The variables an API key for the server is read from, in this order: fixbench's own, then
/// the one llama-server itself reads. The key is sent, never stored.
pub const API_KEY_VARS: [&str; 2] = ["FIXBENCH_API_KEY", "LLAMA_API_KEY"];

/// The key as read at start, and the variable it came from.
static KEPT_KEY: std::sync::OnceLock<Option<(&'static str, String)>> = std::sync::OnceLock::new();

/// Keeps the API key and takes both [`API_KEY_VARS`] out of fixbench's own environment, so
/// that no agent or grader it starts inherits them: agents reach the server through the proxy,
/// which adds the key. A llama-server that a sweep starts gets `LLAMA_API_KEY` back, named
/// ([`llama_api_key`]). Called once, first thing in `main`, before any thread starts.
pub fn keep_api_key() {
    let key = read_api_key();
    for var in API_KEY_VARS {
        // The value's bytes are overwritten where they lie, in the environment block the
        // kernel shows as /proc/<pid>/environ, before the variable is removed (removing it
        // alone leaves them readable there).
        let name = std::ffi::CString::new(var).expect("no NUL in the name");
        // SAFETY: no other thread runs yet (the caller's contract); getenv's pointer is to the
        // value's own NUL-terminated bytes in the process's environment, which are writable.
        unsafe {
            let value = libc::getenv(name.as_ptr());
            if !value.is_null() {
                let len = libc::strlen(value);
                std::ptr::write_bytes(value, b'*', len);
            }
        }
        std::env::remove_var(var);
    }
    if key.is_some() {
        // The key now lives only in this process's memory: make it not dumpable, so that a
        // process of the same user (an agent run without the sandbox) cannot read it through
        // /proc/<pid>/mem or attach with ptrace. (Root can still; the sandbox keeps agents
        // out of fixbench's processes altogether.)
        // SAFETY: prctl(PR_SET_DUMPABLE) only sets a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }
    let _ = KEPT_KEY.set(key);
}

/// The server's API key from the environment ([`API_KEY_VARS`]), as kept at start.
pub fn api_key_from_env() -> Option<String> {
    kept().map(|(_, k)| k)
}

/// The key for a llama-server fixbench starts itself: the `LLAMA_API_KEY` the user set (the
/// variable llama-server reads), never `FIXBENCH_API_KEY`, which is for servers elsewhere.
pub fn llama_api_key() -> Option<String> {
    kept().filter(|(v, _)| *v == API_KEY_VARS[1]).map(|(_, k)| k)
}

fn kept() -> Option<(&'static str, String)> {
    KEPT_KEY.get().cloned().unwrap_or_else(read_api_key)
}

fn read_api_key() -> Option<(&'static str, String)> {
    API_KEY_VARS.iter().find_map(|v| std::env::var(v).ok().filter(|k| !k.trim().is_empty()).map(|k| (*v, k)))
}

/// One server, addressed by its root URL (`http://host:port`, no `/v1`).
#[derive(Clone)]
pub struct Server {
    root: String,
    agent: ureq::Agent,
    api_key: Option<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("root", &self.root).finish()
    }
}

impl Server {
    /// `url` may end in `/` or `/v1`; the API key, when the server wants one, comes from
    /// `FIXBENCH_API_KEY` or `LLAMA_API_KEY` (the variable llama-server itself reads).
    pub fn new(url: &str) -> Result<Server> {
        let root = root_url(url)?;
        let mut agent =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(3)).timeout(Duration::from_secs(30));
        if root.starts_with("https://") {
            agent = agent.tls_config(super::tls::client_config().map_err(Error::BadInput)?);
        }
        Ok(Server { root, agent: agent.build(), api_key: api_key_from_env() })
    }

    /// The key sent with every call (for the proxy, which adds it to requests that lack one).
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call(self.agent.get(&format!("{}{path}", self.root)), None)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value, timeout: Duration) -> Reply {
        let req = self.agent.post(&format!("{}{path}", self.root)).timeout(timeout);
        self.call(req, Some(body))
    }

    fn call(&self, mut req: ureq::Request, body: Option<&serde_json::Value>) -> Reply {
        if let Some(k) = &self.api_key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Reply::Unreachable(describe_transport(&t)),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        match resp.into_string() {
            Ok(body) => Reply::Ok { status, body, headers },
            Err(e) => Reply::Unreachable(format!("the answer broke off: {e}")),
        }
    }

    /// What to do when `path` answered 401 or 403.
    fn key_refused(&self, path: &str) -> String {
        match self.api_key {
            None => format!(
                "the server at {} wants an API key ({path} answered 401/403): set FIXBENCH_API_KEY (or \
                 LLAMA_API_KEY) to it; it is sent to the server, never stored",
                self.root
            ),
            Some(_) => format!(
                "the server at {} refused the API key from FIXBENCH_API_KEY or LLAMA_API_KEY ({path} answered \
                 401/403): set the key it expects",
                self.root
            ),
        }
    }

    /// Checks that the agents' endpoints take this key (or need none), from the server's
    /// answer to `GET /v1/models`: a server may leave `/health` and `/metrics` open and guard
    /// only `/v1` (vLLM, SGLang).
    pub fn check_key(&self, models: &Reply) -> Result<()> {
        match models {
            Reply::Ok { status: 401 | 403, .. } => Err(Error::Environment(self.key_refused("/v1/models")).into()),
            _ => Ok(()),
        }
    }

    /// `GET /health`, or `GET /v1/models` on a server without `/health` (404/405): the path
    /// asked and its answer.
    pub fn ready_probe(&self) -> (&'static str, Reply) {
        match self.get("/health") {
            Reply::Ok { status: 404 | 405, .. } => ("/v1/models", self.get("/v1/models")),
            reply => ("/health", reply),
        }
    }

    /// Waits until the server is ready: `/health` says ok, or, on a server without `/health`
    /// (llama-cpp-python, Ollama, remote APIs), `/v1/models` answers. 503 (loading) is waited
    /// on for up to `load_wait`, no answer at all for up to `connect_wait`.
    pub fn wait_healthy(&self, load_wait: Duration, connect_wait: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let (path, reply) = self.ready_probe();
            let waited = start.elapsed();
            let why = match &reply {
                Reply::Ok { status: 200, .. } => return Ok(()),
                Reply::Ok { status: 503, .. } if waited < load_wait => None,
                Reply::Unreachable(why) if waited < connect_wait && !why.starts_with(UNTRUSTED) => None,
                Reply::Ok { status: 503, body, .. } => Some(format!(
                    "the server at {} was still loading after {:.0} s ({}): wait for it and run again",
                    self.root,
                    waited.as_secs_f64(),
                    error_message(body)
                )),
                Reply::Ok { status: 401 | 403, .. } => Some(self.key_refused(path)),
                Reply::Ok { status, body, .. } => Some(format!(
                    "the server at {} answered {path} with HTTP {status} ({}): is that URL an OpenAI-compatible \
                     server's root?",
                    self.root,
                    error_message(body)
                )),
                Reply::Unreachable(why) if why.starts_with(UNTRUSTED) => {
                    Some(format!("the server at {} answered over HTTPS, but {why}", self.root))
                }
                Reply::Unreachable(why) => Some(format!(
                    "no server answers at {} ({why}): start one (e.g. scripts/serve.sh) or fix --server",
                    self.root
                )),
            };
            if let Some(why) = why {
                return Err(Error::Environment(why).into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// `http://host:port/v1/` → `http://host:port`.
pub fn root_url(url: &str) -> Result<String> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::BadInput(format!(
            "server URL `{url}` does not start with http:// or https://: write it like http://127.0.0.1:8080"
        ))
        .into());
    }
    let mut root = url.trim_end_matches('/');
    if let Some(r) = root.strip_suffix("/v1") {
        root = r;
    }
    let authority = root.split_once("://").map_or(root, |(_, rest)| rest).split('/').next().unwrap_or("");
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    if authority.is_empty() || authority.starts_with(':') || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(Error::BadInput(format!(
            "server URL `{url}` has no usable host and port: write it like http://127.0.0.1:8080"
        ))
        .into());
    }
    Ok(root.to_string())
}

/// The start of an [`Reply::Unreachable`] sentence for a certificate this machine does not
/// trust: no wait mends it.
const UNTRUSTED: &str = "its TLS certificate is not trusted here";

fn describe_transport(t: &ureq::Transport) -> String {
    let mut text = t.to_string();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(t);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("CaUsedAsEndEntity") {
        let detail = text.rsplit(": ").next().unwrap_or_default().chars().take(120).collect::<String>();
        let fix = if text.contains("CaUsedAsEndEntity") {
            "the server presents a CA certificate as its own (`openssl req -x509` makes one unless given \
             `-addext basicConstraints=critical,CA:FALSE`): give it a leaf certificate signed by that CA, and \
             name the CA's PEM file in SSL_CERT_FILE"
        } else if text.contains("NotValidForName") || text.contains("not valid for name") {
            "the certificate is not for the host in --server: use the name it was issued for"
        } else {
            "if your own CA signed it, name that CA's PEM file in SSL_CERT_FILE"
        };
        return format!("{UNTRUSTED} ({detail}): {fix}");
    }
    match t.kind() {
        ureq::ErrorKind::ConnectionFailed if text.contains("refused") => "connection refused".into(),
        ureq::ErrorKind::ConnectionFailed => "connection failed".into(),
        ureq::ErrorKind::Dns => "host name not found".into(),
        ureq::ErrorKind::Io if text.contains("timed out") => "timed out".into(),
        _ => text.chars().take(160).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_url_strips_v1_and_slashes() {
        assert_eq!(root_url("http://127.0.0.1:8080/v1/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(root_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(root_url("https://h:1").unwrap(), "https://h:1");
        assert!(root_url("127.0.0.1:8080").is_err());
        assert!(root_url("http://127.0.0.1:notaport").unwrap_err().to_string().contains("host and port"));
        assert!(root_url("http://:8080").is_err() && root_url("http://h:99999").is_err());
        assert_eq!(root_url("http://[::1]:8080/v1").unwrap(), "http://[::1]:8080");
        assert_eq!(root_url("http://localhost").unwrap(), "http://localhost");
    }

    #[test]
    fn error_message_reads_llama_errors() {
        let body = r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#;
        assert_eq!(error_message(body), "Loading model");
        assert_eq!(error_message("plain text\n"), "plain text");
    }

    #[test]
    fn unreachable_server_is_an_environment_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = Server::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = s.wait_healthy(Duration::from_secs(1), Duration::from_millis(300)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no server answers") && msg.contains("refused"), "{msg}");
        assert_eq!(crate::error::exit_code_for(&err), crate::exit_codes::ENVIRONMENT);
    }
}
