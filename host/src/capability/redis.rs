//! `redis`: grant checks now; the pooled Redis backend comes with the host-capabilities work.
//! Until then every granted call answers `not-configured`.

use crate::runtime::bindings::HostError;
use crate::runtime::bindings::sluice::plugin::redis::{Host, Value};
use crate::runtime::state::HostState;

impl HostState {
    fn redis_allowed(
        &self,
        kind: &str,
        name: &str,
        allowed: impl Fn(&crate::config::RedisGrant) -> &Vec<String>,
    ) -> Result<(), HostError> {
        let p = &self.plugin;
        let grant = p.grants.redis.as_ref();
        p.require(grant.is_some(), "redis")?;
        let listed = grant.is_some_and(|g| allowed(g).iter().any(|n| n.eq_ignore_ascii_case(name)));
        if !listed {
            return Err(HostError::Denied(format!(
                "redis: {kind} '{name}' is not granted to plugin '{}'",
                p.name
            )));
        }
        Err(p.not_configured("redis"))
    }
}

impl Host for HostState {
    async fn command(&mut self, name: String, _keys: Vec<String>, _args: Vec<Vec<u8>>) -> Result<Value, HostError> {
        self.redis_allowed("command", &name, |g| &g.commands)
            .map(|()| Value::Array(Vec::new()))
    }

    async fn run_script(&mut self, name: String, _keys: Vec<String>, _args: Vec<Vec<u8>>) -> Result<Value, HostError> {
        self.redis_allowed("script", &name, |g| &g.scripts)
            .map(|()| Value::Array(Vec::new()))
    }

    async fn publish(&mut self, channel: String, _message: Vec<u8>) -> Result<u64, HostError> {
        self.redis_allowed("channel", &channel, |g| &g.channels).map(|()| 0)
    }
}
