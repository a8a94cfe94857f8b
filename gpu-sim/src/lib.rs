//! `sluice-gpu-sim`: a simulated GPU inference backend.
//!
//! It speaks the OpenAI-compatible HTTP API the way vLLM, the llama.cpp server and LocalAI do
//! (chat and text completions with SSE streaming, embeddings, model listing, vLLM-named
//! Prometheus metrics), so the gateway's GPU routing can be run and tested without a GPU.
//! Latency, queueing, GPU memory, model loading and a prefix-reusing KV cache are simulated
//! deterministically from a [`SimConfig`]; see the crate README for the model.

mod body;
pub mod config;
mod error;
mod generate;
mod kv;
mod routes;
mod server;
mod state;
mod text;

pub use config::{ModelConfig, SimConfig};
pub use error::SimError;
pub use server::{Sim, SimHandle, serve};
