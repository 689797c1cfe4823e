//! JSON: the whole comparison, intervals and all, for scripts.

use anyhow::Result;

use super::Formatter;
use crate::report::compare::Comparison;

pub struct JsonFormatter;

impl Formatter for JsonFormatter {
    fn render(&self, cmp: &Comparison) -> Result<String> {
        Ok(serde_json::to_string_pretty(cmp)? + "\n")
    }
}
