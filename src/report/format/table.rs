//! The terminal table: a column group per group, each delta on a second line of its cell.

use anyhow::Result;
use comfy_table::{Cell as TCell, CellAlignment};

use super::{footer, group_title, Figure, FigureText, Formatter};
use crate::report::compare::Comparison;
use crate::report::table::new_table;

pub struct TableFormatter;

impl Formatter for TableFormatter {
    fn render(&self, cmp: &Comparison) -> Result<String> {
        let figures = shown_figures(cmp);
        let mut t = new_table();
        let mut header = vec![TCell::new("problem")];
        for g in 0..cmp.groups.len() {
            for (j, f) in figures.iter().enumerate() {
                // The group's name heads its first column only, so the eye finds where it starts.
                let title = if j == 0 { group_title(cmp, g) } else { String::new() };
                header.push(TCell::new(format!("{title}\n{}", f.header(cmp.k))));
            }
        }
        t.set_header(header);
        for row in &cmp.rows {
            let mut cells = vec![TCell::new(&row.problem)];
            for c in &row.cells {
                match c {
                    None => {
                        cells.extend(figures.iter().map(|_| TCell::new("not run").set_alignment(CellAlignment::Right)))
                    }
                    Some(c) => {
                        for f in &figures {
                            let text = match f.text(c) {
                                FigureText { value, delta: Some(d) } => format!("{value}\n{d}"),
                                FigureText { value, delta: None } => value,
                            };
                            cells.push(TCell::new(text).set_alignment(CellAlignment::Right));
                        }
                    }
                }
            }
            t.add_row(cells);
        }
        let mut out = format!("{t}\n");
        for line in footer(cmp) {
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

/// Every figure, except that when no group had a server the three server figures shrink to
/// one column saying so (decode tok/s's: "no server").
fn shown_figures(cmp: &Comparison) -> Vec<Figure> {
    let any_server = cmp.rows.iter().flat_map(|r| r.cells.iter().flatten()).any(|c| c.server_trials > 0);
    Figure::ALL.into_iter().filter(|f| any_server || !matches!(f, Figure::PrefillTps | Figure::CacheHit)).collect()
}
