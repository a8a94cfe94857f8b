//! Paths of the plugins this workspace builds for `wasm32-wasip2`.
//!
//! The build script builds `plugins/` (the SDK and first-party plugins) and `tests/plugins/`
//! (test plugins) as part of any build of this crate; tests and benchmarks take the `.wasm`
//! paths from the constants here, for example [`GOOD`] for the `good` test plugin.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The embedded first-party plugin `name` (`builtin:NAME` in a config), if there is one.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}
