//! End-to-end tests: start the simulator on 127.0.0.1:0 and drive it with a hyper client.

mod common;
mod control;
mod generation;
