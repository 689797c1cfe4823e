//! `fixbench gate`: the CI gate. Pairs a run with a baseline problem by problem and test by
//! test, and fails (exit 5) when the score dropped beyond what the repeats' spread allows, or
//! when wall time, prefill or decode speed regressed beyond `--max-slowdown` with its interval.
//! `evaluate` judges, `render` explains; saved baselines live in `report::baseline`.

mod evaluate;
mod render;

pub use evaluate::evaluate;
pub use render::render;
