//! The history charts: the share of tests passed and the decode speed of each stored run over
//! time (`report::history::Line`, what `fixbench history` prints), as SVG coordinates.

use super::view::{Chart, Dot};
use crate::report::history::Line;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 170;
/// Left, right, top and bottom margins.
const MARGIN: (f64, f64, f64, f64) = (48.0, 12.0, 10.0, 24.0);

/// `lines` oldest first; unreadable runs are left out.
pub fn build(lines: &[Line]) -> Vec<Chart> {
    let lines: Vec<&Line> = lines.iter().filter(|l| l.unreadable.is_none() && l.started_at.is_some()).collect();
    let score = |l: &Line| (l.tests > 0).then(|| l.passed as f64 / l.tests as f64 * 100.0);
    vec![
        chart("score: tests passed (%)", &lines, score, "%"),
        chart("decode tokens/s (mean over trials)", &lines, |l| l.decode_tps, " tok/s"),
    ]
}

fn chart(title: &str, lines: &[&Line], value: impl Fn(&Line) -> Option<f64>, unit: &str) -> Chart {
    let points: Vec<(&Line, f64)> = lines.iter().filter_map(|l| Some((*l, value(l)?))).collect();
    let mut out = Chart {
        title: title.into(),
        width: WIDTH,
        height: HEIGHT,
        points: String::new(),
        dots: Vec::new(),
        y_ticks: Vec::new(),
        x_ticks: Vec::new(),
        empty: None,
    };
    if points.is_empty() {
        out.empty = Some("no run has this figure".into());
        return out;
    }
    let time = |l: &Line| l.started_at.expect("kept above").timestamp() as f64;
    let (t0, t1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), (l, _)| (a.min(time(l)), b.max(time(l))));
    let top = points.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9) * 1.1;
    let (left, right, up, down) = MARGIN;
    let (w, h) = (WIDTH as f64 - left - right, HEIGHT as f64 - up - down);
    let x = |t: f64| if t1 > t0 { left + (t - t0) / (t1 - t0) * w } else { left + w / 2.0 };
    let y = |v: f64| up + h - v / top * h;
    for (l, v) in &points {
        let (px, py) = ((x(time(l)) * 10.0).round() / 10.0, (y(*v) * 10.0).round() / 10.0);
        out.points.push_str(&format!("{px},{py} "));
        let date = l.started_at.expect("kept above").format("%Y-%m-%d %H:%M");
        out.dots.push(Dot { x: px, y: py, title: format!("{} ({date}): {v:.1}{unit}", l.run_id) });
    }
    out.y_ticks = (0..=4).map(|i| top / 1.1 * i as f64 / 4.0).map(|v| (y(v), format!("{v:.0}"))).collect();
    let first = points.first().expect("not empty").0;
    let last = points.last().expect("not empty").0;
    out.x_ticks = [first, last]
        .iter()
        .map(|l| (x(time(l)), l.started_at.expect("kept above").format("%Y-%m-%d").to_string()))
        .collect();
    out
}
