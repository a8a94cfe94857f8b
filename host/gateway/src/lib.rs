//! The gateway (floor 5, over `sluice-runtime`): the live routing state with hot reload, the
//! request path, the listeners, the admin API, ticks and plugin messages.
//!
//! The request path, stage by stage (each its own file):
//!
//! 1. [`accept`]: the request id and trace span; runs the stages below in order.
//! 2. [`route`]: path normalization, the matching route, header and body-size limits.
//! 3. [`request_chain`]: the route's request hooks decide (forward, answer, serve cached).
//! 4. [`forward`]: to the upstream (coalesced when asked), or to a GPU backend (`route-to`);
//!    answers from the HTTP cache in [`forward::cache_serve`]; a protocol switch (WebSocket)
//!    in [`forward::upgrade`], its joined connections then carried by [`tunnel`].
//! 5. [`response_chain`]: the response hooks of the plugins that ran, compression, storing.
//! 6. [`finish`]: the one place every routed response ends, the gateway's own refusals
//!    included, so response hooks and `on-log` run for them too.
//! 7. [`log`]: `on-log` after the body, the common headers, metrics, the access line.
//!
//! Around it: [`state`] (the live routing table and reloads), [`router`], [`server`] (the
//! listeners), [`admin`] (with the dashboard's per-second [`history`]), [`messages`], [`ticks`], [`app`] (a whole running gateway) and
//! [`demo`] (the embedded config's demo upstream).

pub mod accept;
pub mod admin;
pub mod answer;
pub mod app;
pub mod client_body;
pub mod demo;
pub mod exchange;
pub mod finish;
pub mod forward;
pub mod history;
pub mod log;
pub mod messages;
pub mod request_chain;
pub mod response_chain;
pub mod route;
pub mod router;
pub mod server;
pub mod state;
pub mod ticks;
pub mod tunnel;
