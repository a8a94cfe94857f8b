//! `body`: directives about the request body on its way upstream. Always granted; callable
//! only from `on-request-headers`. The directive is recorded in the call's [`HostState`] and
//! returned with the verdict; the proxy acts on it (`proxy/decompress.rs`).

use crate::capability::Capability;
use crate::state::HostState;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::body::Host;
use sluice_core::decompress::DecompressRequest;

impl Host for HostState {
    fn decompress_request(&mut self, max_bytes: u64, max_ratio: u32) -> Result<(), HostError> {
        self.per_request("body.decompress-request");
        let p = &self.plugin;
        if !self.in_request_headers {
            return Err(p.invalid(
                Capability::Body,
                "decompress-request can only be called from on-request-headers",
            ));
        }
        if max_bytes == 0 || max_ratio == 0 {
            return Err(p.invalid(
                Capability::Body,
                format!("decompress-request needs max-bytes and max-ratio above 0 (got {max_bytes} and {max_ratio})"),
            ));
        }
        self.directives.decompress = Some(DecompressRequest { max_bytes, max_ratio });
        Ok(())
    }
}
