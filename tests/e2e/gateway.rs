//! End-to-end tests of the gateway on real sockets: proxying, plugins in the path, limits,
//! malformed requests, upstream faults, streaming, hot reload, graceful shutdown, and the
//! Postgres and Redis capabilities and the row sinks on the machine's real servers.

mod gateway {
    mod admin;
    mod admin_openapi;
    mod audit;
    mod auth;
    mod auth_jwt;
    mod auth_jwt_forged;
    mod cache;
    mod cache_rfc;
    mod cache_shared;
    mod compress;
    mod compress_upstream;
    mod dashboard;
    mod decompress;
    mod dedup;
    mod dedup_replay;
    mod default_config;
    mod deploy_rules;
    mod example_cors;
    mod example_json_guard;
    mod example_signature;
    mod faults;
    mod finish;
    mod gpu_embed;
    mod gpu_leases;
    mod gpu_load;
    mod gpu_persist;
    mod gpu_reload;
    mod gpu_route;
    mod grpc;
    mod head_reads;
    mod hostile;
    mod http3;
    mod keys_cli;
    mod limits;
    mod messages;
    mod outbound;
    mod postgres;
    mod proxy;
    mod ratelimit;
    mod redis;
    mod redis_topologies;
    mod reload;
    mod resilience;
    mod response_edit;
    mod reuse;
    mod sinks;
    mod sinks_audit;
    mod streaming;
    mod tls;
    mod websocket;
}
