//! Sluice's HTTP cache plugin (in progress).
mod dates;
mod directives;
mod freshness;
mod settings;
mod storable;
mod variants;

#[cfg(test)]
mod testutil;
