//! The [`Plugin`] trait: one method per hook, each with a default.

use crate::{Config, Hook, LogEntry, PluginInfo, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict};

/// The request headers and context entries a plugin's hooks read, from [`Plugin::reads`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Header names (any case).
    pub headers: Vec<String>,
    /// Context keys.
    pub context: Vec<String>,
}

impl Reads {
    /// Reads of these `headers` and `context` entries.
    pub fn new<H, C>(headers: H, context: C) -> Self
    where
        H: IntoIterator,
        H::Item: Into<String>,
        C: IntoIterator,
        C::Item: Into<String>,
    {
        Reads {
            headers: headers.into_iter().map(Into::into).collect(),
            context: context.into_iter().map(Into::into).collect(),
        }
    }
}

/// A Sluice plugin. One value lives in each instance the host creates; the host may run many
/// instances of a plugin at once and may replace an instance at any time (after N uses, a
/// trap, or memory growth), so state kept in `self` is a per-instance cache, never the truth.
pub trait Plugin: Sized + 'static {
    /// The plugin's name, for logs and metrics.
    const NAME: &'static str;

    /// The plugin's version; defaults to the crate version of the plugin.
    const VERSION: &'static str = "0.1.0";

    /// The hooks this plugin implements. The host calls only these, so list exactly the
    /// hooks you override.
    const HOOKS: &'static [Hook];

    /// The most request-body bytes this plugin may ask for with `need-body`; `None` when it
    /// never reads bodies.
    const MAX_BODY_BYTES: Option<u32> = None;

    /// Builds the instance from the route's config. Runs once per instance before any hook.
    /// Return `Err` with a message an operator understands to reject the config.
    fn new(config: Config) -> Result<Self, String>;

    /// What this instance's hooks read of the request head, asked once right after
    /// [`Plugin::new`]. `Some`: `on_request_headers`, `on_request_body` and
    /// `on_response_headers` are passed only those headers and context entries (method,
    /// scheme, authority, path, client IP, request id and route always), which saves copying
    /// the rest into the plugin on every call; what is left out still reaches the upstream.
    /// `None` (the default): the whole head. `on_log` always gets the whole head.
    fn reads(&self) -> Option<Reads> {
        None
    }

    /// Runs when the request head arrived, in route order. Default: `continue`.
    fn on_request_headers(&mut self, _req: &RequestHead) -> RequestVerdict {
        RequestVerdict::Continue
    }

    /// Runs with up to the asked-for bytes of the body after this plugin returned `need-body`.
    /// Default: `continue`.
    fn on_request_body(&mut self, _req: &RequestHead, _body: &[u8]) -> RequestVerdict {
        RequestVerdict::Continue
    }

    /// Runs when the response head is ready, in reverse route order. Default: `continue`.
    fn on_response_headers(&mut self, _req: &RequestHead, _resp: &ResponseHead) -> ResponseVerdict {
        ResponseVerdict::Continue
    }

    /// Runs after the response was sent. Default: nothing.
    fn on_log(&mut self, _entry: &LogEntry) {}

    /// Runs when a message arrives on a channel the grant subscribes to
    /// (`grants.redis.subscribe`), once per gateway instance and route entry, off any request.
    /// List [`Hook::Message`] in [`Plugin::HOOKS`] to receive messages. Default: nothing.
    fn on_message(&mut self, _channel: &str, _message: &[u8]) {}

    /// Runs about once a second per route entry, off any request, for background work. List
    /// [`Hook::Tick`] in [`Plugin::HOOKS`] to receive ticks. Default: nothing.
    fn on_tick(&mut self) {}
}

/// Builds the `describe` answer from a [`Plugin`]'s constants. Used by [`crate::export_plugin!`].
pub fn describe<P: Plugin>() -> PluginInfo {
    PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        hooks: P::HOOKS.to_vec(),
        max_body_bytes: P::MAX_BODY_BYTES,
    }
}
