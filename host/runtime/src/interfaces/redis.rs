//! `redis`: commands, scripts and publishing on the gateway's pool, each checked against the
//! plugin's grant first; keys are kept in the plugin's namespace by the backend.

use crate::capability::Capability;
use crate::state::HostState;
use sluice_backends::redis::{RedisBackend, RedisError};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::redis::{Host, Scalar, Value};

impl HostState {
    /// The backend, after checking that `name` is in the grant's `kind` list.
    fn redis_allowed(
        &self,
        kind: &str,
        name: &str,
        allowed: impl Fn(&sluice_config::RedisGrant) -> &Vec<String>,
    ) -> Result<std::sync::Arc<RedisBackend>, HostError> {
        let p = &self.plugin;
        let grant = p.grants.redis.as_ref();
        p.require(Capability::Redis)?;
        let listed = grant.is_some_and(|g| allowed(g).iter().any(|n| n.eq_ignore_ascii_case(name)));
        if !listed {
            return Err(HostError::Denied(format!(
                "redis: {kind} '{name}' is not granted to plugin '{}'",
                p.name
            )));
        }
        p.backends
            .redis
            .clone()
            .ok_or_else(|| p.not_configured(Capability::Redis))
    }

    fn redis_error(&self, e: RedisError) -> HostError {
        let text = format!("redis: {e} (plugin '{}')", self.plugin.name);
        match e {
            RedisError::Unavailable(_) => HostError::Unavailable(text),
            RedisError::Timeout(_) => HostError::Timeout(text),
            RedisError::Invalid(_) => HostError::Invalid(text),
            _ => HostError::Other(text),
        }
    }
}

/// A reply as a plugin sees it: a scalar, or a flat array (nested arrays flattened).
fn reply(v: fred::types::Value) -> Value {
    match v {
        fred::types::Value::Array(items) => {
            let mut flat = Vec::new();
            flatten(items, &mut flat);
            Value::Array(flat)
        }
        other => Value::Scalar(scalar(other)),
    }
}

fn flatten(items: Vec<fred::types::Value>, out: &mut Vec<Scalar>) {
    for item in items {
        match item {
            fred::types::Value::Array(inner) => flatten(inner, out),
            other => out.push(scalar(other)),
        }
    }
}

fn scalar(v: fred::types::Value) -> Scalar {
    use fred::types::Value as V;
    match v {
        V::Null => Scalar::Nil,
        V::Integer(n) => Scalar::Int(n),
        V::Double(f) => Scalar::Float(f),
        V::Boolean(b) => Scalar::Int(b.into()),
        V::String(s) => Scalar::Text(s.to_string()),
        V::Bytes(b) => Scalar::Bytes(b.to_vec()),
        other => Scalar::Text(format!("{other:?}")),
    }
}

impl Host for HostState {
    async fn command(&mut self, name: String, keys: Vec<String>, args: Vec<Vec<u8>>) -> Result<Value, HostError> {
        let backend = self.redis_allowed("command", &name, |g| &g.commands)?;
        let result = self
            .cpu
            .waiting_on(backend.command(&self.plugin.name, &name, &keys, args))
            .await;
        result.map(reply).map_err(|e| self.redis_error(e))
    }

    async fn run_script(&mut self, name: String, keys: Vec<String>, args: Vec<Vec<u8>>) -> Result<Value, HostError> {
        let backend = self.redis_allowed("script", &name, |g| &g.scripts)?;
        let result = self
            .cpu
            .waiting_on(backend.run_script(&self.plugin.name, &name, &keys, args))
            .await;
        result.map(reply).map_err(|e| self.redis_error(e))
    }

    async fn publish(&mut self, channel: String, message: Vec<u8>) -> Result<u64, HostError> {
        let backend = self.redis_allowed("channel", &channel, |g| &g.channels)?;
        let result = self
            .cpu
            .waiting_on(backend.publish(backend.channel(&channel), message))
            .await;
        result.map_err(|e| self.redis_error(e))
    }
}
