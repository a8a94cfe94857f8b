//! The one `bindgen!` of the `sluice:plugin` world (floor 1, a leaf: no other host crate), so
//! every crate above shares its types and the runtime implements its `Host` traits. The host
//! imports that can wait on a backend (Redis, Postgres, HTTP, the GPU fleet, and kv, cache,
//! rate-limit and http-cache, which may be in Redis) are async, so they await without blocking a
//! worker; the ones that never wait (log, metrics, clock, audit, crypto, body, response) are
//! plain functions, which spares each call a boxed future and its poll. Every export is called
//! asynchronously. The world's `use` brings the request and response types into this module;
//! the rest of the shared types are re-exported here too. [`RequestHeadView`] is a borrowed
//! `request-head` with [`ViewHooks`] to call the hooks that take one with it, for plugins that declared what
//! they read.

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
