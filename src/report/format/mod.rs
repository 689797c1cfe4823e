//! `compare`'s output formats, one file per format behind one small trait (as hyperfine's
//! `src/export` does). Adding a format touches one file and the match below.

mod csv;
mod json;
mod markdown;
mod table;

use anyhow::Result;

use super::compare::{Cell, Comparison, Delta, Verdict};
use super::stats::Spread;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatKind {
    /// A table for the terminal
    Table,
    /// A GitHub-flavoured Markdown table, for a PR or an issue
    Markdown,
    /// One line per problem, one column per group and figure
    Csv,
    /// Everything, with intervals, for scripts
    Json,
}

/// Renders a comparison as text.
pub trait Formatter {
    fn render(&self, cmp: &Comparison) -> Result<String>;
}

pub fn formatter(kind: FormatKind) -> Box<dyn Formatter> {
    match kind {
        FormatKind::Table => Box::new(table::TableFormatter),
        FormatKind::Markdown => Box::new(markdown::MarkdownFormatter),
        FormatKind::Csv => Box::new(csv::CsvFormatter),
        FormatKind::Json => Box::new(json::JsonFormatter),
    }
}

/// A figure of a column group, in the order the human-readable formats show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Figure {
    Passed,
    Resolved,
    PassAtK,
    Wall,
    PrefillTps,
    DecodeTps,
    CacheHit,
}

/// A figure's text in a cell, and its delta's when the cell has one.
pub(crate) struct FigureText {
    pub value: String,
    pub delta: Option<String>,
}

impl Figure {
    pub(crate) const ALL: [Figure; 7] = [
        Figure::Passed,
        Figure::Resolved,
        Figure::PassAtK,
        Figure::Wall,
        Figure::PrefillTps,
        Figure::DecodeTps,
        Figure::CacheHit,
    ];

    /// Its column header (`pass@k` spelled with its k).
    pub(crate) fn header(self, k: u32) -> String {
        match self {
            Figure::Passed => "passed".into(),
            Figure::Resolved => "resolved [95% CI]".into(),
            Figure::PassAtK => format!("pass@{k}"),
            Figure::Wall => "wall".into(),
            Figure::PrefillTps => "prefill tok/s".into(),
            Figure::DecodeTps => "decode tok/s".into(),
            Figure::CacheHit => "cache hit".into(),
        }
    }

    pub(crate) fn text(self, c: &Cell) -> FigureText {
        let d = c.delta.as_ref();
        let server_missing = || if c.server_trials == 0 { "no server" } else { "n/a" }.to_string();
        let mean = |s: &Option<Spread>| s.map(|s| fmt_num(s.mean, 1)).unwrap_or_else(server_missing);
        let (value, delta) = match self {
            Figure::Passed => (
                format!("{}/{}", fmt_num(c.passed.mean, 1), c.tests),
                d.map(|d| delta_text(&d.passed, DeltaUnit::Absolute(1))),
            ),
            Figure::Resolved => (
                format!("{} [{}–{}]", pct(c.resolved_rate), pct_bare(c.resolved_ci.0), pct_bare(c.resolved_ci.1)),
                d.map(|d| delta_text(&d.resolved_rate, DeltaUnit::Points)),
            ),
            Figure::PassAtK => (
                c.pass_at_k.map(pct).unwrap_or_else(|| "n/a".into()),
                d.and_then(|d| d.pass_at_k.as_ref()).map(|d| delta_text(d, DeltaUnit::Points)),
            ),
            Figure::Wall => (wall_text(&c.wall_s), d.map(|d| delta_text(&d.wall_s, DeltaUnit::Relative))),
            Figure::PrefillTps => (
                mean(&c.prefill_tps),
                d.and_then(|d| d.prefill_tps.as_ref()).map(|d| delta_text(d, DeltaUnit::Relative)),
            ),
            Figure::DecodeTps => {
                (mean(&c.decode_tps), d.and_then(|d| d.decode_tps.as_ref()).map(|d| delta_text(d, DeltaUnit::Relative)))
            }
            Figure::CacheHit => (
                c.cache_hit_ratio.map(|s| pct(s.mean)).unwrap_or_else(server_missing),
                d.and_then(|d| d.cache_hit_ratio.as_ref()).map(|d| delta_text(d, DeltaUnit::Points)),
            ),
        };
        FigureText { value, delta }
    }
}

/// `12.3 s ± 1.2` (the ± is the sample standard deviation; none for a single trial).
pub(crate) fn wall_text(s: &Spread) -> String {
    match s.sd {
        Some(sd) => format!("{} s ± {}", fmt_num(s.mean, 1), fmt_num(sd, 1)),
        None => format!("{} s", fmt_num(s.mean, 1)),
    }
}

pub(crate) enum DeltaUnit {
    /// Plain difference with this many decimals.
    Absolute(usize),
    /// A difference of two fractions, in percentage points.
    Points,
    /// Relative to the reference group, in percent.
    Relative,
}

/// `+1.5 better`, `-12% worse?` (the `?`: the 95% interval includes zero, could be noise).
pub(crate) fn delta_text(d: &Delta, unit: DeltaUnit) -> String {
    let num = match unit {
        DeltaUnit::Absolute(digits) => signed(d.diff, digits, ""),
        DeltaUnit::Points => signed(d.diff * 100.0, 0, " pp"),
        DeltaUnit::Relative => match d.relative {
            Some(r) => signed(r * 100.0, 0, "%"),
            None => signed(d.diff, 1, ""),
        },
    };
    if num.starts_with('±') {
        return num; // too small to show: no verdict on a difference nobody can see
    }
    let word = match d.verdict {
        Verdict::Better => "better",
        Verdict::Worse => "worse",
        Verdict::Same => return "same".into(),
    };
    format!("{num} {word}{}", if d.noise { "?" } else { "" })
}

/// Which group the deltas are against and what the `?` after one means, printed under the
/// human-readable formats.
pub(crate) fn noise_legend(cmp: &Comparison) -> String {
    let reference = cmp.groups.iter().position(|g| g.reference).unwrap_or(0);
    format!(
        "deltas are against {}; `?`: the 95% interval of the difference includes zero, so it could be noise",
        group_title(cmp, reference)
    )
}

fn signed(v: f64, digits: usize, unit: &str) -> String {
    let s = fmt_num(v.abs(), digits);
    if s.trim_start_matches(['0', '.']).is_empty() {
        return format!("±{s}{unit}");
    }
    format!("{}{s}{unit}", if v < 0.0 { "-" } else { "+" })
}

/// A number with `digits` decimals, or with none from 1000 up (tok/s in the thousands).
pub(crate) fn fmt_num(v: f64, digits: usize) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.digits$}")
    }
}

pub(crate) fn pct(f: f64) -> String {
    format!("{}%", pct_bare(f))
}

fn pct_bare(f: f64) -> String {
    format!("{:.0}", f * 100.0)
}

/// The header naming a group: `agent=oracle`.
pub(crate) fn group_title(cmp: &Comparison, g: usize) -> String {
    format!("{}={}", cmp.by, cmp.groups[g].name)
}

/// Lines printed under a human-readable table: the legend and any notes.
pub(crate) fn footer(cmp: &Comparison) -> Vec<String> {
    let mut lines = Vec::new();
    if cmp.groups.len() > 1 {
        lines.push(noise_legend(cmp));
    }
    for (g, info) in cmp.groups.iter().enumerate() {
        lines.push(format!("{}: {} trial(s) from {}", group_title(cmp, g), info.trials, info.runs.join(", ")));
    }
    lines.extend(cmp.notes.iter().cloned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_texts() {
        let d =
            Delta { diff: -1.5, relative: Some(-0.1), ci: Some((-2.0, -1.0)), verdict: Verdict::Worse, noise: false };
        assert_eq!(delta_text(&d, DeltaUnit::Absolute(1)), "-1.5 worse");
        assert_eq!(delta_text(&d, DeltaUnit::Relative), "-10% worse");
        let d = Delta { diff: 0.25, relative: None, ci: Some((-0.1, 0.6)), verdict: Verdict::Better, noise: true };
        assert_eq!(delta_text(&d, DeltaUnit::Points), "+25 pp better?");
        assert_eq!(fmt_num(1234.56, 1), "1235");
    }
}
