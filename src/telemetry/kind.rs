//! Which server answers: llama-server, vLLM, SGLang, Ollama, llama-cpp-python or another
//! OpenAI-compatible one, told by what it serves (`docs/servers.md` cites each name).
//!
//! One `GET /v1/models` gives a hint (its `Server` header, `owned_by`, the model entries'
//! shape); one probe of that kind's own endpoint confirms it, since a proxy in front of a
//! server may relay `/v1/models` unchanged. A hint that is not confirmed is `other`.

use serde_json::Value;

pub use crate::model::ServerKind;

use super::client::{Reply, Server};

/// The kind and what told it, with the server's version where it says one.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub kind: ServerKind,
    pub evidence: String,
    pub version: Option<String>,
    /// The `/v1/models` answer, when there was one: the served model's name.
    pub models: Option<Value>,
}

/// Asks the server what it is, given its answer to `GET /v1/models` (fetched once by the
/// caller, which also checks the API key with it).
pub fn detect(server: &Server, models: &Reply) -> Detected {
    detect_with(&|path: &str| if path == "/v1/models" { models.clone() } else { server.get(path) })
}

/// A kind named with `--server-kind`: nothing is probed; the `/v1/models` answer still names
/// the served model.
pub fn named(kind: ServerKind, models: &Reply) -> Detected {
    Detected { kind, evidence: "named with --server-kind".into(), version: None, models: json_body(models) }
}

/// [`detect`] over any way of getting an answer for a path (unit tests give recorded ones).
pub fn detect_with(get: &dyn Fn(&str) -> Reply) -> Detected {
    let models_reply = get("/v1/models");
    let models = json_body(&models_reply);
    let header = models_reply.header("server").map(str::to_string);
    let done = |kind, evidence: String, version| Detected { kind, evidence, version, models: models.clone() };
    if header.as_deref() == Some("llama.cpp") {
        return done(ServerKind::LlamaServer, "`Server: llama.cpp` on /v1/models".into(), None);
    }
    let first = models.as_ref().and_then(|m| m.pointer("/data/0")).cloned();
    let owned_by = first.as_ref().and_then(|f| f.get("owned_by")).and_then(Value::as_str).map(str::to_string);
    match (owned_by.as_deref(), &first) {
        (Some("llamacpp"), _) => return confirm_llama(get, "owned_by \"llamacpp\" in /v1/models", &done),
        (_, Some(f)) if f.get("meta").is_some_and(Value::is_object) && f.get("aliases").is_some() => {
            return confirm_llama(get, "a `meta` object in /v1/models", &done)
        }
        (Some("vllm"), _) => return confirm_vllm(get, "owned_by \"vllm\" in /v1/models", &done),
        (Some("sglang"), _) => return confirm_sglang(get, "owned_by \"sglang\" in /v1/models", &done),
        (Some("me"), Some(f)) if f.get("permissions").is_some() => {
            // llama-cpp-python has no endpoint of its own to confirm with; this shape (the
            // plural `permissions`, no `created`) is its own.
            return done(
                ServerKind::LlamaCppPython,
                "owned_by \"me\" with `permissions` in /v1/models (llama-cpp-python's server)".into(),
                None,
            );
        }
        _ => {}
    }
    // Ollama: `/api/version`, which SGLang's Ollama emulation does not have.
    if header.is_none() {
        if let Some(v) = version_of(&get("/api/version")) {
            let why = match &owned_by {
                Some(o) => format!("/api/version answered (owned_by \"{o}\" in /v1/models)"),
                None => "/api/version answered".into(),
            };
            return done(ServerKind::Ollama, why, Some(v));
        }
    }
    if models.is_none() {
        // No `/v1/models` (no key, or not served): the public `/health` may still tell.
        let health = get("/health");
        if health.header("server") == Some("llama.cpp") {
            return done(ServerKind::LlamaServer, "`Server: llama.cpp` on /health".into(), None);
        }
        if matches!(&health, Reply::Ok { status: 200, body, .. } if body.trim().is_empty()) {
            if let Some(v) = version_of(&get("/version")) {
                return done(ServerKind::Vllm, "an empty /health and /version answered".into(), Some(v));
            }
        }
    }
    let mut evidence = String::from("no kind's own endpoint answered");
    if let Some(o) = &owned_by {
        evidence.push_str(&format!("; owned_by \"{o}\" in /v1/models"));
    }
    if let Some(h) = &header {
        evidence.push_str(&format!("; `Server: {h}`"));
    }
    if models.is_none() {
        evidence.push_str(&format!("; /v1/models: {}", models_reply.ok_body("it").err().unwrap_or_default()));
    }
    done(ServerKind::Other, evidence, None)
}

type Done<'a> = dyn Fn(ServerKind, String, Option<String>) -> Detected + 'a;

fn confirm_llama(get: &dyn Fn(&str) -> Reply, hint: &str, done: &Done<'_>) -> Detected {
    match json_body(&get("/props")) {
        Some(p) if p.get("default_generation_settings").is_some() || p.get("build_info").is_some() => {
            let version = p.get("build_info").and_then(Value::as_str).map(str::to_string);
            done(ServerKind::LlamaServer, format!("{hint}, confirmed by /props"), version)
        }
        _ => unconfirmed(hint, "/props", done),
    }
}

fn confirm_vllm(get: &dyn Fn(&str) -> Reply, hint: &str, done: &Done<'_>) -> Detected {
    match version_of(&get("/version")) {
        Some(v) => done(ServerKind::Vllm, format!("{hint}, confirmed by /version"), Some(v)),
        None => unconfirmed(hint, "/version", done),
    }
}

fn confirm_sglang(get: &dyn Fn(&str) -> Reply, hint: &str, done: &Done<'_>) -> Detected {
    for path in ["/server_info", "/get_server_info"] {
        if let Some(v) = version_of(&get(path)) {
            return done(ServerKind::Sglang, format!("{hint}, confirmed by {path}"), Some(v));
        }
    }
    unconfirmed(hint, "/server_info", done)
}

/// A hint its own endpoint did not confirm: something relays that server (a gateway), and
/// only what the answers themselves say can be read.
fn unconfirmed(hint: &str, probe: &str, done: &Done<'_>) -> Detected {
    done(
        ServerKind::Other,
        format!("{hint}, but {probe} did not answer as that server's does (a gateway in front?)"),
        None,
    )
}

fn json_body(reply: &Reply) -> Option<Value> {
    match reply {
        Reply::Ok { status, body, .. } if (200..300).contains(status) => {
            serde_json::from_str::<Value>(body).ok().filter(Value::is_object)
        }
        _ => None,
    }
}

/// `{"version": "0.32.0", …}` → `0.32.0`.
fn version_of(reply: &Reply) -> Option<String> {
    json_body(reply)?.get("version").and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fixture(kind: &str, file: &str) -> String {
        let p = format!("{}/tests/integration/fixtures/servers/{kind}/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn ok(body: &str, server: Option<&str>) -> Reply {
        let headers = server.map(|s| vec![("server".to_string(), s.to_string())]).unwrap_or_default();
        Reply::Ok { status: 200, body: body.to_string(), headers }
    }

    fn not_found() -> Reply {
        Reply::Ok { status: 404, body: r#"{"detail":"Not Found"}"#.into(), headers: vec![] }
    }

    fn detect_on(answers: BTreeMap<&str, Reply>) -> Detected {
        detect_with(&|path: &str| answers.get(path).cloned().unwrap_or_else(not_found))
    }

    #[test]
    fn each_kind_is_told_by_its_recorded_answers() {
        let llama = detect_on(BTreeMap::from([(
            "/v1/models",
            ok(&fixture("llama-server", "v1_models.json"), Some("llama.cpp")),
        )]));
        assert_eq!(llama.kind, ServerKind::LlamaServer, "{llama:?}");

        let vllm = detect_on(BTreeMap::from([
            ("/v1/models", ok(&fixture("vllm", "v1_models.json"), Some("uvicorn"))),
            ("/version", ok(&fixture("vllm", "version.json"), Some("uvicorn"))),
        ]));
        assert_eq!((vllm.kind, vllm.version.as_deref()), (ServerKind::Vllm, Some("0.32.0")), "{vllm:?}");

        let sglang = detect_on(BTreeMap::from([
            ("/v1/models", ok(&fixture("sglang", "v1_models.json"), Some("uvicorn"))),
            ("/get_server_info", ok(&fixture("sglang", "server_info.partial.json"), Some("uvicorn"))),
        ]));
        assert_eq!(sglang.kind, ServerKind::Sglang, "{sglang:?}");
        assert!(sglang.evidence.contains("/get_server_info") && sglang.version.is_some(), "{sglang:?}");

        let ollama = detect_on(BTreeMap::from([
            ("/v1/models", ok(&fixture("ollama", "v1_models.json"), None)),
            ("/api/version", ok(&fixture("ollama", "api_version.json"), None)),
        ]));
        assert_eq!(ollama.kind, ServerKind::Ollama, "{ollama:?}");
        // Ollama with no model pulled: `"data": null`, still Ollama.
        let bare = detect_on(BTreeMap::from([
            ("/v1/models", ok(&fixture("ollama", "v1_models.empty.json"), None)),
            ("/api/version", ok(&fixture("ollama", "api_version.json"), None)),
        ]));
        assert_eq!(bare.kind, ServerKind::Ollama);

        let lcp = detect_on(BTreeMap::from([(
            "/v1/models",
            ok(&fixture("llama-cpp-python", "v1_models.json"), Some("uvicorn")),
        )]));
        assert_eq!(lcp.kind, ServerKind::LlamaCppPython, "{lcp:?}");
    }

    #[test]
    fn a_hint_its_own_endpoint_does_not_confirm_is_other() {
        // A gateway relaying vLLM's /v1/models: no /version behind it.
        let relayed = detect_on(BTreeMap::from([("/v1/models", ok(&fixture("vllm", "v1_models.json"), None))]));
        assert_eq!(relayed.kind, ServerKind::Other);
        assert!(relayed.evidence.contains("owned_by \"vllm\"") && relayed.evidence.contains("gateway"), "{relayed:?}");
        // SGLang imitates Ollama's /api/tags and `/`, never /api/version.
        let sglang = detect_on(BTreeMap::from([
            ("/v1/models", ok(&fixture("sglang", "v1_models.json"), Some("uvicorn"))),
            ("/api/tags", ok(&fixture("sglang", "api_tags.json"), Some("uvicorn"))),
        ]));
        assert_eq!(sglang.kind, ServerKind::Other, "unconfirmed: {sglang:?}");
        let openai = detect_on(BTreeMap::from([(
            "/v1/models",
            ok(r#"{"object":"list","data":[{"id":"gpt-x","object":"model","owned_by":"openai"}]}"#, None),
        )]));
        assert_eq!(openai.kind, ServerKind::Other);
        assert!(openai.evidence.contains("owned_by \"openai\""), "{openai:?}");
    }

    #[test]
    fn without_v1_models_the_public_health_tells_llama_server_and_vllm() {
        let unauthorized = Reply::Ok { status: 401, body: r#"{"error":"Unauthorized"}"#.into(), headers: vec![] };
        let vllm = detect_on(BTreeMap::from([
            ("/v1/models", unauthorized.clone()),
            ("/health", ok("", Some("uvicorn"))),
            ("/version", ok(r#"{"version":"0.32.0"}"#, Some("uvicorn"))),
        ]));
        assert_eq!(vllm.kind, ServerKind::Vllm, "{vllm:?}");
        let llama = detect_on(BTreeMap::from([
            ("/v1/models", unauthorized.clone()),
            ("/health", ok(r#"{"status":"ok"}"#, Some("llama.cpp"))),
        ]));
        assert_eq!(llama.kind, ServerKind::LlamaServer);
        let nothing = detect_on(BTreeMap::from([("/v1/models", unauthorized)]));
        assert_eq!(nothing.kind, ServerKind::Other);
        assert!(nothing.evidence.contains("401"), "{nothing:?}");
    }
}
