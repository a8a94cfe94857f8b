//! Sluice's HTTP cache plugin (in progress).
mod dates;
mod directives;
mod settings;
