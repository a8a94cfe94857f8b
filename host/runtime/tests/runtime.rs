//! Tests of the plugin runtime with real plugins built for wasm32-wasip2: loading and
//! bad input, the compiled-component cache, instance strategies, chains, capabilities and
//! grants, and the isolation of every misbehaving test plugin.

mod runtime {
    mod cache;
    mod capabilities;
    mod chain;
    mod compatibility;
    mod isolation;
    mod loading;
    mod packed;
    mod pool;
    mod support;
}
