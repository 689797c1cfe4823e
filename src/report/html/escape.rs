//! Text made safe for where the page puts it: JSON inside a `<script>` element, and the parts
//! of a URL fragment.

use serde::Serialize;

/// `value` as JSON that can sit inside `<script type="application/json">`: no `</` (so no
/// `</script>` ends the element early), no `<!--` (which would change how the browser reads
/// the rest of the script), and no `://` (so the file holds no address at all, not even one
/// quoted from a log). Each replacement is an escape JSON.parse reads back as the original.
pub fn script_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    Ok(escape_script_json(&serde_json::to_string(value)?))
}

/// See [`script_json`]; `json` is JSON text, where `<` and `/` only occur inside strings.
pub fn escape_script_json(json: &str) -> String {
    if !json.contains('<') && !json.contains("://") {
        return json.to_string();
    }
    json.replace("<!--", "\\u003c!--").replace("</", "<\\/").replace("://", ":\\/\\/")
}

/// One part of a fragment value (`run/problem/group`): percent-encoded except for the
/// characters a fragment may hold as they are; `/` is kept, the page splits on it.
pub fn fragment_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:@!$'()*,;".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_end_the_script_and_reads_back_the_same() {
        let text = "a </script><script>alert(1)</script> <!-- b --> </SCRIPT c http://x.invalid/ \u{2028}";
        let json = script_json(&serde_json::json!({ "t": text })).unwrap();
        for bad in ["</", "<!--", "://"] {
            assert!(!json.contains(bad), "{bad} in {json}");
        }
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["t"], text);
    }

    #[test]
    fn fragment_parts_keep_plain_names_and_encode_the_rest() {
        assert_eq!(fragment_part("20260101-090000-0000/expr_calc/aider"), "20260101-090000-0000/expr_calc/aider");
        assert_eq!(fragment_part("a b&c=d#é"), "a%20b%26c%3Dd%23%C3%A9");
    }
}
