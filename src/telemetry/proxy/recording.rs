//! A request's record: opened when the request arrives (counted for the open trial), filled in
//! from the answer as it passes to the client, and written to the trial's book when the answer
//! ends.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::abandoned::{self, Rest};
use super::forward::broke_off;
use super::{FirstRequest, Shared};
use crate::store::RequestRecord;
use crate::telemetry::capture::Capture;
use crate::telemetry::conversation::{self, Placement};

/// A request whose record is written when its answer ends. A request counted in the trial's
/// `in_flight` stops being counted exactly once: when it is recorded, or when it is dropped.
pub(super) struct Pending {
    pub(super) shared: Arc<Shared>,
    /// The trial it belongs to; `None` when no trial was collecting (then it is not counted).
    pub(super) epoch: Option<u64>,
    start: Instant,
    start_utc: DateTime<Utc>,
    method: String,
    path: String,
    stream_req: bool,
    placement: Option<Placement>,
    pub(super) status: u16,
    /// When the client hung up before the answer ended.
    pub(super) abandoned: Option<Instant>,
}

impl Pending {
    /// Reads what the request says about itself and counts it for the open trial, if any.
    pub(super) fn open(
        shared: &Arc<Shared>,
        start: Instant,
        start_utc: DateTime<Utc>,
        method: &hyper::Method,
        path: String,
        body: &Bytes,
    ) -> Pending {
        let json: Option<serde_json::Value> =
            if method == hyper::Method::POST { serde_json::from_slice(body).ok() } else { None };
        let stream_req = json.as_ref().and_then(|j| j.get("stream")).and_then(|s| s.as_bool()).unwrap_or(false);
        let units = json.as_ref().and_then(|j| conversation::units(&path, j));
        let mut pending = Pending {
            shared: shared.clone(),
            epoch: None,
            start,
            start_utc,
            method: method.to_string(),
            path,
            stream_req,
            placement: None,
            status: 0,
            abandoned: None,
        };
        let mut b = shared.book.lock().unwrap();
        if b.open {
            if b.first_request.is_none() && units.is_some() {
                b.first_request = Some(FirstRequest { path: pending.path.clone(), body: body.clone() });
            }
            pending.placement = units.map(|u| b.tracker.place(u));
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            pending.epoch = Some(b.epoch);
        }
        pending
    }

    pub(super) fn finish(mut self, capture: Capture, broke_off: Option<String>) {
        let end = Instant::now();
        let stream = capture.is_stream() || self.stream_req;
        let sse = capture.is_stream();
        let o = capture.finish();
        let error = broke_off.or_else(|| {
            (self.status >= 400).then(|| o.error.clone().unwrap_or_else(|| format!("HTTP {}", self.status)))
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut rec = RequestRecord {
            start: self.start_utc,
            offset_ms: 0.0,
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            stream,
            status: self.status,
            ttft_ms: if sse { o.first_token.map(|t| ms(t - self.start)) } else { None },
            total_ms: ms(end - self.start),
            prompt_n: o.prompt_n,
            cache_n: o.cache_n,
            prompt_ms: o.prompt_ms,
            predicted_n: o.predicted_n,
            predicted_ms: o.predicted_ms,
            reprefilled_tokens: None,
            error,
            conversation: self.placement.as_ref().map(|p| p.conversation),
            turn: self.placement.as_ref().map(|p| p.turn),
            abandoned_ms: self.abandoned.map(|t| ms(t - self.start)),
        };
        let Some(epoch) = self.epoch else {
            if let Some(sink) = &self.shared.sink {
                sink(&rec);
            }
            return;
        };
        {
            let mut b = self.shared.book.lock().unwrap();
            if b.open && b.epoch == epoch {
                if let Some(p) = &self.placement {
                    rec.reprefilled_tokens = b.tracker.finish(p, rec.prompt_n, rec.cache_n);
                }
                if let Some(t0) = b.started {
                    rec.offset_ms = ms(self.start.saturating_duration_since(t0));
                }
                if b.keep {
                    b.records.push(rec.clone());
                }
            }
        }
        if let Some(sink) = &self.shared.sink {
            sink(&rec);
        }
        self.uncount();
    }

    fn uncount(&mut self) {
        if self.epoch.take().is_some() {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.uncount();
    }
}

/// The server's answer on its way to the client, read as it passes; `None` once recorded.
pub(super) struct Recording(Option<Reading>);

struct Reading {
    body: Incoming,
    capture: Capture,
    pending: Pending,
}

impl Recording {
    pub(super) fn new(body: Incoming, capture: Capture, pending: Pending) -> Recording {
        Recording(Some(Reading { body, capture, pending }))
    }

    fn finish(&mut self, broke_off: Option<String>) {
        if let Some(r) = self.0.take() {
            r.pending.finish(r.capture, broke_off);
        }
    }
}

impl Body for Recording {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(r) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut r.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    r.capture.feed(data, Instant::now());
                }
                if r.body.is_end_stream() {
                    self.finish(None);
                }
            }
            Poll::Ready(Some(Err(e))) => self.finish(Some(broke_off(e))),
            Poll::Ready(None) => self.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().map_or(true, |r| r.body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.0.as_ref().map_or_else(|| SizeHint::with_exact(0), |r| r.body.size_hint())
    }
}

/// hyper drops the body when the client hangs up: what the server has still to send is read
/// by `abandoned`. A client that hangs up after a stream's closing event got the whole answer.
impl Drop for Recording {
    fn drop(&mut self) {
        let Some(r) = self.0.take() else { return };
        if r.body.is_end_stream() || r.capture.saw_end() {
            r.pending.finish(r.capture, None);
        } else {
            abandoned::follow(r.pending, Rest::Body(r.body, Box::new(r.capture)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::stub;
    use super::*;

    #[test]
    fn a_client_hanging_up_mid_stream_is_recorded_with_the_servers_timings() {
        let proxy = stub::proxy_to(&stub::sse_upstream(20));
        proxy.begin(true);
        let body = serde_json::json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let resp = ureq::post(&format!("{}/chat/completions", proxy.base_url())).send_json(body).unwrap();
        let mut reader = resp.into_reader();
        let mut first = [0u8; 16];
        reader.read_exact(&mut first).unwrap();
        drop(reader);
        let t = Instant::now();
        let got = proxy.end(Duration::from_secs(3));
        assert!(t.elapsed() < Duration::from_secs(2), "waits for the server, not the grace: {:?}", t.elapsed());
        assert_eq!((got.records.len(), got.unfinished), (1, 0));
        let r = &got.records[0];
        assert!(r.error.as_deref().unwrap_or("").contains("client closed"), "{r:?}");
        let gone = r.abandoned_ms.expect("marked as abandoned");
        assert!(gone > 15.0 && gone + 200.0 < r.total_ms, "{r:?}");
        assert_eq!(
            (r.status, r.prompt_n, r.predicted_n),
            (200, Some(3), Some(4)),
            "the rest of the stream was read for its timings: {r:?}"
        );
    }
}
