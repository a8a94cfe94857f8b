//! Sluice's HTTP cache plugin (in progress).
mod conditional;
mod dates;
mod directives;
mod freshness;
mod invalidation;
mod key;
mod settings;
mod status;
mod storable;
mod variants;

#[cfg(test)]
mod testutil;
