//! The server's answer to one request, awaited on a task of its own, and the sentences a
//! record gives when there was none or it broke off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::Response;

use super::Shared;

pub(super) type Answered = Result<Response<Incoming>, String>;

/// The server's answer, awaited on a task of its own so that it outlives a client that hangs
/// up; dropping it cancels the request (the server sees the connection close).
pub(super) struct Answer(tokio::task::JoinHandle<Answered>);

impl Answer {
    pub(super) fn spawn(send: impl Future<Output = Answered> + Send + 'static) -> Answer {
        Answer(tokio::spawn(send))
    }
}

impl Future for Answer {
    type Output = Answered;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answered> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or_else(|e| Err(format!("the request was lost: {e}"))))
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn no_answer(shared: &Shared, why: &str) -> String {
    format!("fixbench proxy: the server at {} did not answer: {why}", shared.upstream)
}

/// Why a request's record ends early: the server's answer broke off with `e`.
pub(super) fn broke_off(e: &hyper::Error) -> String {
    format!("the server broke off its answer: {}", error_chain(e))
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// An error and its causes, each said once.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}
