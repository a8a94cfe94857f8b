//! The body of the fuzz target `cache_fields` (`fuzz/fuzz_targets/cache_fields.rs`): the
//! cache's parsers of response and request fields on arbitrary input, which must never panic.
//! The unit test runs it over the corpus kept in `fuzz/corpus/cache_fields/`.

use crate::dates::{ResponseDates, parse_http_date};
use crate::directives::CacheControl;
use crate::policy::Targets;
use crate::targeted;
use crate::variants::Vary;

/// Reads `data` as header lines (`name: value`) and runs every field parser of the cache
/// over them, as a response's and as a request's.
pub fn cache_fields(data: &[u8]) {
    let headers: Vec<(String, Vec<u8>)> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
            Some((name, line[colon + 1..].trim_ascii().to_vec()))
        })
        .collect();
    let targets = Targets {
        own: Some("sluice-cache-control"),
        cdn: true,
    };
    let cc = targeted::response_directives(targets, &headers);
    let _ = (
        cc.forbids_stale(),
        cc.fields_to_strip(),
        cc.no_cache_all(),
        cc.private_all(),
    );
    let _ = CacheControl::parse_request(&headers);
    let _ = Vary::parse(&headers);
    for now_s in [0, 1_767_225_600, i64::from(i32::MAX)] {
        let _ = ResponseDates::parse(&headers, now_s);
        for (_, value) in &headers {
            if let Ok(text) = std::str::from_utf8(value) {
                let _ = parse_http_date(text, now_s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kept_input_runs_through_the_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cache_fields");
        let mut ran = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            super::cache_fields(&data);
            ran += 1;
        }
        assert!(ran > 0, "the corpus is there");
    }
}
