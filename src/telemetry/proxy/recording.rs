//! The server's answer on its way to the client, read as it passes so that the request's
//! record is filled in from it and written when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::abandoned::{self, Rest};
use super::pending::Pending;
use super::reply::broke_off;
use crate::telemetry::capture::Capture;

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
    use std::time::{Duration, Instant};

    use super::super::stub;

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
