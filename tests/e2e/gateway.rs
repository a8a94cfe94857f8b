//! End-to-end tests of the gateway on real sockets: proxying, plugins in the path, limits,
//! malformed requests, upstream faults, streaming, hot reload and graceful shutdown.

mod gateway {
    mod admin;
    mod faults;
    mod limits;
    mod proxy;
    mod reload;
    mod resilience;
    mod streaming;
    mod tls;
}
