//! The bodies of the host-side fuzz targets. Each takes arbitrary bytes and must return
//! without panicking, whatever they are; `fuzz/` runs them under libFuzzer (`cargo fuzz run
//! NAME`, see `bench/fuzz`), and `tests/corpora.rs` runs them over the corpora kept in
//! `fuzz/corpus/NAME/`, so every input a campaign found stays a regression test of
//! `cargo test --workspace`.

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderValue, Version};

/// A target: arbitrary bytes in, nothing out; it must not panic.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/NAME.rs` and `fuzz/corpus/NAME/` call it.
pub const TARGETS: [(&str, Target); 5] = [
    ("request_head", request_head),
    ("config", config),
    ("redis_entry", redis_entry),
    ("spill_line", spill_line),
    ("verdict", sluice_runtime::fuzzing::packed_verdict),
];

/// The request-head checks every request goes through before routing: the input's first
/// line is the path, the second the `Host` value, the third a `Range`, the fourth an
/// `If-Range`, the rest the stored response's header lines (`name: value`).
pub fn request_head(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let path = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let _ = sluice_core::headers::unsafe_path(&path);
    let mut request = HeaderMap::new();
    for (name, line) in [
        (http::header::HOST, lines.next()),
        (http::header::RANGE, lines.next()),
        (http::header::IF_RANGE, lines.next()),
    ] {
        if let Some(value) = line.and_then(|l| HeaderValue::from_bytes(l).ok()) {
            request.append(name, value);
        }
    }
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        let _ = sluice_core::headers::bad_host(version, &request);
    }
    let stored: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| {
            let text = String::from_utf8_lossy(l);
            let (name, value) = text.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().as_bytes().to_vec()))
        })
        .collect();
    let mut status = 200;
    let mut headers = stored.clone();
    let mut body = bytes::Bytes::from_static(b"0123456789abcdefghij");
    sluice_core::range::apply(
        "GET",
        &sluice_core::headers::to_plugin(&request),
        &mut status,
        &mut headers,
        &mut body,
    );
    assert!(body.len() <= 20, "a range never grows the body");
}

/// The gateway's config parser and validation (`sluice check`) on arbitrary text.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_config::GatewayConfig::parse(text, Path::new("fuzz.toml"), PathBuf::from("/nonexistent"));
    }
}

/// An HTTP-cache entry as read back from Redis (msgpack, zstd above a size, a marker byte).
pub fn redis_entry(data: &[u8]) {
    let _ = sluice_backends::http_cache::decode_redis_entry(data, 1 << 20);
}

/// A line of the sink's spill file as the replay reads it (a truncated or corrupt line must
/// be skipped, never trusted).
pub fn spill_line(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = sluice_backends::sink::parse_spill_line(line);
        }
    }
}
