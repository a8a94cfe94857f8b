//! The body of the fuzz target `gpu_router_request` (`fuzz/fuzz_targets/gpu_router_request.rs`):
//! the scheduling headers and the OpenAI request bodies on arbitrary input, which must never
//! panic. The unit test runs it over the corpus kept in `fuzz/corpus/gpu_router_request/`.

use crate::openai::{self, Endpoint};
use crate::settings::Settings;

/// Reads `data` as header lines (`name: value`) up to the first empty line, then a body:
/// the headers through the scheduling-header parser, the body as each endpoint's request.
pub fn gpu_router_request(data: &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (&data[..0], data),
    };
    let headers: Vec<(String, Vec<u8>)> = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
            Some((name, line[colon + 1..].trim_ascii().to_vec()))
        })
        .collect();
    let settings = Settings::default();
    let _ = crate::headers::parse(&headers, Some("fuzz"), &settings);
    let endpoints = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"].map(Endpoint::of);
    for endpoint in endpoints.into_iter().flatten() {
        let _ = openai::parse(endpoint, body, &settings);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kept_input_runs_through_the_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/gpu_router_request");
        let mut ran = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            super::gpu_router_request(&std::fs::read(entry.unwrap().path()).unwrap());
            ran += 1;
        }
        assert!(ran > 0, "the corpus is there");
    }
}
