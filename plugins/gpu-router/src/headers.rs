//! The scheduling headers of an inference request: priority, workflow, GPU needs and tenant.
//! Each is checked; a malformed or out-of-range value is a 400, never silently ignored.

use sluice_plugin_sdk::Headers;

use crate::errors::ApiError;
use crate::settings::Settings;

/// The longest tenant, workflow id or request id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The most request ids `x-workflow-depends-on` may name.
pub const MAX_DEPENDS_ON: usize = 64;

/// What the headers say about scheduling a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduling {
    /// The effective priority, 1 (lowest) to 10 (highest): `x-workflow-priority` when given,
    /// else `x-priority`, else the configured default.
    pub priority: u8,
    /// The tenant: the configured tenant header, else the `tenant` context entry, else
    /// `default`.
    pub tenant: String,
    /// `x-workflow-id`.
    pub workflow_id: Option<String>,
    /// `x-workflow-depends-on`: request ids this request waits for.
    pub depends_on: Vec<String>,
    /// `x-required-gpus`: GPUs needed on one backend (0 when absent).
    pub required_gpus: u32,
    /// `x-min-memory-mb`: GPU memory needed in MB (0 when absent).
    pub min_memory_mb: u32,
}

/// Reads the scheduling headers from `headers`; `context_tenant` is the `tenant` entry an
/// earlier plugin attached, if any.
pub fn parse(
    headers: &[(String, Vec<u8>)],
    context_tenant: Option<&str>,
    settings: &Settings,
) -> Result<Scheduling, ApiError> {
    let priority = priority_header(headers, "x-priority")?;
    let workflow_priority = priority_header(headers, "x-workflow-priority")?;
    let tenant = match text(headers, &settings.tenant_header)? {
        Some(t) => t,
        None => context_tenant
            .filter(|t| !t.is_empty())
            .unwrap_or("default")
            .to_string(),
    };
    let depends_on = match headers.get_bytes("x-workflow-depends-on") {
        Some(list) => depends_on(list)?,
        None => Vec::new(),
    };
    Ok(Scheduling {
        priority: workflow_priority.or(priority).unwrap_or(settings.default_priority),
        tenant,
        workflow_id: text(headers, "x-workflow-id")?,
        depends_on,
        required_gpus: number(headers, "x-required-gpus")?.unwrap_or(0),
        min_memory_mb: number(headers, "x-min-memory-mb")?.unwrap_or(0),
    })
}

/// A priority header: absent, or a whole number 1–10 (`invalid_priority` otherwise).
fn priority_header(headers: &[(String, Vec<u8>)], name: &str) -> Result<Option<u8>, ApiError> {
    let Some(raw) = headers.get_bytes(name) else {
        return Ok(None);
    };
    let value = digits(raw).filter(|p| (1..=10).contains(p));
    match value {
        Some(p) => Ok(Some(p as u8)),
        None => Err(ApiError::bad_request(
            "invalid_priority",
            Some(name),
            format!(
                "The {name} header must be a whole number from 1 to 10, not {:?}.",
                String::from_utf8_lossy(raw)
            ),
        )),
    }
}

/// A count header: absent, or a whole number that fits in 32 bits (`invalid_header`).
fn number(headers: &[(String, Vec<u8>)], name: &str) -> Result<Option<u32>, ApiError> {
    let Some(raw) = headers.get_bytes(name) else {
        return Ok(None);
    };
    match digits(raw).and_then(|n| u32::try_from(n).ok()) {
        Some(n) => Ok(Some(n)),
        None => Err(invalid(
            name,
            format!(
                "The {name} header must be a whole number from 0 to {}, not {:?}.",
                u32::MAX,
                String::from_utf8_lossy(raw)
            ),
        )),
    }
}

/// A whole number of ASCII digits (surrounding spaces allowed, no sign), up to u64.
fn digits(raw: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A text header: absent, or 1 to [`MAX_ID_BYTES`] of visible ASCII after trimming.
fn text(headers: &[(String, Vec<u8>)], name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get_bytes(name) else {
        return Ok(None);
    };
    let value = std::str::from_utf8(raw).map(str::trim).unwrap_or_default();
    if !is_id(value) {
        return Err(invalid(
            name,
            format!("The {name} header must be 1 to {MAX_ID_BYTES} visible ASCII characters without spaces."),
        ));
    }
    Ok(Some(value.to_string()))
}

/// Whether `value` is 1 to [`MAX_ID_BYTES`] of visible ASCII (no spaces).
fn is_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ID_BYTES && value.bytes().all(|b| b.is_ascii_graphic())
}

/// The comma-separated request ids of `x-workflow-depends-on` (spaces around each allowed);
/// an empty or malformed item is an error.
fn depends_on(raw: &[u8]) -> Result<Vec<String>, ApiError> {
    let list = std::str::from_utf8(raw).unwrap_or_default();
    let ids: Vec<String> = list.split(',').map(|id| id.trim().to_string()).collect();
    if !ids.iter().all(|id| is_id(id)) || ids.len() > MAX_DEPENDS_ON {
        return Err(invalid(
            "x-workflow-depends-on",
            format!(
                "The x-workflow-depends-on header must list 1 to {MAX_DEPENDS_ON} request ids separated by commas."
            ),
        ));
    }
    Ok(ids)
}

fn invalid(name: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_header", Some(name), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    use sluice_plugin_sdk::header_list as h;

    fn ok(pairs: &[(&str, &str)]) -> Scheduling {
        parse(&h(pairs), None, &Settings::default()).unwrap()
    }

    fn err(pairs: &[(&str, &str)]) -> ApiError {
        parse(&h(pairs), None, &Settings::default()).unwrap_err()
    }

    #[test]
    fn absent_headers_give_the_defaults() {
        let s = ok(&[]);
        assert_eq!(
            s,
            Scheduling {
                priority: 5,
                tenant: "default".into(),
                workflow_id: None,
                depends_on: vec![],
                required_gpus: 0,
                min_memory_mb: 0,
            }
        );
        let custom = Settings {
            default_priority: 3,
            ..Settings::default()
        };
        assert_eq!(parse(&[], None, &custom).unwrap().priority, 3);
    }

    #[test]
    fn every_header_is_read() {
        let s = ok(&[
            ("x-priority", "8"),
            ("x-tenant", "acme"),
            ("x-workflow-id", "wf-1"),
            ("x-workflow-depends-on", "req-a, req-b,req-c"),
            ("x-required-gpus", "2"),
            ("x-min-memory-mb", " 40960 "),
        ]);
        assert_eq!(s.priority, 8);
        assert_eq!(s.tenant, "acme");
        assert_eq!(s.workflow_id.as_deref(), Some("wf-1"));
        assert_eq!(s.depends_on, ["req-a", "req-b", "req-c"]);
        assert_eq!((s.required_gpus, s.min_memory_mb), (2, 40960));
    }

    #[test]
    fn workflow_priority_wins_over_request_priority() {
        assert_eq!(ok(&[("x-priority", "9"), ("x-workflow-priority", "2")]).priority, 2);
        assert_eq!(ok(&[("x-workflow-priority", "7")]).priority, 7);
        assert_eq!(ok(&[("x-priority", "1")]).priority, 1);
        assert_eq!(ok(&[("x-priority", "10")]).priority, 10);
    }

    #[test]
    fn tenant_comes_from_the_header_then_the_context() {
        let s = Settings::default();
        let with_header = h(&[("x-tenant", "a")]);
        assert_eq!(parse(&with_header, Some("b"), &s).unwrap().tenant, "a");
        assert_eq!(parse(&[], Some("b"), &s).unwrap().tenant, "b");
        assert_eq!(parse(&[], Some(""), &s).unwrap().tenant, "default");
        let org = Settings {
            tenant_header: "x-org".into(),
            ..Settings::default()
        };
        assert_eq!(
            parse(&h(&[("x-org", "o"), ("x-tenant", "t")]), None, &org)
                .unwrap()
                .tenant,
            "o"
        );
    }

    #[test]
    fn bad_priorities_are_invalid_priority() {
        for (name, value) in [
            ("x-priority", "0"),
            ("x-priority", "11"),
            ("x-priority", "-1"),
            ("x-priority", "+5"),
            ("x-priority", "5.0"),
            ("x-priority", "high"),
            ("x-priority", ""),
            ("x-priority", "99999999999999999999999"),
            ("x-workflow-priority", "0"),
            ("x-workflow-priority", "ten"),
        ] {
            let e = err(&[(name, value)]);
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (400, "invalid_priority", Some(name)),
                "{value}"
            );
        }
    }

    #[test]
    fn bad_other_headers_are_invalid_header() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let many = vec!["r"; MAX_DEPENDS_ON + 1].join(",");
        for (name, value) in [
            ("x-required-gpus", "-1"),
            ("x-required-gpus", "two"),
            ("x-required-gpus", "4294967296"),
            ("x-min-memory-mb", "1.5"),
            ("x-min-memory-mb", ""),
            ("x-workflow-id", ""),
            ("x-workflow-id", "has space"),
            ("x-workflow-id", long.as_str()),
            ("x-tenant", "   "),
            ("x-tenant", "caf\u{e9}"),
            ("x-workflow-depends-on", "a,,b"),
            ("x-workflow-depends-on", "a,"),
            ("x-workflow-depends-on", many.as_str()),
            ("x-workflow-depends-on", ""),
            ("x-workflow-depends-on", "a b,c"),
        ] {
            let e = err(&[(name, value)]);
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (400, "invalid_header", Some(name)),
                "{value}"
            );
        }
        let binary = vec![("x-tenant".to_string(), vec![0xff, 0xfe])];
        assert_eq!(
            parse(&binary, None, &Settings::default()).unwrap_err().code,
            "invalid_header"
        );
    }
}
