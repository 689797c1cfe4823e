//! The page's template and assets, compiled in, and its rendering (HTML auto-escaping on).

use anyhow::{Context, Result};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Error, ErrorKind};

use super::view::Page;

const PAGE: &str = include_str!("page.html");
pub const CSS: &str = include_str!("report.css");
pub const JS: &str = include_str!("report.js");

pub fn render(page: &Page) -> Result<String> {
    let mut env = environment();
    env.add_template("page.html", PAGE).context("the report template does not parse")?;
    let template = env.get_template("page.html")?;
    template.render(Serde(page)).context("failed to render the report template")
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // minijinja's own HTML escaping also writes `/` as `&#x2f;`; ids and paths stay readable
    // with the five characters HTML needs escaped, and nothing else.
    env.set_formatter(|out, state, value| match (state.auto_escape(), value.as_str()) {
        (AutoEscape::Html, Some(s)) if !value.is_safe() => out
            .write_str(&escape_html(s))
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "failed to write the report")),
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

/// `s` with `& < > " '` escaped, for text and attribute values.
fn escape_html(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_store_is_escaped_and_paths_stay_readable() {
        assert_eq!(escape_html("a/b <i>&\"'"), "a/b &lt;i&gt;&amp;&quot;&#39;");
        let mut env = environment();
        env.add_template("t.html", "<p title=\"{{ t }}\">{{ t }}</p>{{ j|safe }}").unwrap();
        let ctx = Serde(serde_json::json!({ "t": "a/b</p><script>'", "j": "<b>" }));
        let html = env.get_template("t.html").unwrap().render(ctx).unwrap();
        assert_eq!(html, "<p title=\"a/b&lt;/p&gt;&lt;script&gt;&#39;\">a/b&lt;/p&gt;&lt;script&gt;&#39;</p><b>");
    }
}
