//! `response`: header edits a request hook makes to its request's response. Always granted;
//! callable only from request hooks. The edits are checked as a verdict's would be, merged
//! into the call's [`HostState`] directives and returned with the verdict; the chain applies
//! them where the plugin's response hook runs (`ResponseEdits`).

use crate::capability::Capability;
use crate::state::HostState;
use crate::verdict;
use sluice_bindings::HeaderEdits;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::response::Host;

impl Host for HostState {
    fn edit(&mut self, edits: HeaderEdits) -> Result<(), HostError> {
        let p = &self.plugin;
        if !(self.in_request_headers || self.in_request_body) {
            return Err(p.invalid(
                Capability::Response,
                "edit can only be called from on-request-headers or on-request-body",
            ));
        }
        let edits = HeaderEdits {
            context: Vec::new(),
            ..edits
        };
        let merged = match &self.directives.response {
            None => edits,
            Some(earlier) => {
                let mut merged = earlier.clone();
                merged.set.extend(edits.set);
                merged.append.extend(edits.append);
                merged.remove.extend(edits.remove);
                merged
            }
        };
        // Checked as a whole, so several calls stay within one verdict's limits; a refused
        // call leaves what earlier calls recorded as it was.
        if let Err(why) = verdict::check_edits(&merged) {
            return Err(p.invalid(Capability::Response, format!("edit refused: {why}")));
        }
        self.directives.response = Some(merged);
        Ok(())
    }
}
