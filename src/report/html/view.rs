//! What the template renders on the server (first paint needs no script): the run headers,
//! the matrix, the comparison, the changes between runs and the history charts, every figure
//! already formatted.

use serde::Serialize;

/// A verdict shown above everything else (the gate's, for `gate --report`).
#[derive(Debug, Clone, Serialize)]
pub struct Banner {
    pub title: String,
    pub passed: bool,
    pub lines: Vec<String>,
}

/// The template's whole context.
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    pub title: String,
    pub generator: String,
    pub banner: Option<&'a Banner>,
    pub runs: Vec<RunHeader>,
    pub matrix: Matrix,
    /// More than one run: the comparison, the changes and the "different" filter.
    pub several: bool,
    pub compare: Option<CompareView>,
    /// Why there is no comparison, when there are several runs and none could be made.
    pub compare_error: Option<String>,
    pub changes: Vec<ChangeSet>,
    pub history: Vec<Chart>,
    pub css: &'static str,
    pub js: &'static str,
    /// JSON, escaped for a script element ([`super::escape::script_json`]).
    pub index: String,
    pub shared: String,
    pub blocks: Vec<Block>,
}

/// One trial's JSON block: `<script type="application/json" id="t-RUN/PROBLEM/AGENT/REPEAT">`.
#[derive(Debug, Serialize)]
pub struct Block {
    pub id: String,
    pub json: String,
}

/// A run's provenance: label and value pairs, in the order shown.
#[derive(Debug, Serialize)]
pub struct RunHeader {
    pub run_id: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct Matrix {
    /// The grouping, `agent` or `label:flags`.
    pub by: String,
    pub groups: Vec<String>,
    pub rows: Vec<MatrixRow>,
}

/// One run's problem.
#[derive(Debug, Serialize)]
pub struct MatrixRow {
    pub run: String,
    pub problem: String,
    pub fail: bool,
    pub differs: bool,
    /// One per group; `None` where the group has no trial of it.
    pub cells: Vec<Option<MatrixCell>>,
}

#[derive(Debug, Serialize)]
pub struct MatrixCell {
    pub group: String,
    /// `#cell=…`, encoded.
    pub href: String,
    pub resolved: u32,
    pub n: u32,
    pub rate: String,
    pub ci: String,
    pub passed: String,
    pub decode: Option<String>,
    pub wall: String,
    /// Some trial did not resolve.
    pub fail: bool,
    /// The resolve rate differs between runs for this problem and group.
    pub differs: bool,
    /// 0 (none resolved) to 4 (all), for the colour.
    pub level: u8,
}

/// `report::compare::Comparison`, one row per group, one column per problem and the total.
#[derive(Debug, Serialize)]
pub struct CompareView {
    pub by: String,
    pub columns: Vec<String>,
    pub rows: Vec<CompareRow>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CompareRow {
    pub name: String,
    pub reference: bool,
    pub cells: Vec<Option<CompareCell>>,
}

#[derive(Debug, Serialize)]
pub struct CompareCell {
    pub resolved: String,
    pub ci: String,
    pub passed: String,
    pub decode: Option<String>,
    pub deltas: Vec<DeltaView>,
}

#[derive(Debug, Serialize)]
pub struct DeltaView {
    pub what: &'static str,
    pub text: String,
    pub ci: String,
    /// `better`, `worse` or `same`.
    pub verdict: &'static str,
    pub noise: bool,
}

/// Trials sorted between the first run and a later one.
#[derive(Debug, Serialize)]
pub struct ChangeSet {
    pub from: String,
    pub to: String,
    /// What a trial is matched by, in words.
    pub keyed_by: String,
    pub lists: Vec<ChangeList>,
}

#[derive(Debug, Serialize)]
pub struct ChangeList {
    /// `fixed`, `regressed` or `still failing`.
    pub kind: &'static str,
    pub count: usize,
    /// The first [`super::changes::LIST_CAP`] of them.
    pub links: Vec<Link>,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub label: String,
    pub href: String,
    /// `data-trial` for a trial link, else empty.
    pub trial: String,
}

/// One history chart, coordinates computed: a line over the store's runs.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub title: String,
    pub width: u32,
    pub height: u32,
    /// The polyline's `points`.
    pub points: String,
    pub dots: Vec<Dot>,
    /// (y, label) of the horizontal grid lines; (x, label) of the dates.
    pub y_ticks: Vec<(f64, String)>,
    pub x_ticks: Vec<(f64, String)>,
    /// Said instead of a line when no run has the figure.
    pub empty: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub title: String,
}
