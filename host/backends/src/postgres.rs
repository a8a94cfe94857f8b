//! The gateway's Postgres pool (sqlx): created lazily so the gateway starts while Postgres is
//! down, migrations embedded from `migrations/`, typed statements for plugins with a
//! server-side statement timeout and a row cap, and pool metrics (size, idle, in use, waits,
//! acquire latency, exhaustion).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Executor, Row, TypeInfo};

use super::postgres_types::{Null, TimestampMicros, pg_epoch_offset_us};
use sluice_bindings::sluice::plugin::postgres::{PgValue, Rows};
use sluice_config::PostgresSettings;
use sluice_core::telemetry::metrics::{Counter, Histogram, Registry};

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Why a Postgres call failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The URL or options are invalid.
    #[error("postgres config: {0}")]
    Config(String),
    /// No connection could be had: Postgres is down, or every connection stayed busy for the
    /// acquire timeout.
    #[error("postgres unavailable: {0}")]
    Unavailable(String),
    /// The statement ran past its timeout.
    #[error("postgres statement timed out after {0} ms")]
    Timeout(u64),
    /// A query returned more rows than the row cap.
    #[error("the query returned more than {0} rows (add a LIMIT)")]
    TooManyRows(usize),
    /// A parameter or column could not be converted.
    #[error("postgres: {0}")]
    Invalid(String),
    /// Postgres refused the statement (its SQLSTATE and message).
    #[error("postgres error {code}: {message}")]
    Database {
        /// The SQLSTATE code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Migrations failed.
    #[error("postgres migrations: {0}")]
    Migrate(String),
}

/// Pool metric handles.
#[derive(Debug)]
struct PoolMetrics {
    acquires: Arc<Counter>,
    waits: Arc<Counter>,
    exhausted: Arc<Counter>,
    acquire_seconds: Arc<Histogram>,
}

/// A snapshot of the pool for the admin API and `/metrics`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolStats {
    /// Connections open (idle and in use).
    pub size: u32,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Connections handed out now.
    pub in_use: usize,
    /// The pool's maximum.
    pub max: u32,
    /// The pool's minimum.
    pub min: u32,
    /// Acquires so far.
    pub acquires: u64,
    /// Acquires that found no idle connection (they opened one or waited for one).
    pub waits: u64,
    /// Acquires that gave up after the acquire timeout.
    pub exhausted: u64,
}

/// The gateway's Postgres backend.
#[derive(Debug)]
pub struct PostgresBackend {
    pool: PgPool,
    settings: PostgresSettings,
    metrics: PoolMetrics,
}

impl PostgresBackend {
    /// A pool for `settings` that connects on first use (and keeps `min_connections` open
    /// once it can), so the gateway starts while Postgres is down. Every connection gets the
    /// statement timeout and `application_name = sluice`. Must be called on a tokio runtime.
    pub fn connect_lazy(settings: &PostgresSettings, registry: &Registry) -> Result<Arc<Self>, PostgresError> {
        let options: PgConnectOptions = settings
            .url
            .parse()
            .map_err(|e| PostgresError::Config(format!("postgres.url: {e}")))?;
        let options = options
            .application_name("sluice")
            .options([("statement_timeout", format!("{}", settings.statement_timeout_ms))]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
            .max_lifetime(Duration::from_millis(settings.max_lifetime_ms))
            .connect_lazy_with(options);
        let metrics = PoolMetrics {
            acquires: registry.counter("sluice_postgres_acquires_total", &[]),
            waits: registry.counter("sluice_postgres_acquire_waits_total", &[]),
            exhausted: registry.counter("sluice_postgres_pool_exhausted_total", &[]),
            acquire_seconds: registry.histogram("sluice_postgres_acquire_seconds", &[]),
        };
        Ok(Arc::new(PostgresBackend {
            pool,
            settings: settings.clone(),
            metrics,
        }))
    }

    /// The settings the pool was made with.
    pub fn settings(&self) -> &PostgresSettings {
        &self.settings
    }

    /// The SQL of the named statement, if the config defines it.
    pub fn statement(&self, name: &str) -> Option<&str> {
        self.settings.statements.get(name).map(String::as_str)
    }

    /// Applies the pending migrations; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, PostgresError> {
        let before = self.applied_versions().await.unwrap_or_default();
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            // Postgres is not there (yet): worth trying again.
            sqlx::migrate::MigrateError::Execute(inner) => match map_error(inner) {
                unavailable @ PostgresError::Unavailable(_) => unavailable,
                other => PostgresError::Migrate(other.to_string()),
            },
            other => PostgresError::Migrate(other.to_string()),
        })?;
        let after = self.applied_versions().await?;
        Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, PostgresError> {
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(rows.iter().filter_map(|r| r.try_get::<i64, _>(0).ok()).collect())
    }

    /// Whether Postgres answers `SELECT 1` within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), PostgresError> {
        match tokio::time::timeout(timeout, self.pool.execute("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(map_error(e)),
            Err(_) => Err(PostgresError::Unavailable(format!(
                "no answer to SELECT 1 within {timeout:?}"
            ))),
        }
    }

    /// The pool now.
    pub fn stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = self.pool.num_idle();
        PoolStats {
            size,
            idle,
            in_use: (size as usize).saturating_sub(idle),
            max: self.settings.max_connections,
            min: self.settings.min_connections,
            acquires: self.metrics.acquires.get(),
            waits: self.metrics.waits.get(),
            exhausted: self.metrics.exhausted.get(),
        }
    }

    async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, PostgresError> {
        self.metrics.acquires.add(1);
        if self.pool.num_idle() == 0 {
            self.metrics.waits.add(1);
        }
        let started = Instant::now();
        let result = self.pool.acquire().await;
        self.metrics.acquire_seconds.record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            if matches!(e, sqlx::Error::PoolTimedOut) {
                self.metrics.exhausted.add(1);
                PostgresError::Unavailable(format!(
                    "no connection free within {} ms (pool of {}, {} in use)",
                    self.settings.acquire_timeout_ms,
                    self.settings.max_connections,
                    self.stats().in_use
                ))
            } else {
                map_error(e)
            }
        })
    }

    /// The client-side bound of one statement: the server's statement timeout plus the
    /// acquire timeout and a second for the network.
    pub(crate) fn call_limit(&self) -> Duration {
        Duration::from_millis(self.settings.statement_timeout_ms + self.settings.acquire_timeout_ms + 1000)
    }

    /// Runs `sql` with `params` and returns its rows, at most the row cap. With `untrusted`
    /// (SQL a plugin wrote, under an `any` grant), the connection is cleaned after the
    /// statement (see `clean`).
    pub async fn query(&self, sql: &str, params: Vec<PgValue>, untrusted: bool) -> Result<Rows, PostgresError> {
        let cap = self.settings.row_cap;
        let work = async {
            let mut conn = self.acquire().await?;
            let result = Self::fetch_rows(&mut conn, sql, params, cap).await;
            if untrusted {
                Self::clean(&mut conn).await;
            }
            result
        };
        self.bounded(work).await
    }

    /// Undoes what a plugin's own SQL may have left on a pooled connection: an open
    /// transaction and session settings (`SET statement_timeout = 0`, `SET search_path`).
    /// A connection that cannot be cleaned is closed rather than reused.
    async fn clean(conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>) {
        let rolled_back = conn.execute("ROLLBACK").await.is_ok();
        if !rolled_back || conn.execute("RESET ALL").await.is_err() {
            conn.close_on_drop();
        }
    }

    async fn fetch_rows(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
        sql: &str,
        params: Vec<PgValue>,
        cap: usize,
    ) -> Result<Rows, PostgresError> {
        // The SQL is the operator's (a named statement) or a plugin's whose grant says `any`;
        // values are always bound as parameters, never spliced in.
        // Not prepared-and-cached: the cache is keyed by the SQL alone, so a later call with
        // other parameter types would be read with the first call's types.
        let query = sqlx::query_with(sqlx::AssertSqlSafe(sql.to_string()), arguments(params)?).persistent(false);
        let mut stream = query.fetch(&mut **conn);
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        while let Some(row) = stream.try_next().await.map_err(map_error)? {
            if rows.len() == cap {
                return Err(PostgresError::TooManyRows(cap));
            }
            if columns.is_empty() {
                columns = row.columns().iter().map(|c| c.name().to_string()).collect();
            }
            rows.push(decode_row(&row)?);
        }
        Ok(Rows { columns, rows })
    }

    /// `work` within the client-side limit; a timeout (either side's) names the statement
    /// timeout.
    async fn bounded<T>(&self, work: impl Future<Output = Result<T, PostgresError>>) -> Result<T, PostgresError> {
        match tokio::time::timeout(self.call_limit(), work).await {
            Ok(Err(PostgresError::Timeout(_))) | Err(_) => {
                Err(PostgresError::Timeout(self.settings.statement_timeout_ms))
            }
            Ok(result) => result,
        }
    }

    /// Runs `sql` with `params` and returns the number of rows it affected; `untrusted` as
    /// for [`Self::query`].
    pub async fn execute(&self, sql: &str, params: Vec<PgValue>, untrusted: bool) -> Result<u64, PostgresError> {
        let work = async {
            let mut conn = self.acquire().await?;
            let result = match arguments(params) {
                Ok(args) => sqlx::query_with(sqlx::AssertSqlSafe(sql.to_string()), args)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(map_error),
                Err(e) => Err(e),
            };
            if untrusted {
                Self::clean(&mut conn).await;
            }
            result
        };
        self.bounded(work).await
    }

    /// The config text stored under `name` in `gateway_config`, if there is such a row.
    pub async fn stored_config(&self, name: &str) -> Result<Option<String>, PostgresError> {
        let work = sqlx::query_scalar::<_, String>("SELECT config FROM gateway_config WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool);
        tokio::time::timeout(self.call_limit(), work)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            .map_err(map_error)
    }

    /// Calls `changed(name)` for every change of a stored config, and `changed("")` after every
    /// (re)connection (a change may have gone unnoticed meanwhile), until the process ends;
    /// reconnects (and says so) when the connection drops.
    pub async fn watch_configs<F, Fut>(&self, changed: F)
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for config changes in Postgres; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen("sluice_config").await {
                tracing::warn!(error = %e, "cannot LISTEN for config changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Changes made while nobody listened (before the first LISTEN, or while the
            // connection was down) sent no notification we saw: look once now.
            changed(String::new()).await;
            loop {
                match listener.recv().await {
                    Ok(note) => changed(note.payload().to_string()).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the config listener lost Postgres; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// The pool itself, for the gateway's own writers.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Typed parameters: NULL of unspecified type (Postgres infers it from the statement), and
/// timestamps in microseconds since the Unix epoch as `timestamptz`.
fn arguments(params: Vec<PgValue>) -> Result<PgArguments, PostgresError> {
    use sqlx::Arguments;
    let mut args = PgArguments::default();
    for (i, p) in params.into_iter().enumerate() {
        let added = match p {
            PgValue::Null => args.add(Null),
            PgValue::Boolean(b) => args.add(b),
            PgValue::Int(n) => args.add(n),
            PgValue::Float(f) => args.add(f),
            PgValue::Text(s) => args.add(s),
            PgValue::Bytes(b) => args.add(b),
            PgValue::Json(text) => {
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| PostgresError::Invalid(format!("parameter ${} is not valid JSON: {e}", i + 1)))?;
                args.add(sqlx::types::Json(value))
            }
            PgValue::TimestampUs(us) => args.add(TimestampMicros(us)),
        };
        added.map_err(|e| PostgresError::Invalid(format!("parameter ${}: {e}", i + 1)))?;
    }
    Ok(args)
}

/// One row as plugin values, by column type.
fn decode_row(row: &PgRow) -> Result<Vec<PgValue>, PostgresError> {
    let mut values = Vec::with_capacity(row.columns().len());
    for (i, column) in row.columns().iter().enumerate() {
        let type_name = column.type_info().name();
        let unsupported = || {
            PostgresError::Invalid(format!(
                "column '{}' has type {type_name}, which plugins cannot receive; cast it in the statement \
                 (to text, bigint, double precision, boolean, bytea, jsonb or timestamptz)",
                column.name()
            ))
        };
        let bad = |e: sqlx::Error| PostgresError::Invalid(format!("column '{}': {e}", column.name()));
        let raw = row.try_get_raw(i).map_err(bad)?;
        if sqlx::ValueRef::is_null(&raw) {
            values.push(PgValue::Null);
            continue;
        }
        let value = match type_name {
            "BOOL" => PgValue::Boolean(row.try_get(i).map_err(bad)?),
            "INT2" => PgValue::Int(row.try_get::<i16, _>(i).map_err(bad)?.into()),
            "INT4" => PgValue::Int(row.try_get::<i32, _>(i).map_err(bad)?.into()),
            "INT8" => PgValue::Int(row.try_get(i).map_err(bad)?),
            "FLOAT4" => PgValue::Float(row.try_get::<f32, _>(i).map_err(bad)?.into()),
            "FLOAT8" => PgValue::Float(row.try_get(i).map_err(bad)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => PgValue::Text(row.try_get(i).map_err(bad)?),
            "BYTEA" => PgValue::Bytes(row.try_get(i).map_err(bad)?),
            "JSON" | "JSONB" => {
                let value: sqlx::types::Json<serde_json::Value> = row.try_get(i).map_err(bad)?;
                PgValue::Json(value.0.to_string())
            }
            // Both are 8-byte microsecond counts from 2000-01-01 on the wire.
            "TIMESTAMPTZ" | "TIMESTAMP" => {
                let since_2000: i64 = row.try_get_unchecked(i).map_err(bad)?;
                let us = since_2000.checked_add(pg_epoch_offset_us()).ok_or_else(|| {
                    PostgresError::Invalid(format!("column '{}' is an infinite timestamp", column.name()))
                })?;
                PgValue::TimestampUs(us)
            }
            _ => return Err(unsupported()),
        };
        values.push(value);
    }
    Ok(values)
}

fn map_error(e: sqlx::Error) -> PostgresError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if code == "57014" {
                // query_canceled: the statement timeout fired.
                return PostgresError::Timeout(0);
            }
            PostgresError::Database {
                code,
                message: db.message().to_string(),
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            PostgresError::Unavailable(e.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => {
            PostgresError::Invalid(e.to_string())
        }
        other => PostgresError::Unavailable(other.to_string()),
    }
}
