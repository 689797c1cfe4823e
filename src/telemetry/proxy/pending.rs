//! A request's record: opened when the request arrives (counted for the open trial), filled in
//! from the answer, and written to the trial's book when the answer ends or is given up.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{FirstRequest, Shared};
use crate::store::{RequestRecord, TranscriptEntry};
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
    /// For the transcript: the prompt items shared with the previous turn, and the ones after.
    prompt: Option<(usize, Vec<serde_json::Value>)>,
    /// Whether the open trial records its transcript (its answer is then read as well).
    pub(super) transcript: bool,
    pub(super) status: u16,
    /// When the server's response headers arrived. llama-server sends a stream's only once a
    /// slot has taken the task, so for a stream this ends the wait for a slot.
    pub(super) answered: Option<Instant>,
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
        let items = json.as_ref().and_then(|j| conversation::items(&path, j));
        let mut pending = Pending {
            shared: shared.clone(),
            epoch: None,
            start,
            start_utc,
            method: method.to_string(),
            path,
            stream_req,
            placement: None,
            prompt: None,
            transcript: false,
            status: 0,
            answered: None,
            abandoned: None,
        };
        let mut b = shared.book.lock().unwrap();
        if b.open {
            if b.first_request.is_none() && items.is_some() {
                b.first_request = Some(FirstRequest { path: pending.path.clone(), body: body.clone() });
            }
            if let Some(items) = items {
                let placement = b.tracker.place(conversation::units_of(&items));
                if b.transcript.is_some() {
                    let new = items[placement.shared.min(items.len())..].iter().map(|i| i.to_value()).collect();
                    pending.prompt = Some((placement.shared, new));
                    pending.transcript = true;
                }
                pending.placement = Some(placement);
            }
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            pending.epoch = Some(b.epoch);
        }
        pending
    }

    pub(super) fn finish(mut self, capture: Capture, broke_off: Option<String>) {
        let end = Instant::now();
        let stream = capture.is_stream() || self.stream_req;
        let sse = capture.is_stream();
        let mut o = capture.finish();
        let error = broke_off.or_else(|| {
            (self.status >= 400).then(|| o.error.clone().unwrap_or_else(|| format!("HTTP {}", self.status)))
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let total_ms = ms(end - self.start);
        // A plain answer's headers come with its body: its server-side time to the first token
        // is all but the decode, and its wait for a slot what prefill and decode leave over.
        let ttft_ms = if sse {
            o.first_token.map(|t| ms(t - self.start))
        } else {
            o.predicted_ms.map(|d| (total_ms - d).max(0.0))
        };
        let answered_ok = (200..400).contains(&self.status);
        let queue_ms = if !answered_ok {
            None
        } else if sse && self.shared.inject.llama_server {
            self.answered.map(|t| ms(t.saturating_duration_since(self.start)))
        } else if sse {
            None
        } else {
            o.prompt_ms.zip(o.predicted_ms).map(|(p, d)| (total_ms - p - d).max(0.0))
        };
        let mut rec = RequestRecord {
            start: self.start_utc,
            offset_ms: 0.0,
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            stream,
            status: self.status,
            ttft_ms,
            total_ms,
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
            slot: o.slot,
            queue_ms,
            last_token_ms: if sse { o.last_token.map(|t| ms(t - self.start)) } else { None },
            token_events: (sse && o.token_events > 0).then_some(o.token_events),
            load_ms: o.load_ms,
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
                if let (Some(book), Some((kept, new))) = (b.transcript.as_mut(), self.prompt.take()) {
                    let answer = o.answer.take().unwrap_or_default();
                    book.push(&TranscriptEntry { request: rec.clone(), kept, new, answer });
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
