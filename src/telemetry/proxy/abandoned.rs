//! A request whose client hung up before the answer ended (an agent killed at its timeout).
//! The rest of the answer is read on a task of its own, for the timings the server sends at
//! the end, until the answer ends or the trial does (`Proxy::end` then cuts it short, and the
//! closed connection tells the server to stop). Either way the request is recorded, with
//! `abandoned_ms` saying when the client left.

use std::sync::atomic::Ordering;
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::pending::Pending;
use super::reply::{broke_off, content_type, no_answer, Answer};
use crate::telemetry::capture::Capture;

const CLIENT_GONE: &str = "the client closed the connection before the answer ended";
const READ_TO_END: &str = "the rest of the answer was read for its timings";
const CUT_SHORT: &str = "the server had not finished when fixbench stopped waiting, so the request was cancelled";

/// What is left of an answer when its client hangs up.
pub(super) enum Rest {
    /// The server has not answered yet.
    Answer(Answer),
    /// The server's body, read up to here.
    Body(Incoming, Box<Capture>),
}

/// Reads the rest of the answer in the background, then records the request.
pub(super) fn follow(mut pending: Pending, rest: Rest) {
    pending.abandoned = Some(Instant::now());
    let (Some(epoch), Ok(rt)) = (pending.epoch, tokio::runtime::Handle::try_current()) else {
        // No trial waits for it, or the proxy is stopping.
        let capture = match rest {
            Rest::Body(_, c) => *c,
            Rest::Answer(_) => Capture::new(None),
        };
        return pending.finish(capture, Some(format!("{CLIENT_GONE}; {CUT_SHORT}")));
    };
    pending.shared.abandoned.fetch_add(1, Ordering::SeqCst);
    rt.spawn(read_then_record(pending, rest, epoch));
}

async fn read_then_record(mut pending: Pending, rest: Rest, epoch: u64) {
    let shared = pending.shared.clone();
    let mut closing = shared.closing.subscribe();
    let mut capture = None;
    let outcome = tokio::select! {
        read = read_rest(&mut pending, &mut capture, rest) => read,
        _ = closing.wait_for(|&e| e >= epoch) => Err(CUT_SHORT.to_string()),
    };
    let why = outcome.err().unwrap_or_else(|| READ_TO_END.to_string());
    pending.finish(capture.unwrap_or_else(|| Capture::new(None)), Some(format!("{CLIENT_GONE}; {why}")));
    shared.abandoned.fetch_sub(1, Ordering::SeqCst);
}

async fn read_rest(pending: &mut Pending, capture: &mut Option<Capture>, rest: Rest) -> Result<(), String> {
    let mut body = match rest {
        Rest::Body(body, c) => {
            *capture = Some(*c);
            body
        }
        Rest::Answer(answer) => match answer.await {
            Ok(resp) => {
                pending.status = resp.status().as_u16();
                pending.answered = Some(Instant::now());
                *capture = Some(Capture::new(content_type(resp.headers())));
                resp.into_body()
            }
            Err(why) => {
                pending.status = hyper::StatusCode::BAD_GATEWAY.as_u16();
                return Err(no_answer(&pending.shared, &why));
            }
        },
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| broke_off(&e))?;
        if let (Some(data), Some(c)) = (frame.data_ref(), capture.as_mut()) {
            c.feed(data, Instant::now());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::stub;

    #[test]
    fn a_client_hanging_up_before_a_non_streamed_answer_is_recorded_with_its_timings() {
        let proxy = stub::proxy_to(&stub::json_upstream(Duration::from_millis(400)));
        proxy.begin(true);
        stub::hang_up_after(&proxy, Duration::from_millis(100));
        let t = Instant::now();
        let got = proxy.end(Duration::from_secs(3));
        assert!(t.elapsed() < Duration::from_secs(2), "waits for the server, not the grace: {:?}", t.elapsed());
        assert_eq!((got.records.len(), got.unfinished), (1, 0), "{got:?}");
        let r = &got.records[0];
        let gone = r.abandoned_ms.expect("marked as abandoned");
        assert!(gone >= 90.0 && gone + 200.0 < r.total_ms, "{r:?}");
        assert_eq!((r.status, r.stream, r.prompt_n, r.predicted_n), (200, false, Some(3), Some(4)));
        assert_eq!((r.conversation, r.turn), (Some(0), Some(0)));
        let e = r.error.as_deref().unwrap();
        assert!(e.contains("client closed") && e.contains("read for its timings"), "{e}");
    }

    #[test]
    fn an_abandoned_request_the_server_does_not_finish_in_time_is_cut_short() {
        let proxy = stub::proxy_to(&stub::json_upstream(Duration::from_secs(5)));
        proxy.begin(true);
        stub::hang_up_after(&proxy, Duration::from_millis(100));
        let got = proxy.end(Duration::from_millis(300));
        assert_eq!((got.records.len(), got.unfinished), (1, 0), "{got:?}");
        let r = &got.records[0];
        assert!(r.abandoned_ms.is_some(), "{r:?}");
        assert_eq!((r.status, r.prompt_n), (0, None), "unknown, not zero: {r:?}");
        assert!(r.error.as_deref().unwrap().contains("cancelled"), "{r:?}");
    }
}
