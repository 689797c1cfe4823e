//! One trial's requests on a time axis: a row per request (queue wait, prefill, decode), and
//! on top the agent's own time between them. Where a long wait sits shows at a glance.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, Mark};
use super::{pe, Chart};
use crate::error::Error;
use crate::store::{RunRecord, TrialRecord};

pub const QUEUE: RGBColor = RGBColor(0xb0, 0xb0, 0xb0);
pub const PREFILL: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub const DECODE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub const OTHER: RGBColor = RGBColor(0xdc, 0xdc, 0xdc);
pub const AGENT: RGBColor = RGBColor(0x00, 0x9E, 0x73);

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Queue,
    Prefill,
    Decode,
    Other,
    Agent,
}

impl Part {
    fn colour(self) -> RGBColor {
        match self {
            Part::Queue => QUEUE,
            Part::Prefill => PREFILL,
            Part::Decode => DECODE,
            Part::Other => OTHER,
            Part::Agent => AGENT,
        }
    }
}

/// A span in seconds since the agent started, on row `row` (0 = the agent lane).
struct Segment {
    row: usize,
    from: f64,
    to: f64,
    part: Part,
}

pub struct Timeline {
    trial_id: String,
    run_id: String,
    requests: usize,
    end: f64,
    segments: Vec<Segment>,
    subtitle: String,
}

impl Timeline {
    pub fn trial_id(&self) -> &str {
        &self.trial_id
    }

    pub fn build(run: &RunRecord, trial: Option<&str>) -> Result<Timeline> {
        let t: &TrialRecord = match trial {
            Some(id) => run.trials.iter().find(|t| t.id == id).ok_or_else(|| {
                let ids: Vec<&str> = run.trials.iter().take(6).map(|t| t.id.as_str()).collect();
                Error::BadInput(format!(
                    "run {} has no trial `{id}`: trial ids are problem/agent/repeat, e.g. {}",
                    run.run_id,
                    ids.join(", ")
                ))
            })?,
            None => run
                .trials
                .iter()
                .filter(|t| !t.telemetry.requests.is_empty())
                .max_by(|a, b| wait(a).total_cmp(&wait(b)))
                .ok_or_else(|| {
                    Error::BadInput(format!(
                        "run {} has no recorded requests: a timeline needs a run made with --server (fixbench's recording proxy)",
                        run.run_id
                    ))
                })?,
        };
        if t.telemetry.requests.is_empty() {
            return Err(Error::BadInput(format!(
                "trial {} of run {} made no recorded requests{}",
                t.id,
                run.run_id,
                if run.server.is_none() { " (the run had no server)" } else { "" }
            ))
            .into());
        }
        let mut reqs: Vec<_> = t.telemetry.requests.iter().collect();
        reqs.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
        let mut segments = Vec::new();
        let mut busy: Vec<(f64, f64)> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            let row = i + 1;
            let start = r.offset_ms / 1000.0;
            let total = r.total_ms / 1000.0;
            let p = r.prompt_ms.unwrap_or(0.0) / 1000.0;
            let d = r.predicted_ms.unwrap_or(0.0) / 1000.0;
            let (queue, decode_at) = match r.ttft_ms {
                Some(f) => ((f / 1000.0 - p).max(0.0), f / 1000.0),
                None => {
                    let q = (total - p - d).max(0.0);
                    (q, q + p)
                }
            };
            let mut push = |from: f64, to: f64, part: Part| {
                if to > from {
                    segments.push(Segment { row, from: start + from, to: start + to, part });
                }
            };
            if r.prompt_ms.is_none() && r.predicted_ms.is_none() {
                push(0.0, total, Part::Other);
            } else {
                push(0.0, queue, Part::Queue);
                push(queue, queue + p, Part::Prefill);
                push(decode_at, decode_at + d, Part::Decode);
                push(decode_at + d, total, Part::Other);
            }
            busy.push((start, start + total));
        }
        // The agent's own time: whatever no request covers, up to the end of the agent run.
        let end = (t.agent_run.agent_s).max(busy.iter().map(|b| b.1).fold(0.0, f64::max));
        let mut cursor = 0.0;
        for (a, b) in &busy {
            if *a > cursor {
                segments.push(Segment { row: 0, from: cursor, to: *a, part: Part::Agent });
            }
            cursor = f64::max(cursor, *b);
        }
        if end > cursor {
            segments.push(Segment { row: 0, from: cursor, to: end, part: Part::Agent });
        }
        let sum = |part: Part| segments.iter().filter(|s| s.part == part).map(|s| s.to - s.from).sum::<f64>();
        let server: f64 = reqs.iter().map(|r| r.total_ms / 1000.0).sum();
        let mut subtitle = format!(
            "{} requests · {:.0} s on the server ({:.0}% of {:.0} s): queued {:.0} s, prefill {:.0} s, decode {:.0} s · agent's own time {:.0} s",
            reqs.len(),
            server,
            server / end.max(1e-9) * 100.0,
            end,
            sum(Part::Queue),
            sum(Part::Prefill),
            sum(Part::Decode),
            sum(Part::Agent)
        );
        if let Some(s) = &t.telemetry.server {
            if let (Some(pp), Some(tg)) = (s.prefill_tps, s.decode_tps) {
                subtitle.push_str(&format!(" · pp {pp:.0} tok/s, tg {tg:.1} tok/s"));
            }
        }
        Ok(Timeline {
            trial_id: t.id.clone(),
            run_id: run.run_id.clone(),
            requests: reqs.len(),
            end,
            segments,
            subtitle,
        })
    }
}

fn wait(t: &TrialRecord) -> f64 {
    t.telemetry
        .timing
        .as_ref()
        .map(|x| x.server_wait_s)
        .unwrap_or_else(|| t.telemetry.requests.iter().map(|r| r.total_ms).sum::<f64>() / 1000.0)
}

impl Chart for Timeline {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n = self.requests as f64;
        let title = format!("Trial {} — run {}", self.trial_id, self.run_id);
        let (plot, side) = style::plot_and_legend(root, &title, &style::clip(&self.subtitle, 150))?;
        let xmax = style::nice_ceil(self.end);
        let requests = self.requests;
        let y_label = move |y: &f64| {
            let k = y.round();
            if (y - k).abs() > 1e-6 || k < 1.0 || k > requests as f64 + 1.0 {
                return String::new();
            }
            let row = requests + 1 - k as usize;
            if row == 0 {
                "agent".to_string()
            } else {
                format!("#{row}")
            }
        };
        let mut chart = style::cartesian(&plot, 0.0..xmax, 0.4..(n + 1.6))?;
        style::draw_axes(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc("time since the agent started (s)")
                .y_desc("request")
                .x_label_formatter(&|x| style::axis_number(*x))
                .y_label_formatter(&y_label)
                .y_labels(self.requests + 2)
                .x_labels(12),
        )?;
        let half = 0.36;
        let y_of = |row: usize| n + 1.0 - row as f64;
        chart
            .draw_series(self.segments.iter().map(|s| {
                let y = y_of(s.row);
                Rectangle::new([(s.from, y - half), (s.to, y + half)], s.part.colour().filled())
            }))
            .map_err(pe)?;
        // Name the long waits on the bar itself.
        let long = self.end * 0.06;
        for s in self.segments.iter().filter(|s| s.part == Part::Queue && s.to - s.from >= long.max(5.0)) {
            let text = format!("queued {:.0} s", s.to - s.from);
            let size = (style::LABEL_SIZE - 2.0).min(plot.dim_in_pixel().1 as f64 / (n + 2.0) * 0.6).max(11.0);
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (s.from + (s.to - s.from) * 0.02, y_of(s.row) + 0.2),
                    style::bold(size),
                )))
                .map_err(pe)?;
        }
        let entries = vec![
            ("queued on the server".to_string(), QUEUE, Mark::Block),
            ("prefill (prompt)".to_string(), PREFILL, Mark::Block),
            ("decode (generation)".to_string(), DECODE, Mark::Block),
            ("other server time".to_string(), OTHER, Mark::Block),
            ("agent's own time".to_string(), AGENT, Mark::Block),
        ];
        style::legend(&side, "", &entries)?;
        Ok(())
    }
}
