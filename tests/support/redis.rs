//! Redis helpers for the end-to-end tests: a direct fred client (to look behind the gateway),
//! a fresh key prefix per test, and routes running the redis-call test plugin.

/// The machine's Redis.
pub const REDIS: &str = "127.0.0.1:6379";

/// A key and channel prefix no other test uses.
pub fn prefix() -> String {
    format!("sluicet{:08x}", fastrand::u32(..))
}

/// A fred client connected to `url` (a `redis://`, `redis-cluster://` or `redis-sentinel://`
/// URL).
pub async fn client_for(url: &str) -> fred::clients::Client {
    use fred::interfaces::ClientLike;
    let client = fred::clients::Client::new(fred::types::config::Config::from_url(url).unwrap(), None, None, None);
    client
        .init()
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"));
    client
}

/// A fred client on the machine's Redis.
pub async fn direct() -> fred::clients::Client {
    client_for(&format!("redis://{REDIS}")).await
}

/// A plugin `NAME` (the redis-call test plugin) on route `/NAME`, with config
/// `{ op = OP, name = OP_NAME }` and `grants` (a TOML inline table's contents).
pub fn redis_call_route(name: &str, op: &str, op_name: &str, grants: &str) -> String {
    format!(
        "[plugins.{name}]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ {grants} }}\n\
         [[routes]]\nname = \"{name}\"\nmatch = {{ path = \"/{name}\" }}\n\
         plugins = [{{ plugin = \"{name}\", config = {{ op = \"{op}\", name = \"{op_name}\" }} }}]\n",
        sluice_artifacts::REDIS_CALL
    )
}

/// GET `path` on `gw` with the redis-call plugin's inputs: `x-keys` and `x-args` (JSON arrays
/// of strings).
pub async fn call(gw: &crate::Gateway, path: &str, keys: serde_json::Value, args: serde_json::Value) -> crate::Answer {
    crate::send(
        hyper::Request::get(gw.url(path))
            .header("x-keys", keys.to_string())
            .header("x-args", args.to_string())
            .body(crate::full(""))
            .unwrap(),
    )
    .await
}
