//! One hook call on one instance: the call's arguments ([`Call`]), the exports an instance
//! offers for it ([`Hooks`]: the world's, the view of the head for a plugin that declared what
//! it reads, the packed hooks when the component has them) and what comes back ([`Reply`]).
//! The request hooks go through the packed exports when the instance has them, so the head
//! crosses into the guest as one buffer instead of a string at a time.

use sluice_wire::WireError;
use wasmtime::Store;

use super::packed;
use super::state::{Directives, HostState};
use crate::reads::Reads;
use sluice_bindings::{
    Hook, LogEntry, PackedHooks, Plugin, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict, ViewHooks,
};

/// One hook call's arguments.
pub(crate) enum Call<'a> {
    RequestHeaders(&'a RequestHead),
    RequestBody(&'a RequestHead, &'a [u8]),
    ResponseHeaders(&'a RequestHead, &'a ResponseHead),
    Log(&'a LogEntry),
    Message(&'a str, &'a [u8]),
    Tick,
}

impl Call<'_> {
    /// The hook this call runs.
    pub(crate) fn hook(&self) -> Hook {
        match self {
            Call::RequestHeaders(_) => Hook::RequestHeaders,
            Call::RequestBody(..) => Hook::RequestBody,
            Call::ResponseHeaders(..) => Hook::ResponseHeaders,
            Call::Log(_) => Hook::Log,
            Call::Message(..) => Hook::Message,
            Call::Tick => Hook::Tick,
        }
    }

    /// The request the call serves, when it serves one.
    pub(crate) fn request(&self) -> Option<&RequestHead> {
        match self {
            Call::RequestHeaders(req) | Call::RequestBody(req, _) | Call::ResponseHeaders(req, _) => Some(req),
            Call::Log(entry) => Some(&entry.request),
            Call::Message(..) | Call::Tick => None,
        }
    }
}

/// A verdict as a hook returned it: lifted by the canonical ABI, or still packed.
pub(crate) enum Returned<T> {
    Lifted(T),
    Packed(Vec<u8>),
}

/// One hook call's result, with the directives the call left through host calls.
pub(crate) enum Reply {
    Request(Returned<RequestVerdict>, Directives),
    Response(Returned<ResponseVerdict>, Directives),
    Unit,
}

/// The exports of one instance that run hooks, and the buffers its packed calls reuse.
pub(crate) struct Hooks {
    bindings: Plugin,
    /// What the instance declared from `init` that its hooks read (`head.reads`), with the
    /// hooks checked to take the view of the head that holds only that.
    reads: Option<(Reads, ViewHooks)>,
    packed: PackedHooks,
    head: Vec<u8>,
    resp: Vec<u8>,
}

impl Hooks {
    /// The hooks of an instance with these exports.
    pub(crate) fn new(bindings: Plugin, reads: Option<(Reads, ViewHooks)>, packed: PackedHooks) -> Self {
        Hooks {
            bindings,
            reads,
            packed,
            head: Vec::new(),
            resp: Vec::new(),
        }
    }

    /// What the instance declared its hooks read (`head.reads`), if it did.
    pub(crate) fn reads(&self) -> Option<&Reads> {
        self.reads.as_ref().map(|(reads, _)| reads)
    }

    /// Runs `call` on the instance in `store`; the directives are filled in by the caller.
    pub(crate) async fn call(&mut self, store: &mut Store<HostState>, call: Call<'_>) -> wasmtime::Result<Reply> {
        let none = Directives::default;
        let reads = self.reads.as_ref();
        match call {
            Call::RequestHeaders(req) if self.packed.has_request_headers() => {
                packed::write_request_head(&mut self.head, req, reads.map(|(r, _)| r));
                let bytes = self.packed.on_request_headers(&mut *store, &self.head).await?;
                Ok(Reply::Request(Returned::Packed(bytes), none()))
            }
            Call::ResponseHeaders(req, resp) if self.packed.has_response_headers() => {
                packed::write_request_head(&mut self.head, req, reads.map(|(r, _)| r));
                packed::write_response_head(&mut self.resp, resp);
                let bytes = self
                    .packed
                    .on_response_headers(&mut *store, &self.head, &self.resp)
                    .await?;
                Ok(Reply::Response(Returned::Packed(bytes), none()))
            }
            Call::RequestHeaders(req) => {
                let v = match reads {
                    Some((reads, hooks)) => hooks.on_request_headers(&mut *store, &reads.view(req)).await?,
                    None => self.bindings.call_on_request_headers(&mut *store, req).await?,
                };
                Ok(Reply::Request(Returned::Lifted(v), none()))
            }
            Call::RequestBody(req, body) => {
                let v = match reads {
                    Some((reads, hooks)) => hooks.on_request_body(&mut *store, &reads.view(req), body).await?,
                    None => self.bindings.call_on_request_body(&mut *store, req, body).await?,
                };
                Ok(Reply::Request(Returned::Lifted(v), none()))
            }
            Call::ResponseHeaders(req, resp) => {
                let v = match reads {
                    Some((reads, hooks)) => hooks.on_response_headers(&mut *store, &reads.view(req), resp).await?,
                    None => self.bindings.call_on_response_headers(&mut *store, req, resp).await?,
                };
                Ok(Reply::Response(Returned::Lifted(v), none()))
            }
            Call::Log(entry) => self
                .bindings
                .call_on_log(&mut *store, entry)
                .await
                .map(|()| Reply::Unit),
            Call::Message(channel, message) => self
                .bindings
                .call_on_message(&mut *store, channel, message)
                .await
                .map(|()| Reply::Unit),
            Call::Tick => self.bindings.call_on_tick(&mut *store).await.map(|()| Reply::Unit),
        }
    }
}

impl<T> Returned<T> {
    /// The verdict: a lifted one as it is, a packed one read with `read`.
    pub(crate) fn read(self, read: fn(&[u8]) -> Result<T, WireError>) -> Result<T, String> {
        match self {
            Returned::Lifted(v) => Ok(v),
            Returned::Packed(bytes) => read(&bytes).map_err(|e| format!("its packed verdict cannot be read: {e}")),
        }
    }
}
