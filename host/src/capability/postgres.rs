//! `postgres`: grant checks now; the pooled Postgres backend comes with the
//! host-capabilities work. Until then every granted call answers `not-configured`.

use crate::runtime::bindings::HostError;
use crate::runtime::bindings::sluice::plugin::postgres::{Host, PgValue, Rows};
use crate::runtime::state::HostState;

impl HostState {
    fn postgres_allowed(&self, statement: &str) -> Result<(), HostError> {
        let p = &self.plugin;
        let grant = p.grants.postgres.as_ref();
        p.require(grant.is_some(), "postgres")?;
        let listed = grant.is_some_and(|g| g.any || g.statements.iter().any(|s| s == statement));
        if !listed {
            return Err(HostError::Denied(format!(
                "postgres: statement '{statement}' is not granted to plugin '{}'",
                p.name
            )));
        }
        Err(p.not_configured("postgres"))
    }
}

impl Host for HostState {
    async fn query(&mut self, statement: String, _params: Vec<PgValue>) -> Result<Rows, HostError> {
        self.postgres_allowed(&statement).map(|()| Rows {
            columns: Vec::new(),
            rows: Vec::new(),
        })
    }

    async fn execute(&mut self, statement: String, _params: Vec<PgValue>) -> Result<u64, HostError> {
        self.postgres_allowed(&statement).map(|()| 0)
    }
}
