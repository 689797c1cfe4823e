//! The table printed at the end of a run and by `fixbench show`.

use comfy_table::{presets, Cell, CellAlignment, Table};

use crate::store::RunRecord;

/// A table with fixbench's look: UTF-8 borders on a terminal, ASCII otherwise or with NO_COLOR.
pub fn new_table() -> Table {
    let mut t = Table::new();
    let plain = std::env::var_os("NO_COLOR").is_some() || !std::io::IsTerminal::is_terminal(&std::io::stdout());
    t.load_preset(if plain { presets::ASCII_MARKDOWN } else { presets::UTF8_FULL_CONDENSED });
    t
}

pub fn run_table(run: &RunRecord) -> String {
    let mut t = new_table();
    let has_server = run.trials.iter().any(|tr| tr.telemetry.server.is_some());
    let mut header = vec!["problem", "agent", "#", "passed/total", "baseline", "fixed", "broken", "resolved", "wall"];
    if has_server {
        header.extend(["requests", "prefill tok/s", "decode tok/s", "cache hit"]);
    }
    // An agent that could not start, or failed at once, is said so: its score is the starter's.
    let has_flag = run.trials.iter().any(|tr| tr.agent_flag().is_some());
    if has_flag {
        header.push("agent run");
    }
    t.set_header(header);
    for tr in &run.trials {
        let mut row = vec![
            Cell::new(&tr.problem),
            Cell::new(&tr.agent),
            Cell::new(tr.repeat),
            Cell::new(format!("{}/{}", tr.grade.passed, tr.grade.total)).set_alignment(CellAlignment::Right),
            Cell::new(tr.grade.baseline).set_alignment(CellAlignment::Right),
            Cell::new(tr.grade.fixed.len()).set_alignment(CellAlignment::Right),
            Cell::new(tr.grade.broken.len()).set_alignment(CellAlignment::Right),
            Cell::new(if tr.grade.void.is_some() {
                "VOID"
            } else if tr.grade.resolved {
                "yes"
            } else if tr.agent_run.timed_out {
                "timeout"
            } else {
                "no"
            }),
            Cell::new(format!("{:.1} s", tr.wall_s)).set_alignment(CellAlignment::Right),
        ];
        if has_server {
            let f = |v: Option<f64>, digits: usize| v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "n/a".into());
            let s = tr.telemetry.server.as_ref();
            row.push(Cell::new(tr.telemetry.requests.len()).set_alignment(CellAlignment::Right));
            row.push(Cell::new(f(s.and_then(|s| s.prefill_tps), 1)).set_alignment(CellAlignment::Right));
            row.push(Cell::new(f(s.and_then(|s| s.decode_tps), 1)).set_alignment(CellAlignment::Right));
            let cache =
                s.and_then(|s| s.cache_hit_ratio).map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "n/a".into());
            row.push(Cell::new(cache).set_alignment(CellAlignment::Right));
        }
        if has_flag {
            row.push(Cell::new(tr.agent_flag().unwrap_or_default()));
        }
        t.add_row(row);
    }
    format!("{t}\n")
}
