//! Sluice's request deduplication plugin. For the methods it is configured for (GET and HEAD
//! by default) it computes a key from the method, the path and query, the caller's identity
//! and the configured headers, and returns the `coalesce` verdict: the host then lets
//! identical in-flight requests share one upstream fetch, and replays a successful answer to
//! identical requests for `replay_ttl_ms`.
//!
//! The config reference is `plugins/dedup/README.md`.

mod key;
mod settings;

use sluice_plugin_sdk::{CoalesceSpec, Config, Hook, Plugin, RequestExt, RequestHead, RequestVerdict};

use settings::Settings;

struct Dedup {
    settings: Settings,
}

/// Whether the client asked for a fresh answer (`Cache-Control: no-cache`, `no-store` or
/// `max-age=0`, or `Pragma: no-cache`): then it still shares an in-flight fetch, but is never
/// answered from a replayed one.
fn wants_fresh(req: &RequestHead) -> bool {
    let directives = req.header("cache-control").unwrap_or_default().to_ascii_lowercase();
    let fresh = directives
        .split(',')
        .map(str::trim)
        .any(|d| matches!(d, "no-cache" | "no-store" | "max-age=0"));
    fresh || req.header("pragma").is_some_and(|p| p.eq_ignore_ascii_case("no-cache"))
}

impl Dedup {
    /// The verdict for `req`.
    fn verdict(&self, req: &RequestHead) -> RequestVerdict {
        if !self.settings.methods.contains(&req.method) {
            return RequestVerdict::Continue;
        }
        let replay_ttl_ms = if wants_fresh(req) {
            0
        } else {
            self.settings.replay_ttl_ms
        };
        RequestVerdict::Coalesce(CoalesceSpec {
            key: key::key(req, &self.settings.headers),
            replay_ttl_ms,
            max_waiters: self.settings.max_waiters,
            share_errors: self.settings.share_errors,
        })
    }
}

impl Plugin for Dedup {
    const NAME: &'static str = "dedup";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {
        let settings = config.parse::<Settings>()?.validate()?;
        Ok(Dedup { settings })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        self.verdict(req)
    }
}

sluice_plugin_sdk::export_plugin!(Dedup);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(json: &str) -> Dedup {
        Dedup::new(Config::new(json.into())).unwrap_or_else(|e| panic!("{e}"))
    }

    fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            scheme: "http".into(),
            authority: "example".into(),
            path: "/items?page=2".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            client_ip: "127.0.0.1".into(),
            request_id: "r".into(),
            route: "demo".into(),
            context: Vec::new(),
        }
    }

    fn spec(v: RequestVerdict) -> CoalesceSpec {
        match v {
            RequestVerdict::Coalesce(spec) => spec,
            other => panic!("not coalesce: {other:?}"),
        }
    }

    #[test]
    fn get_and_head_are_coalesced_with_the_configured_spec() {
        let p = plugin(r#"{"replay_ttl_ms": 500, "max_waiters": 7, "share_errors": true}"#);
        let s = spec(p.verdict(&head("GET", &[])));
        assert_eq!((s.replay_ttl_ms, s.max_waiters, s.share_errors), (500, 7, true));
        assert_eq!(s.key.len(), 64);
        let h = spec(p.verdict(&head("HEAD", &[])));
        assert_ne!(h.key, s.key);
    }

    #[test]
    fn other_methods_pass_untouched_unless_configured() {
        let p = plugin("{}");
        assert!(matches!(p.verdict(&head("POST", &[])), RequestVerdict::Continue));
        let p = plugin(r#"{"methods": ["GET", "OPTIONS"]}"#);
        spec(p.verdict(&head("OPTIONS", &[])));
        assert!(matches!(p.verdict(&head("HEAD", &[])), RequestVerdict::Continue));
    }

    #[test]
    fn a_client_asking_for_a_fresh_answer_gets_no_replay() {
        let p = plugin("{}");
        assert_eq!(spec(p.verdict(&head("GET", &[]))).replay_ttl_ms, 30_000);
        for (name, value) in [
            ("cache-control", "no-cache"),
            ("cache-control", "private, No-Store"),
            ("cache-control", "max-age=0"),
            ("pragma", "no-cache"),
        ] {
            assert_eq!(
                spec(p.verdict(&head("GET", &[(name, value)]))).replay_ttl_ms,
                0,
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn bad_config_is_rejected_by_init() {
        let error = Dedup::new(Config::new(r#"{"max_waiters": 0}"#.into())).err().unwrap();
        assert!(error.contains("max_waiters"), "{error}");
        let error = Dedup::new(Config::new(r#"{"ttl": 1}"#.into())).err().unwrap();
        assert!(error.contains("unknown field"), "{error}");
    }
}
