//! Read helpers for request heads and header lists.

use crate::RequestHead;

/// Lookups over a header list (`list<tuple<string, list<u8>>>`). Names compare
/// case-insensitively.
pub trait Headers {
    /// The first value of header `name`, as bytes.
    fn get_bytes(&self, name: &str) -> Option<&[u8]>;

    /// The first value of header `name`, when it is valid UTF-8.
    fn get_str(&self, name: &str) -> Option<&str> {
        self.get_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of header `name`, in order.
    fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
}

impl Headers for [(String, Vec<u8>)] {
    fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A header list from `(name, value)` pairs, as hooks receive them (handy in tests).
pub fn header_list(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Convenience readers on a [`RequestHead`].
pub trait RequestExt {
    /// The first value of header `name` as text.
    fn header(&self, name: &str) -> Option<&str>;
    /// The path without the query.
    fn path_only(&self) -> &str;
    /// The query string without the `?`, if any.
    fn query(&self) -> Option<&str>;
    /// A context entry set by an earlier plugin in the chain.
    fn context(&self, key: &str) -> Option<&str>;
}

impl RequestExt for RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }

    fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    fn context(&self, key: &str) -> Option<&str> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}
