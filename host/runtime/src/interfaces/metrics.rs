//! `metrics`: the plugin's own counters, gauges and histograms (`sluice_backends::metrics`),
//! exported with a `plugin` label. Always granted.

use crate::state::HostState;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::metrics::Host;

impl Host for HostState {
    fn counter_add(&mut self, name: String, value: u64) -> Result<(), HostError> {
        self.per_request("metrics.counter-add");
        self.plugin.metrics.counter_add(&name, value)
    }

    fn gauge_set(&mut self, name: String, value: f64) -> Result<(), HostError> {
        self.plugin.metrics.gauge_set(&name, value)
    }

    fn histogram_record(&mut self, name: String, value: f64) -> Result<(), HostError> {
        self.per_request("metrics.histogram-record");
        self.plugin.metrics.histogram_record(&name, value)
    }
}
