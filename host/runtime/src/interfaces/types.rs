//! `types`: the shared types of the world; nothing to call.

use crate::state::HostState;

impl sluice_bindings::sluice::plugin::types::Host for HostState {}
