//! Putting mutations into a package, and writing each as a bugs.toml snippet: whole lines of
//! the reference (`fixed`) that occur once in their file, and what replaces them (`broken`).

use std::collections::BTreeMap;
use std::ops::Range;

use super::Mutation;
use crate::files::Files;

/// Up to this many chosen mutations in one file, `compatible` checks every subset of them.
const EXHAUSTIVE: usize = 6;

/// `files` with the mutations `ms` put in; they must not overlap and each `original` must be
/// what its file holds at its offsets.
pub fn apply(files: &Files, ms: &[&Mutation]) -> Result<Files, String> {
    let mut by_file: BTreeMap<&str, Vec<&Mutation>> = BTreeMap::new();
    for m in ms {
        by_file.entry(m.file.as_str()).or_default().push(m);
    }
    let mut out = files.clone();
    for (file, ms) in by_file {
        let text = out.get_mut(file).ok_or_else(|| format!("a mutation names `{file}`, which the package lacks"))?;
        *text = apply_text(text, &ms)?;
    }
    Ok(out)
}

/// One file's text with `ms` (all of that file) put in, back to front.
fn apply_text(text: &str, ms: &[&Mutation]) -> Result<String, String> {
    let mut ms = ms.to_vec();
    ms.sort_by_key(|m| (m.start, m.end));
    for m in &ms {
        if text.get(m.start..m.end) != Some(m.original.as_str()) {
            return Err(format!(
                "{}:{}: expected `{}` at bytes {}..{}; the file differs from the one the mutation was made for",
                m.file, m.line, m.original, m.start, m.end
            ));
        }
    }
    for pair in ms.windows(2) {
        if pair[0].end > pair[1].start || pair[0].start == pair[1].start {
            return Err(format!("{}: mutations at lines {} and {} overlap", pair[0].file, pair[0].line, pair[1].line));
        }
    }
    let mut out = text.to_string();
    for m in ms.iter().rev() {
        out.replace_range(m.start..m.end, &m.replacement);
    }
    Ok(out)
}

/// The bugs.toml snippet of `m` in `text` (its file's reference text): the byte range of the
/// smallest run of whole lines around `m` that occurs once in `text` (its own lines first, then
/// one line more at a time, below first, then above, in turn), that run (`fixed`) and the same
/// run with `m` put in (`broken`).
pub fn snippet(text: &str, m: &Mutation) -> (Range<usize>, String, String) {
    let mut lo = text[..m.start].rfind('\n').map_or(0, |i| i + 1);
    let mut hi = if m.end > m.start && text.as_bytes()[m.end - 1] == b'\n' { m.end } else { line_end(text, m.end) };
    let mut below = true;
    while !(lo == 0 && hi == text.len()) && occurrences(text, &text[lo..hi]) != 1 {
        let (down, up) = (hi < text.len(), lo > 0);
        if down && (below || !up) {
            hi = line_end(text, hi);
        } else {
            lo = text[..lo - 1].rfind('\n').map_or(0, |i| i + 1);
        }
        below = !below;
    }
    let fixed = text[lo..hi].to_string();
    let broken = format!("{}{}{}", &text[lo..m.start], m.replacement, &text[m.end..hi]);
    (lo..hi, fixed, broken)
}

/// Whether `m` can join `chosen` (mutations of any files, in the order bugs.toml lists them):
/// the snippets of `m` and of the chosen in its file (`text`, the reference) neither overlap
/// nor touch, and each snippet's `fixed` still occurs exactly once in the file with the others
/// put in (any subset of them, for up to six in one file; beyond that, each one, all of them
/// and the prefixes of the given order), so that `bugs::apply` of the snippets in any such
/// order makes what `apply` of the mutations makes.
pub fn compatible(text: &str, chosen: &[&Mutation], m: &Mutation) -> bool {
    let mut set: Vec<&Mutation> = chosen.iter().copied().filter(|c| c.file == m.file).collect();
    set.push(m);
    if set.iter().any(|c| text.get(c.start..c.end) != Some(c.original.as_str())) {
        return false;
    }
    let snippets: Vec<(Range<usize>, String, String)> = set.iter().map(|c| snippet(text, c)).collect();
    let (mine, others) = snippets.split_last().expect("the set holds m");
    if others.iter().any(|(r, _, _)| r.start <= mine.0.end && mine.0.start <= r.end) {
        return false;
    }
    let n = set.len();
    let subsets: Vec<Vec<usize>> = if n <= EXHAUSTIVE {
        (0..1usize << n).map(|bits| (0..n).filter(|i| bits & (1 << i) != 0).collect()).collect()
    } else {
        let mut s: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        s.extend((0..n).map(|i| (0..n).filter(|&j| j != i).collect()));
        s.extend((1..n).map(|len| (0..len).collect()));
        s
    };
    for subset in subsets {
        let applied: Vec<&Mutation> = subset.iter().map(|&i| set[i]).collect();
        let Ok(broken) = apply_text(text, &applied) else { return false };
        for (i, (_, fixed, _)) in snippets.iter().enumerate() {
            if !subset.contains(&i) && occurrences(&broken, fixed) != 1 {
                return false;
            }
        }
    }
    true
}

/// The offset just after the newline that ends the line holding `at` (or the end of `text`).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

/// How many times `pat` (not empty) occurs in `text`, overlapping occurrences counted.
fn occurrences(text: &str, pat: &str) -> usize {
    if pat.is_empty() {
        return usize::MAX;
    }
    let (mut count, mut from) = (0, 0);
    while let Some(i) = text[from..].find(pat) {
        count += 1;
        let at = from + i;
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::mutation::Kind;

    pub(crate) fn mutation(text: &str, file: &str, original: &str, nth: usize, replacement: &str) -> Mutation {
        let start = text.match_indices(original).nth(nth).expect("the original is in the text").0;
        Mutation {
            file: file.into(),
            kind: Kind::Constant,
            line: text[..start].matches('\n').count() + 1,
            start,
            end: start + original.len(),
            original: original.into(),
            replacement: replacement.into(),
            scope: String::new(),
        }
    }

    const TEXT: &str = "def f(x):\n    y = 1\n    return y\n\ndef g(x):\n    y = 1\n    return y + 2\n";

    #[test]
    fn apply_puts_mutations_in_back_to_front_and_rejects_overlaps_and_stale_ones() {
        let files: Files = [("a.py".to_string(), TEXT.to_string())].into();
        let one = mutation(TEXT, "a.py", "1", 0, "10");
        let two = mutation(TEXT, "a.py", "2", 0, "3");
        let out = apply(&files, &[&two, &one]).unwrap();
        assert_eq!(out["a.py"], TEXT.replacen("1", "10", 1).replace("+ 2", "+ 3"));
        let wide = mutation(TEXT, "a.py", "y = 1", 0, "y = 0");
        assert!(apply(&files, &[&one, &wide]).unwrap_err().contains("overlap"));
        let mut stale = one.clone();
        stale.original = "7".into();
        assert!(apply(&files, &[&stale]).unwrap_err().contains("expected `7`"));
        let mut elsewhere = one.clone();
        elsewhere.file = "b.py".into();
        assert!(apply(&files, &[&elsewhere]).unwrap_err().contains("`b.py`"));
    }

    #[test]
    fn a_snippet_grows_by_whole_lines_until_it_is_unique() {
        // `    y = 1\n` occurs twice; with the line below it is unique.
        let m = mutation(TEXT, "a.py", "1", 0, "0");
        let (range, fixed, broken) = snippet(TEXT, &m);
        assert_eq!(fixed, "    y = 1\n    return y\n");
        assert_eq!(broken, "    y = 0\n    return y\n");
        assert_eq!(&TEXT[range], fixed);
        // The second `y = 1` is followed by a unique line too.
        let m = mutation(TEXT, "a.py", "1", 1, "0");
        assert_eq!(snippet(TEXT, &m).1, "    y = 1\n    return y + 2\n");
        // A unique line alone.
        let m = mutation(TEXT, "a.py", "2", 0, "3");
        assert_eq!(snippet(TEXT, &m).1, "    return y + 2\n");
        // The last line of a file without a final newline, growing upwards.
        let text = "a = 1\nb = 2\nb = 2";
        let m = mutation(text, "a.py", "2", 1, "3");
        let (range, fixed, broken) = snippet(text, &m);
        assert_eq!((fixed.as_str(), broken.as_str(), range), ("b = 2\nb = 2", "b = 2\nb = 3", 6..17));
        // A mutation made of whole lines keeps exactly those lines.
        let m = mutation(TEXT, "a.py", "    return y + 2\n", 0, "");
        assert_eq!(snippet(TEXT, &m).1, "    return y + 2\n");
    }

    #[test]
    fn compatible_snippets_neither_touch_nor_make_each_other_ambiguous() {
        let text = "a = 1\nb = 2\nc = 3\nd = 4\nif x < y:\n    pass\nif x >= y:\n    pass\n";
        let a = mutation(text, "a.py", "1", 0, "0");
        let b = mutation(text, "a.py", "2", 0, "3");
        let c = mutation(text, "a.py", "3", 0, "4");
        assert!(compatible(text, &[&a], &c));
        assert!(!compatible(text, &[&a], &b), "adjacent lines touch");
        let mut elsewhere = b.clone();
        elsewhere.file = "b.py".into();
        assert!(compatible(text, &[&elsewhere], &a), "other files do not count");
        // `<` → `>=` makes the line of the other mutation's snippet occur twice.
        let lt = mutation(text, "a.py", "<", 0, ">=");
        let ge = mutation(text, "a.py", ">=", 0, "<");
        assert_eq!(snippet(text, &ge).1, "if x >= y:\n");
        assert!(compatible(text, &[], &lt) && compatible(text, &[], &ge));
        assert!(!compatible(text, &[&lt], &ge));
        assert!(!compatible(text, &[&ge], &lt));
    }

    #[test]
    fn occurrences_count_overlapping_ones() {
        assert_eq!(occurrences("a\na\na\n", "a\na\n"), 2);
        assert_eq!(occurrences("ünï ünï", "ünï"), 2);
        assert_eq!(occurrences("abc", "d"), 0);
    }
}
