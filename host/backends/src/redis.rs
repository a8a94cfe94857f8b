//! The gateway's Redis client pool (fred): standalone, Sentinel or Cluster from the URL,
//! reconnecting with backoff in the background (the gateway starts while Redis is down). For
//! plugins: every key is prefixed with the plugin's namespace (`PREFIX:{plugin}:key`), only
//! commands whose keys come first can be granted, named Lua scripts run with EVALSHA (loaded
//! again after a SCRIPT FLUSH or a restart), and each call has a time budget and goes through a
//! circuit breaker, so a dead Redis costs microseconds, not timeouts. Each request worker
//! gets a client of its own, so a hook's round trip stays on its thread.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fred::clients::{Client, Pool};
use fred::interfaces::{ClientLike, EventInterface, LuaInterface, PubsubInterface};
use fred::types::config::{Config, Options, ReconnectPolicy};
use fred::types::{ClusterHash, CustomCommand, Value};
use parking_lot::Mutex;

use sluice_config::RedisSettings;
use sluice_config::redis_commands::{fits, layout};
use sluice_core::breaker::{Admit, Breaker};
use sluice_core::telemetry::metrics::{Counter, Histogram, Registry};

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL or options are invalid.
    #[error("redis config: {0}")]
    Config(String),
    /// Redis is unreachable, or the breaker is open after repeated failures.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// The call ran past its time budget.
    #[error("redis call took longer than its {0} ms budget")]
    Timeout(u64),
    /// The command, script or arguments are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Redis answered with an error.
    #[error("redis error: {0}")]
    Server(String),
}

/// Call metric handles.
#[derive(Debug)]
struct CallMetrics {
    ok: Arc<Counter>,
    failed: Arc<Counter>,
    rejected: Arc<Counter>,
    seconds: Arc<Histogram>,
}

/// The gateway's Redis backend.
pub struct RedisBackend {
    pool: Pool,
    /// One client per request worker, built and connected from that worker on its first
    /// call, so a hook's Redis round trip runs on the hook's own thread: through the shared
    /// pool, whose connection tasks live on the main runtime, each call woke another thread
    /// twice (about six eventfd writes and three context switches per request with two
    /// calls). `None` in a cell whose client could not be built.
    local: Box<[OnceLock<Option<Client>>]>,
    settings: RedisSettings,
    breaker: Breaker,
    /// SHA1 of each script loaded so far.
    shas: Mutex<HashMap<String, String>>,
    /// The client config, for the subscriber connections.
    config: Config,
    /// Every plugin call: sent once (never again after a reconnect), failing at once while the
    /// connection is known to be down, within the budget. A call that times out may still run
    /// once (written, or queued during a reconnect, before the budget ran out).
    options: Options,
    metrics: CallMetrics,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A pool for `settings`, connecting (and reconnecting, with backoff) in the background.
    /// Must be called on a tokio runtime.
    pub fn connect(settings: &RedisSettings, registry: &Registry) -> Result<Arc<Self>, RedisError> {
        Self::connect_for_workers(settings, registry, 0)
    }

    /// [`RedisBackend::connect`], with a client of its own for each of `workers` request
    /// workers (`sluice_core::workers`), made on the worker's first call.
    pub fn connect_for_workers(
        settings: &RedisSettings,
        registry: &Registry,
        workers: usize,
    ) -> Result<Arc<Self>, RedisError> {
        let config = Config::from_url(&settings.url).map_err(|e| RedisError::Config(format!("redis.url: {e}")))?;
        let pool = builder(&config, settings)
            .build_pool(settings.pool_size)
            .map_err(|e| RedisError::Config(e.to_string()))?;
        let _ = pool.connect_pool();
        let metrics = CallMetrics {
            ok: registry.counter("sluice_redis_calls_total", &[("outcome", "ok")]),
            failed: registry.counter("sluice_redis_calls_total", &[("outcome", "failed")]),
            rejected: registry.counter("sluice_redis_calls_total", &[("outcome", "breaker_open")]),
            seconds: registry.histogram("sluice_redis_call_seconds", &[]),
        };
        Ok(Arc::new(RedisBackend {
            pool,
            local: (0..workers).map(|_| OnceLock::new()).collect(),
            breaker: Breaker::new(
                settings.breaker_failures,
                Duration::from_millis(settings.breaker_open_ms),
            ),
            settings: settings.clone(),
            shas: Mutex::new(HashMap::new()),
            config,
            options: Options {
                fail_fast: true,
                max_attempts: Some(1),
                timeout: Some(Duration::from_millis(settings.call_timeout_ms)),
                ..Options::default()
            },
            metrics,
        }))
    }

    /// The settings the pool was made with.
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// Whether the breaker keeps calls out now.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The key `key` of plugin `plugin`: `PREFIX:{plugin}:key`. The braces make the plugin's
    /// keys one Cluster hash slot, so its scripts may touch several of them.
    pub fn key(&self, plugin: &str, key: &str) -> String {
        format!("{}:{{{plugin}}}:{key}", self.settings.prefix)
    }

    /// The plugin channel `channel`: `PREFIX:chan:channel`. Plugin channels live apart from
    /// the host's own ([`RedisBackend::host_channel`]), so no grant can reach those.
    pub fn channel(&self, channel: &str) -> String {
        format!("{}:chan:{channel}", self.settings.prefix)
    }

    /// The plugin channel name of the full channel name `full`, when it is one.
    pub fn plugin_channel<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.settings.prefix.as_str())?.strip_prefix(":chan:")
    }

    /// The host's own channel `name` (cache invalidations): `PREFIX:name`.
    pub fn host_channel(&self, name: &str) -> String {
        format!("{}:{name}", self.settings.prefix)
    }

    /// The calling worker's own client once it is connected; the shared pool's next client
    /// off the workers, and while the worker's client connects or reconnects.
    fn next_client(&self) -> &Client {
        self.worker_client().unwrap_or_else(|| self.pool.next())
    }

    /// The calling worker's client, when it has one and it is connected. The first call on a
    /// worker builds it and starts its connection there (its tasks run on that worker).
    fn worker_client(&self) -> Option<&Client> {
        let cell = self.local.get(sluice_core::workers::current()?)?;
        let client = cell.get_or_init(|| {
            let client = builder(&self.config, &self.settings).build().ok()?;
            // The connection task runs on this worker; the handle is not needed.
            drop(client.connect());
            Some(client)
        });
        client.as_ref().filter(|c| c.is_connected())
    }

    /// The client for a plugin call, with the plugin-call options.
    fn client(&self) -> fred::clients::WithOptions<Client> {
        self.next_client().with_options(&self.options)
    }

    /// Runs `work` under the breaker and the call's time budget.
    async fn call<T, F>(&self, work: F) -> Result<T, RedisError>
    where
        F: Future<Output = Result<T, fred::error::Error>>,
    {
        if let Admit::No(wait) = self.breaker.admit() {
            self.metrics.rejected.add(1);
            return Err(RedisError::Unavailable(format!(
                "the circuit breaker is open after repeated failures (next try in {} ms)",
                wait.as_millis()
            )));
        }
        let budget = self.settings.call_timeout_ms;
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_millis(budget), work).await;
        self.metrics.seconds.record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(value)) => {
                self.breaker.success();
                self.metrics.ok.add(1);
                Ok(value)
            }
            Ok(Err(e)) if is_reply_error(&e) => {
                // Redis answered: it is up, the command was wrong.
                self.breaker.success();
                self.metrics.failed.add(1);
                Err(RedisError::Server(e.details().to_string()))
            }
            Ok(Err(e)) if *e.kind() == fred::error::ErrorKind::Timeout => {
                // fred's own timer fired first: the same outcome as the budget running out.
                self.breaker.failure();
                self.metrics.failed.add(1);
                Err(RedisError::Timeout(budget))
            }
            Ok(Err(e)) => {
                self.breaker.failure();
                self.metrics.failed.add(1);
                Err(RedisError::Unavailable(e.to_string()))
            }
            Err(_) => {
                self.breaker.failure();
                self.metrics.failed.add(1);
                Err(RedisError::Timeout(budget))
            }
        }
    }

    /// Runs command `name` for `plugin` with its `keys` namespaced, then `args`.
    pub async fn command(
        &self,
        plugin: &str,
        name: &str,
        keys: &[String],
        args: Vec<Vec<u8>>,
    ) -> Result<Value, RedisError> {
        let layout =
            layout(name).ok_or_else(|| RedisError::Invalid(format!("command '{name}' cannot be used by plugins")))?;
        fits(layout, keys.len(), args.len()).map_err(|why| RedisError::Invalid(format!("{name} {why}")))?;
        let mut all: Vec<Value> = keys.iter().map(|k| Value::from(self.key(plugin, k))).collect();
        all.extend(args.into_iter().map(|a| Value::Bytes(a.into())));
        let cmd = CustomCommand::new(name.to_ascii_uppercase(), ClusterHash::FirstKey, false);
        self.call(self.client().custom::<Value, Value>(cmd, all)).await
    }

    /// Runs script `name` for `plugin` with its `keys` namespaced: EVALSHA, loading the script
    /// first when this gateway has not yet (or Redis lost it).
    pub async fn run_script(
        &self,
        plugin: &str,
        name: &str,
        keys: &[String],
        args: Vec<Vec<u8>>,
    ) -> Result<Value, RedisError> {
        let source = self
            .settings
            .scripts
            .get(name)
            .ok_or_else(|| RedisError::Invalid(format!("no script named '{name}' in [redis.scripts]")))?;
        let keys: Vec<String> = keys.iter().map(|k| self.key(plugin, k)).collect();
        let args: Vec<Value> = args.into_iter().map(|a| Value::Bytes(a.into())).collect();
        self.eval_cached(name, source, keys, args).await
    }

    /// Runs `source` (cached as `name`) with full key names: for the host's own scripts.
    pub async fn eval_cached(
        &self,
        name: &str,
        source: &str,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value, RedisError> {
        let known = self.shas.lock().get(name).cloned();
        let sha = match known {
            Some(sha) => sha,
            None => self.load(name, source).await?,
        };
        match self
            .call(
                self.client()
                    .evalsha::<Value, _, _, _>(&sha, keys.clone(), args.clone()),
            )
            .await
        {
            Err(RedisError::Server(e)) if e.starts_with("NOSCRIPT") => {
                tracing::info!(
                    script = name,
                    "redis lost the script (SCRIPT FLUSH or restart); loading it again"
                );
                let sha = self.load(name, source).await?;
                self.call(self.client().evalsha::<Value, _, _, _>(&sha, keys, args))
                    .await
            }
            other => other,
        }
    }

    async fn load(&self, name: &str, source: &str) -> Result<String, RedisError> {
        // In a Cluster the script must be on every primary: EVALSHA goes to the key's node.
        let sha: String = if self.pool.next().is_clustered() {
            self.call(self.pool.next().script_load_cluster(source)).await?
        } else {
            self.call(self.client().script_load(source)).await?
        };
        self.shas.lock().insert(name.to_string(), sha.clone());
        Ok(sha)
    }

    /// Runs `name` with full key names and no namespace or allow-list: for the host's own
    /// use (the shared kv), under the same budget and breaker as plugin calls.
    pub async fn raw(&self, name: &'static str, args: Vec<Value>) -> Result<Value, RedisError> {
        let cmd = CustomCommand::new_static(name, ClusterHash::FirstKey, false);
        self.call(self.client().custom::<Value, Value>(cmd, args)).await
    }

    /// Runs `commands` (with full key names, for the host's own use) in one pipeline, one
    /// round trip (one per node in a Cluster), under the call budget and the breaker.
    pub async fn raw_pipeline(&self, commands: Vec<(&'static str, Vec<Value>)>) -> Result<(), RedisError> {
        self.raw_pipeline_values(commands).await.map(drop)
    }

    /// [`RedisBackend::raw_pipeline`], keeping each command's reply, in order.
    pub async fn raw_pipeline_values(
        &self,
        commands: Vec<(&'static str, Vec<Value>)>,
    ) -> Result<Vec<Value>, RedisError> {
        if commands.len() == 1 {
            let (name, args) = commands.into_iter().next().expect("one command");
            return Ok(vec![self.raw(name, args).await?]);
        }
        let pipeline = self.next_client().pipeline();
        for (name, args) in commands {
            let cmd = CustomCommand::new_static(name, ClusterHash::FirstKey, false);
            let _: () = pipeline
                .custom(cmd, args)
                .await
                .map_err(|e| RedisError::Invalid(e.to_string()))?;
        }
        self.call(pipeline.all::<Vec<Value>>()).await
    }

    /// Every key whose full name matches the glob `pattern`, on every primary when Redis is
    /// a Cluster. Pages of up to 500 keys, each under the call budget.
    pub async fn scan_keys(&self, pattern: &str) -> Result<Vec<String>, RedisError> {
        use fred::types::scan::Scanner;
        use futures_util::StreamExt;
        let client = self.pool.next();
        let mut pages: std::pin::Pin<Box<dyn futures_util::Stream<Item = _> + Send>> = if client.is_clustered() {
            Box::pin(client.scan_cluster(pattern.to_string(), Some(500), None))
        } else {
            Box::pin(client.scan(pattern.to_string(), Some(500), None))
        };
        let mut keys = Vec::new();
        while let Some(mut page) = self.call(async { pages.next().await.transpose() }).await? {
            for key in page.take_results().unwrap_or_default() {
                if let Some(key) = key.into_string() {
                    keys.push(key);
                }
            }
            page.next();
        }
        Ok(keys)
    }

    /// Subscribes to `channel` (a full name) on a connection of its own, in the background:
    /// `on_message` gets each message's text; `on_lost` runs whenever messages may have been
    /// missed (the connection came back, or the reader fell behind). Subscribes again after
    /// every reconnect.
    pub fn subscribe<M, L>(&self, channel: &str, on_message: M, on_lost: L)
    where
        M: Fn(String) + Send + Sync + 'static,
        L: Fn() + Send + Sync + 'static,
    {
        let client = self.subscriber_client();
        let channel = channel.to_string();
        tokio::spawn(async move {
            let mut messages = client.message_rx();
            let mut reconnects = client.reconnect_rx();
            while let Err(e) = client.init().await {
                tracing::warn!(error = %e, %channel, "cannot subscribe yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let _resubscribe = client.manage_subscriptions();
            while let Err(e) = client.subscribe(channel.clone()).await {
                tracing::warn!(error = %e, %channel, "SUBSCRIBE failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => on_message(message.value.as_string().unwrap_or_default()),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => on_lost(),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    reconnected = reconnects.recv() => {
                        if reconnected.is_ok() {
                            on_lost();
                        }
                    }
                }
            }
        });
    }

    /// A subscriber connection of its own (not yet connected), reconnecting with the pool's
    /// backoff.
    pub fn subscriber_client(&self) -> fred::clients::SubscriberClient {
        fred::clients::SubscriberClient::new(
            self.config.clone(),
            None,
            None,
            Some(ReconnectPolicy::new_exponential(
                0,
                100,
                self.settings.reconnect_max_ms,
                2,
            )),
        )
    }

    /// Publishes `message` on the full channel name `channel` (see [`RedisBackend::channel`]
    /// and [`RedisBackend::host_channel`]); returns how many subscribers got it.
    pub async fn publish(&self, channel: String, message: Vec<u8>) -> Result<u64, RedisError> {
        let n: i64 = self
            .call(self.client().publish(channel, Value::Bytes(message.into())))
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Waits until the pool is connected, at most `timeout`; whether it is. For short-lived
    /// users (the `sluice keys` command) whose first call must not fail fast.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.pool.wait_for_connect()).await,
            Ok(Ok(()))
        )
    }

    /// Whether Redis answers PING within `timeout` (not counted by the breaker).
    pub async fn ping(&self, timeout: Duration) -> Result<(), RedisError> {
        match tokio::time::timeout(timeout, self.pool.next().ping::<Value>(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RedisError::Unavailable(e.to_string())),
            Err(_) => Err(RedisError::Unavailable(format!("no answer to PING within {timeout:?}"))),
        }
    }

    /// The pool, for the gateway's own use and the benchmarks.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// A client builder for `config` with the connection timeouts and reconnect policy of
/// `settings`: the shared pool and every worker's client are built alike.
fn builder(config: &Config, settings: &RedisSettings) -> fred::types::Builder {
    let mut builder = fred::types::Builder::from_config(config.clone());
    builder
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_millis(settings.connect_timeout_ms);
            c.internal_command_timeout = Duration::from_millis(settings.connect_timeout_ms);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, settings.reconnect_max_ms, 2));
    builder
}

/// Whether `e` is an error reply from Redis (rather than a connection or protocol failure).
fn is_reply_error(e: &fred::error::Error) -> bool {
    use fred::error::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::InvalidCommand
            | ErrorKind::InvalidArgument
            | ErrorKind::Parse
            | ErrorKind::NotFound
            | ErrorKind::Unknown
    ) && !e.details().is_empty()
}

/// `s` with Redis glob characters escaped, for SCAN MATCH.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The first byte of a framed value: msgpack as it is.
const PLAIN: u8 = 0x00;
/// The first byte of a framed value: zstd-compressed msgpack.
const COMPRESSED: u8 = 0x01;

/// `value` as msgpack behind a one-byte marker, zstd-compressed (level 3) when the msgpack is
/// longer than `compress_above` bytes: how the host keeps responses in Redis.
pub fn frame<T: serde::Serialize>(value: &T, compress_above: usize) -> Result<Vec<u8>, String> {
    let packed = rmp_serde::to_vec(value).map_err(|e| e.to_string())?;
    if packed.len() > compress_above {
        let mut out = vec![COMPRESSED];
        out.extend(zstd::bulk::compress(&packed, 3).map_err(|e| e.to_string())?);
        return Ok(out);
    }
    let mut out = Vec::with_capacity(packed.len() + 1);
    out.push(PLAIN);
    out.extend(packed);
    Ok(out)
}

/// The value [`frame`] made of it; `max` bounds the decompressed size.
pub fn unframe<T: serde::de::DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, String> {
    match bytes.split_first() {
        Some((&COMPRESSED, rest)) => {
            let unpacked = zstd::bulk::decompress(rest, max).map_err(|e| e.to_string())?;
            rmp_serde::from_slice(&unpacked).map_err(|e| e.to_string())
        }
        Some((&PLAIN, rest)) => rmp_serde::from_slice(rest).map_err(|e| e.to_string()),
        _ => Err("not a stored response".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real Redis on 127.0.0.1:6379, in a key prefix of its own.
    #[tokio::test]
    async fn a_request_worker_calls_through_a_client_of_its_own() {
        let settings: RedisSettings = serde_json::from_value(serde_json::json!({
            "url": "redis://127.0.0.1:6379",
            "prefix": format!("sluicetest-worker-client-{}", std::process::id()),
            "call_timeout_ms": 1000,
        }))
        .unwrap();
        let redis = RedisBackend::connect_for_workers(&settings, &Registry::new(), 1).unwrap();
        assert!(
            redis.wait_connected(Duration::from_secs(5)).await,
            "no Redis at 127.0.0.1:6379"
        );
        let workers = sluice_core::workers::Workers::start(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let on_worker = redis.clone();
        workers.spawn(async move {
            // The first calls go through the shared pool while the worker's client connects.
            let mut own = false;
            for _ in 0..500 {
                let answer = on_worker.raw("PING", Vec::new()).await;
                assert!(answer.is_ok(), "{answer:?}");
                if on_worker.worker_client().is_some() {
                    own = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let through_own = on_worker.raw("PING", Vec::new()).await;
            let _ = tx.send((own, through_own.is_ok()));
        });
        let (own, through_own) = rx.await.unwrap();
        assert!(own, "the worker's own client never connected");
        assert!(through_own, "a call through the worker's own client failed");
        assert!(
            redis.worker_client().is_none(),
            "off the workers, calls use the shared pool"
        );
        assert!(redis.local[0].get().is_some_and(Option::is_some));
    }
}
