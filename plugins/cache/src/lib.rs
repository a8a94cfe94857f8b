//! Sluice's HTTP cache plugin: a shared cache following RFC 9111 (HTTP Caching) that reports
//! what it did in `Cache-Status` (RFC 9211).
//!
//! The decision logic is pure functions over header lists and times, one concern per module;
//! [`decide`] ties them together as [`decide::on_request`], [`decide::on_response`],
//! [`decide::on_upstream_error`] and [`decide::invalidations`]; `hooks.rs` carries the
//! decisions out through the host's `http-cache` interface (the host stores and serves the
//! bodies; they never pass through the plugin).
//!
//! The config reference and the list of implemented RFC behaviours are in
//! `plugins/cache/README.md`.

pub mod conditional;
pub mod dates;
pub mod decide;
pub mod directives;
pub mod freshness;
pub mod fuzzing;
pub mod invalidation;
pub mod key;
pub mod outcome;
pub mod policy;
pub mod settings;
pub mod status;
pub mod storable;
pub mod targeted;
pub mod variants;

#[cfg(test)]
mod testutil;

mod hooks;

use sluice_plugin_sdk::{Config, Hook, Plugin, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict};

use settings::Settings;

/// The plugin instance: the validated settings of the route.
pub struct Cache {
    /// The route's validated config.
    pub settings: Settings,
}

impl Plugin for Cache {
    const NAME: &'static str = "cache";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::ResponseHeaders];

    fn new(config: Config) -> Result<Self, String> {
        Ok(Cache {
            settings: Settings::from_json(config.as_str())?,
        })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        hooks::on_request(&self.settings, req)
    }

    fn on_response_headers(&mut self, req: &RequestHead, resp: &ResponseHead) -> ResponseVerdict {
        hooks::on_response(&self.settings, req, resp)
    }
}

sluice_plugin_sdk::export_plugin!(Cache);

#[cfg(test)]
mod tests {
    use super::*;

    fn init(json: &str) -> Result<Cache, String> {
        Cache::new(Config::new(json.into()))
    }

    #[test]
    fn the_plugin_describes_itself() {
        let info = sluice_plugin_sdk::describe::<Cache>();
        assert_eq!(info.name, "cache");
        assert_eq!(info.hooks, [Hook::RequestHeaders, Hook::ResponseHeaders]);
        assert_eq!(info.max_body_bytes, None);
    }

    #[test]
    fn init_accepts_good_config_and_names_the_key_in_bad_config() {
        let cache =
            init(r#"{"default_ttl_s": 60, "rules": [{"prefix": "/api/list", "ttl_s": 1800, "tags": ["list"]}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.settings.default_ttl_s, Some(60));
        assert!(init("{}").is_ok());
        for (json, needle) in [
            (r#"{"ttl_s": 5}"#, "unknown field `ttl_s`"),
            (r#"{"rules": [{"prefix": "api"}]}"#, "must be a path starting with `/`"),
            (r#"{"max_object_bytes": 0}"#, "max_object_bytes"),
            ("not json", "invalid config"),
        ] {
            let error = init(json).err().unwrap_or_else(|| panic!("{json} accepted"));
            assert!(error.contains(needle), "{json}: {error}");
        }
    }
}
