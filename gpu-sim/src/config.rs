//! Simulator configuration, read from TOML or built in code.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::SimError;

/// The whole simulator configuration.
///
/// Every key is optional in TOML; missing keys take the values of [`SimConfig::default`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed mixed into every generated token and embedding, so output is reproducible.
    pub seed: u64,
    /// Number of simulated GPUs.
    pub gpus: usize,
    /// Memory of each GPU in MiB; a model must fit on a single GPU.
    pub memory_mb: u64,
    /// Concurrent sequences; requests beyond this queue (`vllm:num_requests_waiting`).
    pub slots: usize,
    /// Decode latency per generated token, in milliseconds.
    pub per_token_ms: u64,
    /// Prompt processing (prefill) latency per uncached prompt token, in microseconds.
    pub prefill_per_token_us: u64,
    /// Capacity of the prefix KV cache, in tokens.
    pub kv_cache_tokens: usize,
    /// `max_tokens` used when a request does not give one.
    pub default_max_tokens: u32,
    /// The models the simulator knows about.
    pub models: Vec<ModelConfig>,
}

/// One model the simulator can serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model id, as used in the `model` field of requests.
    pub name: String,
    /// GPU memory the model occupies once loaded, in MiB.
    #[serde(default)]
    pub size_mb: u64,
    /// How long loading the model takes, in milliseconds.
    #[serde(default)]
    pub load_ms: u64,
    /// Whether the model is loaded at start-up.
    #[serde(default)]
    pub loaded: bool,
    /// Dimension of the vectors `/v1/embeddings` returns for this model.
    #[serde(default = "default_embedding_dim")]
    pub embedding_dim: usize,
}

fn default_embedding_dim() -> usize {
    384
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            gpus: 1,
            memory_mb: 24_576,
            slots: 4,
            per_token_ms: 20,
            prefill_per_token_us: 200,
            kv_cache_tokens: 8192,
            default_max_tokens: 16,
            models: vec![ModelConfig::new("sim-small", 4096)],
        }
    }
}

impl ModelConfig {
    /// A loaded model with the given name and size, no load time and the default embedding size.
    pub fn new(name: impl Into<String>, size_mb: u64) -> Self {
        Self {
            name: name.into(),
            size_mb,
            load_ms: 0,
            loaded: true,
            embedding_dim: default_embedding_dim(),
        }
    }
}

impl SimConfig {
    /// Parses a configuration from TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, SimError> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Checks the configuration for values the simulator cannot run with.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |msg: String| Err(SimError::InvalidConfig(msg));
        if self.gpus == 0 {
            return invalid("`gpus` must be at least 1".into());
        }
        if self.slots == 0 {
            return invalid("`slots` must be at least 1".into());
        }
        let mut names = HashSet::new();
        for model in &self.models {
            if !names.insert(model.name.as_str()) {
                return invalid(format!("model `{}` is listed twice", model.name));
            }
            if model.size_mb > self.memory_mb {
                return invalid(format!("model `{}` is larger than one GPU", model.name));
            }
            if model.embedding_dim == 0 {
                return invalid(format!("model `{}` has `embedding_dim` 0", model.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let config = SimConfig::from_toml(include_str!("../sim.example.toml")).unwrap();
        assert_eq!(config.gpus, 2);
        assert_eq!(config.models.len(), 3);
        assert!(!config.models[1].loaded);
        assert_eq!(config.models[0].embedding_dim, 384);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(matches!(
            SimConfig::from_toml("slots = 0"),
            Err(SimError::InvalidConfig(_))
        ));
        assert!(matches!(
            SimConfig::from_toml("sloots = 3"),
            Err(SimError::ParseConfig(_))
        ));
        let twice = "[[models]]\nname = \"a\"\n[[models]]\nname = \"a\"\n";
        assert!(matches!(SimConfig::from_toml(twice), Err(SimError::InvalidConfig(_))));
    }
}
