//! Every input kept in `fuzz/corpus/NAME/` (seeds, and what campaigns found) run through its
//! target: none may panic.

use std::path::Path;

#[test]
fn every_kept_input_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut ran = 0;
    for (name, target) in sluice_fuzz_targets::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
            ran += 1;
        }
    }
    assert!(ran >= sluice_fuzz_targets::TARGETS.len(), "the corpora are there");
}
