//! `sluice check [FILE]`: validates a config, loads and compiles its plugins, runs each
//! plugin's `init` with its route config, and prints what would run.

use std::path::Path;

use sluice_backends::Backends;
use sluice_runtime::Runtime;

use crate::config;

/// Checks the config at `path` (the embedded default when `None`).
pub async fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = config::load(path)?;
    let runtime = Runtime::for_config(&config, Backends::in_memory())?;
    let table = runtime.build_routes(&config).await?;
    for (name, plugin) in table.plugins() {
        println!(
            "plugin {name}: {} {} ({} bytes, {:?}, compiled in {:.1} ms)",
            plugin.info.name,
            plugin.info.version,
            plugin.size,
            plugin.cache,
            plugin.compile_time.as_secs_f64() * 1000.0
        );
    }
    for route in &config.routes {
        let chain: Vec<&str> = route.plugins.iter().map(|p| p.plugin.as_str()).collect();
        println!("route {}: [{}]", route.name, chain.join(" -> "));
    }
    println!("config OK: {} plugins, {} routes", table.plugins().len(), table.len());
    Ok(())
}
