//! What the doctor looks at: the server's `/props`, `/slots`, `/metrics` and slot actions, a
//! stored run, and whether the agent sandbox starts on this machine. Gathered once, then judged
//! by `findings` as plain data.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use crate::model::ServerKind;
use crate::store::RunRecord;
use crate::telemetry::client::{Reply, Server};
use crate::telemetry::{kind, metrics};

/// An endpoint's answer, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint<T> {
    Ok(T),
    /// 501: turned off by a server flag.
    Off,
    Failed(String),
}

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub url: Option<String>,
    /// Why the server could not be read, when it could not.
    pub unreachable: Option<String>,
    pub props: Option<Value>,
    pub slots: Endpoint<Value>,
    pub metrics: Endpoint<BTreeMap<String, f64>>,
    /// The server's kind when it is not llama-server (whose checks then do not apply); `None`
    /// for llama-server or when no server was read.
    pub other_kind: Option<kind::Detected>,
    /// Whether slot actions work (`--slot-save-path`); `None` when not probed.
    pub slot_actions: Option<bool>,
    pub run: Option<RunRecord>,
    /// Whether bubblewrap starts the agent sandbox here: the namespace flags that work, or why
    /// it cannot; `None` when not probed.
    pub sandbox: Option<std::result::Result<Vec<&'static str>, String>>,
}

impl Evidence {
    /// Evidence of `run` alone: no server read, the sandbox not probed.
    pub fn of_run(run: Option<RunRecord>) -> Evidence {
        Evidence {
            url: None,
            unreachable: None,
            props: None,
            slots: Endpoint::Failed("not read".into()),
            metrics: Endpoint::Failed("not read".into()),
            other_kind: None,
            slot_actions: None,
            run,
            sandbox: None,
        }
    }

    pub fn gather(url: Option<&str>, run: Option<RunRecord>) -> Result<Evidence> {
        let mut ev = Evidence {
            url: url.map(str::to_string),
            sandbox: Some(crate::sandbox::available()),
            ..Evidence::of_run(run)
        };
        let Some(url) = url else { return Ok(ev) };
        let server = Server::new(url)?;
        ev.url = Some(server.root().to_string());
        let models = server.get("/v1/models");
        if let Err(why) = server.check_key(&models) {
            ev.unreachable = Some(why.to_string());
            return Ok(ev);
        }
        let props = server.get("/props");
        match props.ok_body("/props") {
            Ok(body) => ev.props = serde_json::from_str(body).ok(),
            Err(why) => {
                // Not llama-server: which server it is, if it answers at all.
                let detected = kind::detect(&server, &models);
                if detected.kind != ServerKind::Other || detected.models.is_some() {
                    ev.other_kind = Some(detected);
                } else {
                    ev.unreachable = Some(why);
                }
                return Ok(ev);
            }
        }
        ev.slots = endpoint(server.get("/slots"), "/slots", |b| serde_json::from_str(b).map_err(|e| e.to_string()));
        ev.metrics = endpoint(server.get("/metrics"), "/metrics", |b| {
            Ok(metrics::parse(b)
                .into_iter()
                .map(|(k, v)| (k.strip_prefix("llamacpp:").unwrap_or(&k).to_string(), v))
                .collect())
        });
        // An unknown action is refused before anything is done; 501 means no --slot-save-path.
        let probe = server.post_json(
            "/slots/0?action=fixbench-probe",
            &serde_json::json!({}),
            std::time::Duration::from_secs(5),
        );
        ev.slot_actions = probe.status().map(|s| s != 501);
        Ok(ev)
    }
}

fn endpoint<T>(reply: Reply, what: &str, parse: impl Fn(&str) -> Result<T, String>) -> Endpoint<T> {
    if reply.status() == Some(501) {
        return Endpoint::Off;
    }
    match reply.ok_body(what) {
        Ok(body) => match parse(body) {
            Ok(v) => Endpoint::Ok(v),
            Err(e) => Endpoint::Failed(format!("{what} answered something unreadable: {e}")),
        },
        Err(why) => Endpoint::Failed(why),
    }
}
