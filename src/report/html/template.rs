//! The page's template and assets, compiled in, and its rendering (HTML auto-escaping on).

use anyhow::{Context, Result};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment};

use super::view::Page;

const PAGE: &str = include_str!("page.html");
pub const CSS: &str = include_str!("report.css");
pub const JS: &str = include_str!("report.js");

pub fn render(page: &Page) -> Result<String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.add_template("page.html", PAGE).context("the report template does not parse")?;
    let template = env.get_template("page.html")?;
    template.render(Serde(page)).context("failed to render the report template")
}
