//! The one `bindgen!` of the `sluice:plugin` world (floor 1, a leaf: no other host crate), so
//! every crate above shares its types and the runtime implements its `Host` traits. The host
//! imports that can wait on a backend (Redis, Postgres, HTTP, the GPU fleet, and kv, cache,
//! rate-limit and http-cache, which may be in Redis) are async, so they await without blocking a
//! worker; the ones that never wait (log, metrics, clock, audit, crypto, body, response) are
//! plain functions, which spares each call a boxed future and its poll. Every export is called
//! asynchronously. The world's `use` brings the request and response types into this module;
//! the rest of the shared types are re-exported here too. [`RequestHeadView`] is a borrowed
//! `request-head` with [`ViewHooks`] to call the hooks that take one with it, for plugins that declared what
//! they read. [`PackedHooks`] calls the hooks of the `plugin-packed` world (heads and verdicts as
//! one `list<u8>` each) in a component that exports them.

#![allow(missing_docs, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: {
        "sluice:plugin/kv": async,
        "sluice:plugin/cache": async,
        "sluice:plugin/redis": async,
        "sluice:plugin/postgres": async,
        "sluice:plugin/http-client": async,
        "sluice:plugin/gpu": async,
        "sluice:plugin/rate-limit": async,
        "sluice:plugin/http-cache": async,
    },
    exports: { default: async },
});

pub use sluice::plugin::types::{
    CacheSpec, CoalesceSpec, Encoding, EncodingSpec, HeaderEdits, Hook, HostError, InferenceUsage, LocalResponse,
    UpstreamChoice,
};

/// A `request-head` borrowed from the host's, lowered exactly as one: for a plugin that declared
/// with `head.reads` which headers and context entries it reads, the instance builds this view
/// with only those, so nothing is copied and nothing else is lowered.
#[derive(Debug, wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub struct RequestHeadView<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: Vec<(&'a str, &'a [u8])>,
    #[component(name = "client-ip")]
    pub client_ip: &'a str,
    #[component(name = "request-id")]
    pub request_id: &'a str,
    pub route: &'a str,
    pub context: Vec<(&'a str, &'a str)>,
}

/// The three hooks that take a request head, checked once to take a [`RequestHeadView`] in its
/// place ([`Plugin::view_hooks`]), so each call skips the type check.
#[derive(Debug, Clone, Copy)]
pub struct ViewHooks {
    request_headers: wasmtime::component::Func,
    request_body: wasmtime::component::Func,
    response_headers: wasmtime::component::Func,
}

impl Plugin {
    /// Checks that this instance's `on-request-headers`, `on-request-body` and
    /// `on-response-headers` take a [`RequestHeadView`] where they take a `request-head`, and
    /// returns the handles to call them so. An error names the export whose type differs.
    pub fn view_hooks(&self, store: impl wasmtime::AsContext) -> wasmtime::Result<ViewHooks> {
        self.on_request_headers
            .typed::<(&RequestHeadView<'static>,), (RequestVerdict,)>(&store)?;
        self.on_request_body
            .typed::<(&RequestHeadView<'static>, &[u8]), (RequestVerdict,)>(&store)?;
        self.on_response_headers
            .typed::<(&RequestHeadView<'static>, &ResponseHead), (ResponseVerdict,)>(&store)?;
        Ok(ViewHooks {
            request_headers: self.on_request_headers,
            request_body: self.on_request_body,
            response_headers: self.on_response_headers,
        })
    }
}

// SAFETY (each `new_unchecked` below): `Plugin::view_hooks` checked these exports against
// exactly these parameter and result types when it built the `ViewHooks`; only lifetimes
// differ, and they do not change a component type.
#[allow(unsafe_code)]
impl ViewHooks {
    /// `on-request-headers` with a [`RequestHeadView`].
    pub async fn on_request_headers<S>(
        &self,
        mut store: S,
        req: &RequestHeadView<'_>,
    ) -> wasmtime::Result<RequestVerdict>
    where
        S: wasmtime::AsContextMut,
        <S as wasmtime::AsContext>::Data: Send,
    {
        let callee = unsafe {
            wasmtime::component::TypedFunc::<(&RequestHeadView<'_>,), (RequestVerdict,)>::new_unchecked(
                self.request_headers,
            )
        };
        let (verdict,) = callee.call_async(store.as_context_mut(), (req,)).await?;
        Ok(verdict)
    }

    /// `on-request-body` with a [`RequestHeadView`].
    pub async fn on_request_body<S>(
        &self,
        mut store: S,
        req: &RequestHeadView<'_>,
        body: &[u8],
    ) -> wasmtime::Result<RequestVerdict>
    where
        S: wasmtime::AsContextMut,
        <S as wasmtime::AsContext>::Data: Send,
    {
        let callee = unsafe {
            wasmtime::component::TypedFunc::<(&RequestHeadView<'_>, &[u8]), (RequestVerdict,)>::new_unchecked(
                self.request_body,
            )
        };
        let (verdict,) = callee.call_async(store.as_context_mut(), (req, body)).await?;
        Ok(verdict)
    }

    /// `on-response-headers` with a [`RequestHeadView`].
    pub async fn on_response_headers<S>(
        &self,
        mut store: S,
        req: &RequestHeadView<'_>,
        resp: &ResponseHead,
    ) -> wasmtime::Result<ResponseVerdict>
    where
        S: wasmtime::AsContextMut,
        <S as wasmtime::AsContext>::Data: Send,
    {
        let callee = unsafe {
            wasmtime::component::TypedFunc::<(&RequestHeadView<'_>, &ResponseHead), (ResponseVerdict,)>::new_unchecked(
                self.response_headers,
            )
        };
        let (verdict,) = callee.call_async(store.as_context_mut(), (req, resp)).await?;
        Ok(verdict)
    }
}

/// Where a component keeps the packed hooks of the `plugin-packed` world, found once when it
/// loads ([`PackedIndices::new`]); both are `None` in a component of the plain `plugin` world.
#[derive(Debug, Clone, Default)]
pub struct PackedIndices {
    request_headers: Option<wasmtime::component::ComponentExportIndex>,
    response_headers: Option<wasmtime::component::ComponentExportIndex>,
}

/// The export names of the packed hooks.
const PACKED_REQUEST_HEADERS: &str = "on-request-headers-packed";
const PACKED_RESPONSE_HEADERS: &str = "on-response-headers-packed";

impl PackedIndices {
    /// Looks the packed hooks up by name in `component`.
    pub fn new(component: &wasmtime::component::Component) -> Self {
        let find = |name| component.get_export_index(None, name);
        PackedIndices {
            request_headers: find(PACKED_REQUEST_HEADERS),
            response_headers: find(PACKED_RESPONSE_HEADERS),
        }
    }

    /// Whether the component exports either packed hook.
    pub fn any(&self) -> bool {
        self.request_headers.is_some() || self.response_headers.is_some()
    }

    /// The packed hooks of `instance`, each checked to take and return `list<u8>` as the world
    /// says. An error names the export whose type differs.
    pub fn load(
        &self,
        mut store: impl wasmtime::AsContextMut,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<PackedHooks> {
        let mut hooks = PackedHooks::default();
        if let Some(index) = &self.request_headers {
            let func = instance
                .get_typed_func::<(&[u8],), (Vec<u8>,)>(&mut store, index)
                .map_err(|e| e.context(PACKED_REQUEST_HEADERS))?;
            hooks.request_headers = Some(*func.func());
        }
        if let Some(index) = &self.response_headers {
            let func = instance
                .get_typed_func::<(&[u8], &[u8]), (Vec<u8>,)>(&mut store, index)
                .map_err(|e| e.context(PACKED_RESPONSE_HEADERS))?;
            hooks.response_headers = Some(*func.func());
        }
        Ok(hooks)
    }
}

/// An instance's packed hooks ([`PackedIndices::load`]), type-checked once.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackedHooks {
    request_headers: Option<wasmtime::component::Func>,
    response_headers: Option<wasmtime::component::Func>,
}

// SAFETY (each `new_unchecked` below): `PackedIndices::load` checked these exports against
// exactly these parameter and result types; only lifetimes differ.
#[allow(unsafe_code)]
impl PackedHooks {
    /// Whether the instance exports `on-request-headers-packed`.
    pub fn has_request_headers(&self) -> bool {
        self.request_headers.is_some()
    }

    /// Whether the instance exports `on-response-headers-packed`.
    pub fn has_response_headers(&self) -> bool {
        self.response_headers.is_some()
    }

    /// Calls `on-request-headers-packed` with a packed `request-head`; returns the packed
    /// `request-verdict`, unread. Errs (as a trap would) when the instance does not export it.
    pub async fn on_request_headers<S>(&self, mut store: S, head: &[u8]) -> wasmtime::Result<Vec<u8>>
    where
        S: wasmtime::AsContextMut,
        <S as wasmtime::AsContext>::Data: Send,
    {
        let func = self
            .request_headers
            .ok_or_else(|| wasmtime::format_err!("no {PACKED_REQUEST_HEADERS} export"))?;
        let callee = unsafe { wasmtime::component::TypedFunc::<(&[u8],), (Vec<u8>,)>::new_unchecked(func) };
        let (verdict,) = callee.call_async(store.as_context_mut(), (head,)).await?;
        Ok(verdict)
    }

    /// Calls `on-response-headers-packed` with a packed `request-head` and `response-head`;
    /// returns the packed `response-verdict`, unread. Errs (as a trap would) when the instance
    /// does not export it.
    pub async fn on_response_headers<S>(&self, mut store: S, head: &[u8], resp: &[u8]) -> wasmtime::Result<Vec<u8>>
    where
        S: wasmtime::AsContextMut,
        <S as wasmtime::AsContext>::Data: Send,
    {
        let func = self
            .response_headers
            .ok_or_else(|| wasmtime::format_err!("no {PACKED_RESPONSE_HEADERS} export"))?;
        let callee = unsafe { wasmtime::component::TypedFunc::<(&[u8], &[u8]), (Vec<u8>,)>::new_unchecked(func) };
        let (verdict,) = callee.call_async(store.as_context_mut(), (head, resp)).await?;
        Ok(verdict)
    }
}
