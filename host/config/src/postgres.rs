//! `[postgres]`: the gateway's Postgres pool, its migrations, and the statements plugins may
//! be granted by name.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The Postgres backend. Absent: no Postgres, plugins' postgres calls answer `not-configured`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// The connection URL, e.g. `postgres://sluice@127.0.0.1:5432/sluice`.
    pub url: String,
    /// The most connections the pool opens. Default 20.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections kept open even when idle. Default 2.
    #[serde(default = "default_min_connections")]
    pub min_connections: u32,
    /// How long a call waits for a free connection before it fails (`unavailable`), in ms.
    /// Default 5000.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// An idle connection above `min_connections` is closed after this long, in ms. Default
    /// 600000 (10 min).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A connection is replaced after this long, in ms. Default 1800000 (30 min).
    #[serde(default = "default_max_lifetime_ms")]
    pub max_lifetime_ms: u64,
    /// The server-side `statement_timeout` of every plugin statement, in ms. Default 2000.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// The most rows a plugin query returns; a query with more fails with `limit`.
    /// Default 1000.
    #[serde(default = "default_row_cap")]
    pub row_cap: usize,
    /// Whether `sluice run` applies pending migrations at start-up. Default true.
    #[serde(default = "default_true")]
    pub migrate_on_start: bool,
    /// Load the gateway config from the `gateway_config` row with this name instead of this
    /// file (whose `[postgres]` section still says how to reach Postgres), and reload whenever
    /// the row changes (LISTEN/NOTIFY). The file is the fallback when Postgres is unreachable
    /// at start.
    #[serde(default)]
    pub config_name: Option<String>,
    /// Statements plugins may be granted by name (`grants.postgres.statements`): name → SQL
    /// with `$1`, `$2`, ... parameters.
    #[serde(default)]
    pub statements: BTreeMap<String, String>,
}

fn default_max_connections() -> u32 {
    20
}
fn default_min_connections() -> u32 {
    2
}
fn default_acquire_timeout_ms() -> u64 {
    5_000
}
fn default_idle_timeout_ms() -> u64 {
    600_000
}
fn default_max_lifetime_ms() -> u64 {
    1_800_000
}
fn default_statement_timeout_ms() -> u64 {
    2_000
}
fn default_row_cap() -> usize {
    1_000
}
fn default_true() -> bool {
    true
}

impl PostgresSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err("postgres.url must start with postgres:// or postgresql://".into());
        }
        if self.max_connections == 0 || self.min_connections > self.max_connections {
            return Err(format!(
                "postgres: need 1 <= max_connections and min_connections <= max_connections, got min {} max {}",
                self.min_connections, self.max_connections
            ));
        }
        if self.acquire_timeout_ms == 0 || self.statement_timeout_ms == 0 || self.row_cap == 0 {
            return Err("postgres: acquire_timeout_ms, statement_timeout_ms and row_cap must be at least 1".into());
        }
        if self.config_name.is_some() && self.max_connections < 2 {
            return Err("postgres.config_name needs max_connections >= 2 (the config listener keeps one)".into());
        }
        if let Some((name, _)) = self.statements.iter().find(|(_, sql)| sql.trim().is_empty()) {
            return Err(format!("postgres.statements.{name} is empty"));
        }
        Ok(())
    }
}
