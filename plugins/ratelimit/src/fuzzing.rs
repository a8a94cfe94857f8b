//! The body of the fuzz target `ratelimit_settings` (`fuzz/fuzz_targets/ratelimit_settings.rs`):
//! the plugin's config parser and what it derives from a config, on arbitrary input, which
//! must never panic. The unit test runs it over the corpus kept in
//! `fuzz/corpus/ratelimit_settings/`.

/// Parses `data` as the plugin's JSON config and, when it is accepted, reads every limit's
/// quota for no tier and for each tier it names.
pub fn ratelimit_settings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(settings) = crate::settings::parse(text) else {
        return;
    };
    for limit in &settings.limits {
        let _ = limit.quota(None);
        for tier in limit.tiers.keys() {
            let _ = limit.quota(Some(tier));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kept_input_runs_through_the_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ratelimit_settings");
        let mut ran = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            super::ratelimit_settings(&std::fs::read(entry.unwrap().path()).unwrap());
            ran += 1;
        }
        assert!(ran > 0, "the corpus is there");
    }
}
