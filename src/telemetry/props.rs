//! What the server says about itself: `/props` and `/slots` turned into a `ServerInfo`, and the
//! model and quant read from the model file's name.

use sha2::{Digest, Sha256};

use crate::store::ServerInfo;

use super::client::{Reply, Server};

/// Builds the run's `ServerInfo` from `/props` (required) and `/slots` (optional: `--no-slots`
/// turns it off). The model file's size and hash are added by `fingerprint`.
pub fn read(server: &Server) -> Result<ServerInfo, String> {
    let props_reply = server.get("/props");
    let props: serde_json::Value = serde_json::from_str(props_reply.ok_body("/props")?)
        .map_err(|e| format!("/props did not answer JSON ({e}): is this a llama-server?"))?;
    let slots = match server.get("/slots") {
        Reply::Ok { status: 200, body, .. } => serde_json::from_str(&body).ok().map(strip_slot_text),
        _ => None,
    };
    Ok(from_json(server.root(), props, slots))
}

/// The run's `ServerInfo` for a server that is not llama-server: its kind, version and the
/// model it serves (`/v1/models`: the first entry's id, or vLLM's `root`, the model's path).
pub fn from_detected(url: &str, detected: &super::kind::Detected) -> ServerInfo {
    let first = detected.models.as_ref().and_then(|m| m.pointer("/data/0"));
    let s = |k: &str| first.and_then(|f| f.get(k)).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let id = s("id").map(str::to_string);
    let (model, quant) = s("root").or(id.as_deref()).map(parse_model_file).unwrap_or((None, None));
    ServerInfo {
        url: url.to_string(),
        kind: Some(detected.kind),
        kind_evidence: Some(detected.evidence.clone()),
        version: detected.version.clone(),
        model_alias: id,
        model,
        quant,
        n_ctx_per_slot: first.and_then(|f| f.get("max_model_len")).and_then(|v| v.as_u64()),
        ..Default::default()
    }
}

pub fn from_json(url: &str, mut props: serde_json::Value, slots: Option<serde_json::Value>) -> ServerInfo {
    let s = |p: &str| props.pointer(p).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let model_path = s("/model_path");
    let (model, quant) = model_path.as_deref().map(parse_model_file).unwrap_or((None, None));
    let chat_template_sha256 = s("/chat_template").map(|t| hex::encode(Sha256::digest(t.as_bytes())));
    let info = ServerInfo {
        url: url.to_string(),
        model_alias: s("/model_alias"),
        model,
        quant,
        total_slots: props.get("total_slots").and_then(|v| v.as_u64()).map(|n| n as u32),
        n_ctx_per_slot: props.pointer("/default_generation_settings/n_ctx").and_then(|v| v.as_u64()),
        build_info: s("/build_info"),
        chat_template_sha256,
        model_path,
        ..Default::default()
    };
    // The template is kept as its hash: it is long and the same on every run.
    if let Some(obj) = props.as_object_mut() {
        obj.remove("chat_template");
    }
    ServerInfo { props: Some(props), slots, ..info }
}

/// With `LLAMA_SERVER_SLOTS_DEBUG` set, `/slots` carries every prompt and reply in full:
/// those stay out of the run record.
fn strip_slot_text(mut slots: serde_json::Value) -> serde_json::Value {
    if let Some(arr) = slots.as_array_mut() {
        for slot in arr {
            if let Some(obj) = slot.as_object_mut() {
                obj.remove("prompt");
                obj.remove("generated");
            }
        }
    }
    slots
}

/// `…/Qwen3.6-35B-A3B-UD-IQ4_XS.gguf` → (`Qwen3.6-35B-A3B`, `UD-IQ4_XS`). A name that does not
/// end in a known quant gives the whole stem as the model and no quant.
pub fn parse_model_file(path: &str) -> (Option<String>, Option<String>) {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let mut stem = file.strip_suffix(".gguf").or_else(|| file.strip_suffix(".GGUF")).unwrap_or(file);
    stem = strip_split_suffix(stem);
    if stem.is_empty() {
        return (None, None);
    }
    for (i, c) in stem.char_indices() {
        if (c == '-' || c == '.' || c == '_') && i > 0 && is_quant(&stem[i + 1..]) {
            return (Some(stem[..i].to_string()), Some(stem[i + 1..].to_string()));
        }
    }
    (Some(stem.to_string()), None)
}

/// `name-00001-of-00003` → `name`.
fn strip_split_suffix(stem: &str) -> &str {
    let b = stem.as_bytes();
    let n = "-00001-of-00003".len();
    if b.len() > n {
        let tail = &stem[stem.len() - n..];
        let digits = |s: &str| s.len() == 5 && s.bytes().all(|c| c.is_ascii_digit());
        if tail.starts_with('-') && digits(&tail[1..6]) && &tail[6..10] == "-of-" && digits(&tail[10..]) {
            return &stem[..stem.len() - n];
        }
    }
    stem
}

/// `Q4_K_M`, `IQ4_XS`, `UD-Q2_K_XL`, `Q8_0`, `F16`, `BF16`, `MXFP4_MOE`, `TQ1_0`…
pub fn is_quant(s: &str) -> bool {
    let up = s.to_ascii_uppercase();
    let core = up.strip_prefix("UD-").unwrap_or(&up);
    if matches!(core, "F16" | "BF16" | "F32" | "FP16" | "FP32" | "MXFP4" | "MXFP4_MOE") {
        return true;
    }
    let rest = core.strip_prefix("IQ").or_else(|| core.strip_prefix("TQ")).or_else(|| core.strip_prefix('Q'));
    let Some(rest) = rest else { return false };
    let mut parts = rest.split('_');
    let bits = parts.next().unwrap_or("");
    if bits.len() != 1 || !bits.as_bytes()[0].is_ascii_digit() {
        return false;
    }
    parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()) && p.len() <= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(p: &str) -> (Option<String>, Option<String>) {
        parse_model_file(p)
    }

    #[test]
    fn model_and_quant_from_usual_file_names() {
        let cases = [
            ("/m/Qwen3.6-35B-A3B-UD-IQ4_XS.gguf", "Qwen3.6-35B-A3B", Some("UD-IQ4_XS")),
            ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct", Some("Q4_1")),
            ("Qwen3-8B-Q4_K_M.gguf", "Qwen3-8B", Some("Q4_K_M")),
            ("Meta-Llama-3.1-8B-Instruct-Q8_0.gguf", "Meta-Llama-3.1-8B-Instruct", Some("Q8_0")),
            ("gpt-oss-20b-MXFP4.gguf", "gpt-oss-20b", Some("MXFP4")),
            ("model-bf16.gguf", "model", Some("bf16")),
            ("GLM-4.5-Air-UD-Q2_K_XL-00001-of-00002.gguf", "GLM-4.5-Air", Some("UD-Q2_K_XL")),
            ("my-finetune.gguf", "my-finetune", None),
        ];
        for (path, model, quant) in cases {
            assert_eq!(mq(path), (Some(model.to_string()), quant.map(str::to_string)), "{path}");
        }
    }

    #[test]
    fn quant_words() {
        for q in ["Q4_K_M", "IQ2_XXS", "q5_k_s", "TQ1_0", "UD-Q4_K_XL", "Q4_0_4_4", "F16"] {
            assert!(is_quant(q), "{q}");
        }
        for q in ["Instruct", "35B-A3B", "Q", "QX_1", "A3B-UD-IQ4_XS", "Q4_K_M-extra-words"] {
            assert!(!is_quant(q), "{q}");
        }
    }

    #[test]
    fn props_become_server_info() {
        let props = serde_json::json!({
            "default_generation_settings": {"n_ctx": 4096, "params": {}},
            "total_slots": 2,
            "model_alias": "smol",
            "model_path": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "chat_template": "{{ messages }}",
            "build_info": "b1-0c1e570",
        });
        let slots = serde_json::json!([{"id": 0, "n_ctx": 4096, "prompt": "secret", "generated": "x"}]);
        let info = from_json("http://127.0.0.1:1", props, Some(strip_slot_text(slots)));
        assert_eq!(info.total_slots, Some(2));
        assert_eq!(info.n_ctx_per_slot, Some(4096));
        assert_eq!(info.model.as_deref(), Some("SmolLM2-135M-Instruct"));
        assert_eq!(info.quant.as_deref(), Some("Q4_1"));
        assert_eq!(info.build_info.as_deref(), Some("b1-0c1e570"));
        assert_eq!(info.chat_template_sha256.as_deref().map(str::len), Some(64));
        assert!(info.props.unwrap().get("chat_template").is_none());
        assert!(info.slots.unwrap()[0].get("prompt").is_none());
    }
}
