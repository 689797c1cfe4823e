//! A GitHub-flavoured Markdown table: the same layout as the terminal table, each delta on a
//! second line of its cell (`<br>`, which GitHub renders inside tables).

use anyhow::Result;

use super::{footer, group_title, Figure, FigureText, Formatter};
use crate::report::compare::Comparison;

pub struct MarkdownFormatter;

impl Formatter for MarkdownFormatter {
    fn render(&self, cmp: &Comparison) -> Result<String> {
        let mut header = vec!["problem".to_string()];
        let mut align = vec![":--".to_string()];
        for g in 0..cmp.groups.len() {
            for f in Figure::ALL {
                header.push(format!("{}<br>{}", escape(&group_title(cmp, g)), f.header(cmp.k)));
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
                    None => cells.extend(Figure::ALL.map(|_| "not run".to_string())),
                    Some(c) => cells.extend(Figure::ALL.map(|f| match f.text(c) {
                        FigureText { value, delta: Some(d) } => format!("{}<br>{}", escape(&value), escape(&d)),
                        FigureText { value, delta: None } => escape(&value),
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
