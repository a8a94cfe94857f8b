//! The route's plugin config, as the host passes it to `init`.

use serde::de::DeserializeOwned;

/// The JSON config a route gives this plugin (`{}` when the route gives none).
#[derive(Debug, Clone)]
pub struct Config {
    json: String,
}

impl Config {
    /// Wraps the raw JSON text the host passed to `init`.
    pub fn new(json: String) -> Self {
        Config { json }
    }

    /// The raw JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// Parses the config into `T`. The error names the field and position, ready to return
    /// from [`crate::Plugin::new`]. Use `#[serde(deny_unknown_fields)]` on `T` so that typos
    /// in an operator's config are rejected rather than ignored.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.json).map_err(|e| format!("invalid config: {e}"))
    }
}
