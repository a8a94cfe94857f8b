//! The capabilities a plugin may be given, in one table: each host interface of the world
//! with the grant that allows it and what backs it. The linker links the interfaces from it
//! (`linker.rs`), every host call checks its grant through it
//! ([`PluginContext::require`](crate::context::PluginContext::require)), `sluice plugin check`
//! reports a component's imports against it, and a test holds `docs/architecture.md` to it.

use sluice_config::Grants;

/// A host interface a plugin may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `log`: log lines with the plugin's name and the request id.
    Log,
    /// `metrics`: the plugin's own counters, gauges and histograms.
    Metrics,
    /// `clock`: wall-clock and monotonic time.
    Clock,
    /// `kv`: the plugin's private key/value store.
    Kv,
    /// `cache`: the gateway's response store.
    Cache,
    /// `redis`: granted commands, scripts and channels on the gateway's Redis.
    Redis,
    /// `postgres`: granted statements on the gateway's Postgres.
    Postgres,
    /// `http-client`: outbound HTTP to granted hosts.
    HttpClient,
    /// `audit`: decisions into the audit log.
    Audit,
    /// `crypto`: signature verification.
    Crypto,
    /// `gpu`: leases from the GPU scheduler.
    Gpu,
    /// `rate-limit`: GCRA limits kept by the host.
    RateLimit,
    /// `body`: directives about the request body.
    Body,
    /// `response`: header edits a request hook makes to its request's response.
    Response,
    /// `head`: which request headers and context entries an instance's hooks are passed.
    Head,
    /// `http-cache`: the HTTP cache's storage.
    HttpCache,
}

/// What the table says of one capability.
#[derive(Debug)]
pub struct Descriptor {
    /// The capability.
    pub capability: Capability,
    /// The WIT interface (`sluice:plugin/NAME`); also the name its errors start with.
    pub name: &'static str,
    /// The config that grants it (`grants.KEY`); `None`: every plugin has it.
    pub grant: Option<&'static str>,
    /// What backs it on the host.
    pub backend: &'static str,
    granted: fn(&Grants) -> bool,
}

const fn always(_: &Grants) -> bool {
    true
}

/// Every capability, in [`Capability`] order.
pub const CAPABILITIES: &[Descriptor] = &[
    Descriptor {
        capability: Capability::Log,
        name: "log",
        grant: None,
        backend: "the host's tracing subscriber",
        granted: always,
    },
    Descriptor {
        capability: Capability::Metrics,
        name: "metrics",
        grant: None,
        backend: "sluice_backends::metrics over the gateway's registry",
        granted: always,
    },
    Descriptor {
        capability: Capability::Clock,
        name: "clock",
        grant: None,
        backend: "sluice_core::time",
        granted: always,
    },
    Descriptor {
        capability: Capability::Kv,
        name: "kv",
        grant: Some("grants.kv"),
        backend: "sluice_backends::kv (memory), kv_shared (Redis)",
        granted: |g| g.kv,
    },
    Descriptor {
        capability: Capability::Cache,
        name: "cache",
        grant: Some("grants.cache"),
        backend: "sluice_backends::cache (memory), cache_shared (Redis)",
        granted: |g| g.cache,
    },
    Descriptor {
        capability: Capability::Redis,
        name: "redis",
        grant: Some("grants.redis"),
        backend: "sluice_backends::redis",
        granted: |g| g.redis.is_some(),
    },
    Descriptor {
        capability: Capability::Postgres,
        name: "postgres",
        grant: Some("grants.postgres"),
        backend: "sluice_backends::postgres",
        granted: |g| g.postgres.is_some(),
    },
    Descriptor {
        capability: Capability::HttpClient,
        name: "http-client",
        grant: Some("grants.http_client"),
        backend: "sluice_backends::http_client",
        granted: |g| g.http_client.is_some(),
    },
    Descriptor {
        capability: Capability::Audit,
        name: "audit",
        grant: Some("grants.audit"),
        backend: "sluice_backends::sink (the audit_log table)",
        granted: |g| g.audit,
    },
    Descriptor {
        capability: Capability::Crypto,
        name: "crypto",
        grant: None,
        backend: "sluice_backends::crypto (ring)",
        granted: always,
    },
    Descriptor {
        capability: Capability::Gpu,
        name: "gpu",
        grant: Some("grants.gpu"),
        backend: "sluice_backends::gpu (the fleet and its scheduler)",
        granted: |g| g.gpu,
    },
    Descriptor {
        capability: Capability::RateLimit,
        name: "rate-limit",
        grant: Some("grants.rate_limit"),
        backend: "sluice_backends::rate_limit (GCRA in Redis or memory)",
        granted: |g| g.rate_limit,
    },
    Descriptor {
        capability: Capability::Body,
        name: "body",
        grant: None,
        backend: "the request path (sluice_core::decompress)",
        granted: always,
    },
    Descriptor {
        capability: Capability::Response,
        name: "response",
        grant: None,
        backend: "the request path (the response chain)",
        granted: always,
    },
    Descriptor {
        capability: Capability::Head,
        name: "head",
        grant: None,
        backend: "the instance (its hooks' arguments)",
        granted: always,
    },
    Descriptor {
        capability: Capability::HttpCache,
        name: "http-cache",
        grant: Some("grants.http_cache"),
        backend: "sluice_backends::http_cache",
        granted: |g| g.http_cache,
    },
];

impl Capability {
    /// Its entry in [`CAPABILITIES`].
    pub fn descriptor(self) -> &'static Descriptor {
        &CAPABILITIES[self as usize]
    }

    /// Its WIT interface name.
    pub fn name(self) -> &'static str {
        self.descriptor().name
    }

    /// Whether `grants` give it.
    pub fn granted(self, grants: &Grants) -> bool {
        (self.descriptor().granted)(grants)
    }

    /// The capability of WIT interface `name` (`kv`, `http-client`), if there is one.
    pub fn by_name(name: &str) -> Option<Self> {
        CAPABILITIES.iter().find(|d| d.name == name).map(|d| d.capability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_capability_order_and_covers_every_import_of_the_world() {
        for (i, d) in CAPABILITIES.iter().enumerate() {
            assert_eq!(d.capability as usize, i, "{} is out of order", d.name);
        }
        let world = include_str!("../../../wit/world.wit");
        let imports: Vec<&str> = world
            .lines()
            .filter_map(|l| l.trim().strip_prefix("import ")?.strip_suffix(';'))
            .collect();
        let names: Vec<&str> = CAPABILITIES.iter().map(|d| d.name).collect();
        assert_eq!(imports, names, "world.wit's imports and the capability table differ");
    }

    #[test]
    fn the_architecture_doc_lists_every_capability_with_its_grant() {
        let doc = include_str!("../../../docs/architecture.md");
        for d in CAPABILITIES {
            let grant = d.grant.map_or("always".to_string(), |g| format!("`{g}`"));
            let row = format!("| `{}` | {grant} |", d.name);
            assert!(doc.contains(&row), "docs/architecture.md has no row starting {row}");
        }
    }

    #[test]
    fn grants_are_checked_through_the_table() {
        let grants = Grants {
            kv: true,
            ..Grants::default()
        };
        assert!(Capability::Kv.granted(&grants));
        assert!(!Capability::Cache.granted(&grants));
        assert!(Capability::Log.granted(&grants));
        assert_eq!(Capability::by_name("http-client"), Some(Capability::HttpClient));
        assert_eq!(Capability::by_name("nope"), None);
    }
}
