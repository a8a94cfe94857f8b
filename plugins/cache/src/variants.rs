//! `Vary` (RFC 9110 §12.5.5, RFC 9111 §4.1): the request header names a response was
//! selected by, and the normalized request values that pick a stored variant.

use sluice_plugin_sdk::Headers;

use crate::settings::is_token;

/// The `Vary` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// The header names (lower-case, deduped, sorted); empty without `Vary`.
    Fields(Vec<String>),
    /// `Vary: *` (alone or in a list): no later request can match; never stored (§4.1).
    Star,
    /// A member that is not a field name: treated like `*`, since no request can be matched
    /// against it reliably.
    Invalid,
}

impl Vary {
    /// Reads every `Vary` line of `headers`.
    pub fn parse(headers: &[(String, Vec<u8>)]) -> Self {
        let mut names = Vec::new();
        let mut invalid = false;
        for line in headers.get_all("vary") {
            let Ok(line) = std::str::from_utf8(line) else {
                invalid = true;
                continue;
            };
            for member in line.split(',').map(str::trim) {
                match member {
                    "" => {}
                    "*" => return Vary::Star,
                    m if is_token(m) => names.push(m.to_ascii_lowercase()),
                    _ => invalid = true,
                }
            }
        }
        if invalid {
            return Vary::Invalid;
        }
        names.sort();
        names.dedup();
        Vary::Fields(names)
    }

    /// The header names; empty for `*` and invalid.
    pub fn names(&self) -> &[String] {
        match self {
            Vary::Fields(names) => names,
            Vary::Star | Vary::Invalid => &[],
        }
    }
}

/// The value of header `name` in `headers` as a cache compares it (§4.1): every line joined
/// with `,`, the whitespace around each comma-separated member removed. `None` when absent
/// (which differs from present and empty).
pub fn normalized_value(headers: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    let members: Vec<&[u8]> = headers
        .get_all(name)
        .flat_map(|line| line.split(|&b| b == b',').map(<[u8]>::trim_ascii))
        .collect();
    (!members.is_empty()).then(|| members.join(&b','))
}

#[cfg(test)]
mod tests {
    use super::*;

    use sluice_plugin_sdk::header_list as h;

    fn f(names: &[&str]) -> Vary {
        Vary::Fields(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn rfc9110_12_5_5_vary_names_are_normalized() {
        for (lines, want) in [
            (vec![], f(&[])),
            (vec!["Accept-Encoding"], f(&["accept-encoding"])),
            (
                vec!["accept-encoding,  Accept , ACCEPT-ENCODING"],
                f(&["accept", "accept-encoding"]),
            ),
            (vec!["Origin", "accept"], f(&["accept", "origin"])),
            (vec![" , ,"], f(&[])),
            (vec!["*"], Vary::Star),
            (vec!["accept, *"], Vary::Star),
            (vec!["accept", " * "], Vary::Star),
            (vec!["accept encoding"], Vary::Invalid),
            (vec!["accept, x(y)"], Vary::Invalid),
        ] {
            let headers: Vec<_> = lines.iter().map(|l| ("Vary", *l)).collect();
            assert_eq!(Vary::parse(&h(&headers)), want, "{lines:?}");
        }
        assert_eq!(Vary::parse(&[("vary".into(), vec![0xff])]), Vary::Invalid);
        assert!(Vary::Star.names().is_empty());
        let long = vec!["x-a,"; 5000].concat();
        assert_eq!(Vary::parse(&h(&[("vary", &long)])), f(&["x-a"]));
    }

    #[test]
    fn rfc9111_4_1_values_are_compared_normalized() {
        let v = |pairs: &[(&str, &str)]| normalized_value(&h(pairs), "accept");
        assert_eq!(v(&[]), None);
        assert_eq!(v(&[("accept", "")]), Some(Vec::new()));
        assert_eq!(v(&[("Accept", "a/b ,  c/d")]), Some(b"a/b,c/d".to_vec()));
        assert_eq!(
            v(&[("accept", "a/b"), ("accept", " c/d")]),
            v(&[("accept", "a/b, c/d")])
        );
        assert_ne!(v(&[("accept", "a/b,,c/d")]), v(&[("accept", "a/b,c/d")]));
        assert_ne!(
            v(&[("accept", "A/B")]),
            v(&[("accept", "a/b")]),
            "values keep their case"
        );
    }
}
