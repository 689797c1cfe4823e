//! A GitHub-flavoured Markdown table: the same layout as the terminal table, each delta on a
//! second line of its cell (`<br>`, which GitHub renders inside tables).

use anyhow::Result;

use super::{cell_texts, figure_header, footer, group_title, Formatter};
use crate::report::compare::Comparison;

pub struct MarkdownFormatter;

impl Formatter for MarkdownFormatter {
    fn render(&self, cmp: &Comparison) -> Result<String> {
        let mut header = vec!["problem".to_string()];
        let mut align = vec![":--".to_string()];
        for g in 0..cmp.groups.len() {
            for i in 0..7 {
                header.push(format!("{}<br>{}", escape(&group_title(cmp, g)), figure_header(i, cmp.k)));
                align.push("--:".into());
            }
        }
        let mut out = String::new();
        out.push_str(&line(&header));
        out.push_str(&line(&align));
        for row in &cmp.rows {
            let problem = if row.is_total { format!("**{}**", row.problem) } else { escape(&row.problem) };
            let mut cells = vec![problem];
            for c in &row.cells {
                match c {
                    None => cells.extend((0..7).map(|_| "not run".to_string())),
                    Some(c) => cells.extend(cell_texts(c).into_iter().map(|(v, d)| match d {
                        Some(d) => format!("{}<br>{}", escape(&v), escape(&d)),
                        None => escape(&v),
                    })),
                }
            }
            out.push_str(&line(&cells));
        }
        out.push('\n');
        for l in footer(cmp) {
            out.push_str(&format!("- {}\n", escape(&l)));
        }
        Ok(out)
    }
}

fn line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// Keeps a value from breaking the table or turning into markup.
fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('*', "\\*").replace('_', "\\_").replace('`', "\\`")
}
