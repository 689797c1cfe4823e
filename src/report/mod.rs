//! Reports: everything that reads the results store and prints, exports or plots it.
//!
//! `runs` loads what the store holds, `group` says what trials are grouped by and measured
//! with, `stats` holds the statistics, `slots` reads which slot served each request and how
//! long requests waited for one, `transcript` prints a trial's conversation, and each command
//! (`show`, `history`, `compare`, `gate`,
//! `baseline`, `junit`, `plot`, `route`) turns that into output (`cost` prices a trial's tokens for
//! `route`); `format` has one file per output format
//! of `compare`, `plot` one file per chart kind. `html` writes `fixbench report`'s one
//! self-contained HTML file of runs (matrix, trials, comparison, history).

pub mod baseline;
pub mod compare;
pub mod cost;
pub mod format;
pub mod gate;
pub mod group;
pub mod history;
pub mod html;
pub mod junit;
pub mod plot;
pub mod route;
pub mod runs;
pub mod show;
pub mod slots;
pub mod stats;
#[cfg(any(test, feature = "synth"))]
pub mod synth;
pub mod table;
pub mod transcript;

/// Writes a report to stdout; a reader that stops early (`| head`) ends it quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
