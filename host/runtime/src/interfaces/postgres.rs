//! `postgres`: statements on the gateway's pool. A plugin runs only what its grant allows: a
//! statement name from `[postgres.statements]`, or any SQL when the grant says `any = true`.

use crate::capability::Capability;
use crate::state::HostState;
use sluice_backends::postgres::PostgresError;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::postgres::{Host, PgValue, Rows};

impl HostState {
    /// The SQL to run for `statement` after the grant check, or why not.
    fn postgres_sql(
        &self,
        statement: &str,
    ) -> Result<(std::sync::Arc<sluice_backends::postgres::PostgresBackend>, String, bool), HostError> {
        let p = &self.plugin;
        let grant = p.grants.postgres.as_ref();
        p.require(Capability::Postgres)?;
        let named = grant.is_some_and(|g| g.statements.iter().any(|s| s == statement));
        let any = grant.is_some_and(|g| g.any);
        if !named && !any {
            return Err(HostError::Denied(format!(
                "postgres: statement '{statement}' is not granted to plugin '{}'",
                p.name
            )));
        }
        let Some(backend) = p.backends.postgres.clone() else {
            return Err(p.not_configured(Capability::Postgres));
        };
        let (sql, untrusted) = match backend.statement(statement) {
            Some(sql) if named || any => (sql.to_string(), false),
            _ if any => (statement.to_string(), true),
            _ => {
                return Err(p.invalid(
                    Capability::Postgres,
                    format!("no statement named '{statement}' in [postgres.statements]"),
                ));
            }
        };
        Ok((backend, sql, untrusted))
    }

    fn postgres_error(&self, e: PostgresError) -> HostError {
        let text = format!("postgres: {e} (plugin '{}')", self.plugin.name);
        match e {
            PostgresError::Unavailable(_) => HostError::Unavailable(text),
            PostgresError::Timeout(_) => HostError::Timeout(text),
            PostgresError::TooManyRows(_) => HostError::Limit(text),
            PostgresError::Invalid(_) => HostError::Invalid(text),
            _ => HostError::Other(text),
        }
    }
}

impl Host for HostState {
    async fn query(&mut self, statement: String, params: Vec<PgValue>) -> Result<Rows, HostError> {
        let (backend, sql, untrusted) = self.postgres_sql(&statement)?;
        let result = self.cpu.waiting_on(backend.query(&sql, params, untrusted)).await;
        result.map_err(|e| self.postgres_error(e))
    }

    async fn execute(&mut self, statement: String, params: Vec<PgValue>) -> Result<u64, HostError> {
        let (backend, sql, untrusted) = self.postgres_sql(&statement)?;
        let result = self.cpu.waiting_on(backend.execute(&sql, params, untrusted)).await;
        result.map_err(|e| self.postgres_error(e))
    }
}
