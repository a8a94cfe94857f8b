//! Edits to the top-level members of a JSON object at the text level, so everything the
//! gateway does not change reaches the backend or the client byte for byte (key order,
//! number spelling, whitespace). Callers validate the document first (serde_json); these
//! functions only track strings and nesting depth.

use std::ops::Range;

/// One top-level member of a JSON object, as byte ranges into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The member with the whitespace around it: from just after the `{` or `,` before it to
    /// the `,` or `}` after it.
    pub span: Range<usize>,
    /// The key's text between its quotes (escapes not decoded).
    pub key: Range<usize>,
    /// The value's text, whitespace trimmed.
    pub value: Range<usize>,
}

/// The top-level members of the object `text` holds, in order. `None` when `text` is not an
/// object (after leading whitespace) or is malformed in a way the scan notices.
pub(crate) fn members(text: &[u8]) -> Option<Vec<Member>> {
    let open = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if text[open] != b'{' {
        return None;
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = open + 1;
    for (i, &b) in text.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    if let Some(member) = member(text, start..i) {
                        out.push(member);
                    }
                    return Some(out);
                }
            }
            b',' if depth == 1 => {
                out.push(member(text, start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// Parses `"key" : value` within `span`; `None` for an empty span (`{}`) or a malformed one.
fn member(text: &[u8], span: Range<usize>) -> Option<Member> {
    let (first, last) = trimmed(text, span.clone())?;
    if text[first] != b'"' {
        return None;
    }
    let mut escaped = false;
    let mut close = None;
    for (i, &b) in text.iter().enumerate().take(last).skip(first + 1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => {
                close = Some(i);
                break;
            }
            _ => {}
        }
    }
    let close = close?;
    let colon = (close + 1..last).find(|&i| !text[i].is_ascii_whitespace())?;
    if text[colon] != b':' {
        return None;
    }
    let (value_start, value_end) = trimmed(text, colon + 1..last)?;
    Some(Member {
        span,
        key: first + 1..close,
        value: value_start..value_end,
    })
}

/// `range` without leading and trailing whitespace, as (start, end); `None` when blank.
fn trimmed(text: &[u8], range: Range<usize>) -> Option<(usize, usize)> {
    let start = range.clone().find(|&i| !text[i].is_ascii_whitespace())?;
    let end = range.rev().find(|&i| !text[i].is_ascii_whitespace())? + 1;
    Some((start, end))
}

/// The member of `members` whose key is exactly `key`; the last one when it repeats, as
/// serde_json reads it.
pub(crate) fn find<'m>(text: &[u8], members: &'m [Member], key: &str) -> Option<(usize, &'m Member)> {
    members
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| &text[m.key.clone()] == key.as_bytes())
}

/// The byte range to cut so member `index` of `members` goes, with one comma, leaving a
/// well-formed object.
pub(crate) fn removal(members: &[Member], index: usize) -> Range<usize> {
    let this = &members[index];
    if index + 1 < members.len() {
        // The member and the comma after it.
        this.span.start..members[index + 1].span.start
    } else if index > 0 {
        // The comma before it and the member.
        members[index - 1].span.end..this.span.end
    } else {
        this.span.clone()
    }
}

/// `text` with `range` replaced by `with`.
pub(crate) fn splice(text: &[u8], range: Range<usize>, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + with.len());
    out.extend_from_slice(&text[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&text[range.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(text: &str, key: &str) -> String {
        let ms = members(text.as_bytes()).unwrap();
        let (i, _) = find(text.as_bytes(), &ms, key).unwrap();
        String::from_utf8(splice(text.as_bytes(), removal(&ms, i), b"")).unwrap()
    }

    #[test]
    fn finds_top_level_members_only() {
        let text = r#" { "a" : {"usage":1}, "b":"x,}\"y", "c":[1,{"d":2}] } "#;
        let ms = members(text.as_bytes()).unwrap();
        let keys: Vec<_> = ms.iter().map(|m| &text[m.key.clone()]).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(&text[ms[1].value.clone()], r#""x,}\"y""#);
        assert_eq!(&text[ms[2].value.clone()], r#"[1,{"d":2}]"#);
        assert!(find(text.as_bytes(), &ms, "usage").is_none());
    }

    #[test]
    fn removal_leaves_valid_json_wherever_the_member_is() {
        assert_eq!(remove(r#"{"usage":null,"a":1}"#, "usage"), r#"{"a":1}"#);
        assert_eq!(remove(r#"{"a":1, "usage":null, "b":2}"#, "usage"), r#"{"a":1, "b":2}"#);
        assert_eq!(remove(r#"{"a":1,"usage":null}"#, "usage"), r#"{"a":1}"#);
        assert_eq!(remove(r#"{"usage":null}"#, "usage"), r#"{}"#);
    }

    #[test]
    fn not_an_object_or_empty() {
        assert!(members(b"[1,2]").is_none());
        assert!(members(b"{\"a\":1").is_none());
        assert_eq!(members(b"{}").unwrap(), vec![]);
    }
}
