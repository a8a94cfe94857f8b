//! Builders shared by the unit tests.

use sluice_plugin_sdk::RequestHead;

/// A header list from `(name, value)` pairs.
pub use sluice_plugin_sdk::header_list as h;

/// A request to `https://example.com{path}`.
pub fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: method.into(),
        scheme: "https".into(),
        authority: "example.com".into(),
        path: path.into(),
        headers: h(headers),
        client_ip: "127.0.0.1".into(),
        request_id: "r".into(),
        route: "demo".into(),
        context: Vec::new(),
    }
}

/// `req` with chain context entries.
pub fn with_context(mut r: RequestHead, context: &[(&str, &str)]) -> RequestHead {
    r.context = context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    r
}

/// Builders for the decision tests.
pub mod decide {
    use super::h;
    use crate::dates::format_http_date;
    use crate::decide::{RequestAction, StoredMeta};
    use crate::settings::Settings;
    use sluice_plugin_sdk::ResponseHead;

    /// 2026-01-01T00:00:00Z in ms.
    pub const T0: u64 = 1_767_225_600_000;
    pub const S: u64 = 1000;

    pub fn date(at_ms: u64) -> String {
        format_http_date((at_ms / 1000) as i64)
    }

    pub fn settings(json: &str) -> Settings {
        Settings::from_json(json).unwrap()
    }

    /// A response stored at T0 with `Date: T0` and `headers`.
    pub fn stored(status: u16, headers: &[(&str, &str)]) -> StoredMeta {
        let mut all = h(&[("date", &date(T0))]);
        all.extend(h(headers));
        StoredMeta {
            status,
            headers: all,
            request_time_ms: T0,
            response_time_ms: T0,
            stored_at_ms: T0,
        }
    }

    pub fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status,
            headers: h(headers),
        }
    }

    pub fn hit(age_s: u64) -> RequestAction {
        RequestAction::Hit {
            not_modified: false,
            age_s,
            stale: false,
        }
    }

    pub fn revalidate(etag: &str) -> RequestAction {
        RequestAction::Revalidate {
            validators: vec![("if-none-match".into(), etag.into())],
        }
    }
}
