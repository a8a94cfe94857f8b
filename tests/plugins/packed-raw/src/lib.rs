//! A plugin of the `plugin-packed` world built without the SDK, so its packed buffers are
//! written here by hand: the typed request and response hooks set `x-hook: typed`, the packed
//! ones `x-hook: packed` (which one ran shows which the host called), and the packed request
//! hook echoes the path and the headers it was passed as `x-seen-path` and `x-seen-headers`.
//! On `/garbage` the packed request hook returns a tag no verdict has, on `/trailing` a
//! `continue` with a byte too many.

wit_bindgen::generate!({
    world: "plugin-packed",
    path: "../../../wit",
});

use sluice::plugin::types::{HeaderEdits, Hook};
use sluice_wire::{Reader, Writer};

struct PackedRaw;

/// A packed `edit` verdict setting `x-hook: packed` and the `extra` headers.
fn packed_edit(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = vec![1];
    buf.put_len(1 + extra.len());
    buf.put_str("x-hook");
    buf.put_bytes(b"packed");
    for (name, value) in extra {
        buf.put_str(name);
        buf.put_bytes(value);
    }
    buf.put_len(0); // append
    buf.put_len(0); // remove
    buf.put_len(0); // context
    buf
}

fn typed_edit() -> HeaderEdits {
    HeaderEdits {
        set: vec![("x-hook".into(), b"typed".to_vec())],
        append: vec![],
        remove: vec![],
        context: vec![],
    }
}

impl Guest for PackedRaw {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "packed-raw".into(),
            version: "0.1.0".into(),
            hooks: vec![Hook::RequestHeaders, Hook::ResponseHeaders],
            max_body_bytes: None,
        }
    }

    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn on_request_headers(_req: RequestHead) -> RequestVerdict {
        RequestVerdict::Edit(typed_edit())
    }

    fn on_request_headers_packed(head: Vec<u8>) -> Vec<u8> {
        let mut r = Reader::new(&head);
        let fixed: Vec<&str> = (0..4)
            .map(|_| r.str().expect("method, scheme, authority, path"))
            .collect();
        let path = fixed[3];
        let names: Vec<&str> = (0..r.count(8).expect("a header count"))
            .map(|_| {
                let name = r.str().expect("a header name");
                r.bytes().expect("a header value");
                name
            })
            .collect();
        match path {
            "/garbage" => vec![9],
            "/trailing" => vec![0, 0],
            _ => packed_edit(&[
                ("x-seen-path", path.as_bytes()),
                ("x-seen-headers", names.join(",").as_bytes()),
            ]),
        }
    }

    fn on_request_body(_req: RequestHead, _body: Vec<u8>) -> RequestVerdict {
        RequestVerdict::Continue
    }

    fn on_response_headers(_req: RequestHead, _resp: ResponseHead) -> ResponseVerdict {
        ResponseVerdict::Edit(typed_edit())
    }

    fn on_response_headers_packed(_head: Vec<u8>, resp: Vec<u8>) -> Vec<u8> {
        let status = Reader::new(&resp).u16().expect("a status");
        packed_edit(&[("x-seen-status", status.to_string().as_bytes())])
    }

    fn on_log(_entry: LogEntry) {}

    fn on_message(_channel: String, _message: Vec<u8>) {}

    fn on_tick() {}
}

export!(PackedRaw);
