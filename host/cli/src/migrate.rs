//! `sluice migrate [--config FILE]`: applies the pending Postgres migrations (embedded from
//! `migrations/`) to the database of the config's `[postgres]` section.

use std::path::Path;

use sluice_backends::postgres::{MIGRATOR, PostgresBackend};
use sluice_core::telemetry::metrics::Registry;

use crate::config;

/// Migrates the database of the config at `path` and prints what was applied.
pub async fn migrate(path: Option<&Path>) -> anyhow::Result<()> {
    let config = config::load(path)?;
    let Some(settings) = &config.postgres else {
        anyhow::bail!("the config has no [postgres] section: nothing to migrate");
    };
    let registry = Registry::new();
    let pg = PostgresBackend::connect_lazy(settings, &registry)?;
    let applied = pg.migrate().await?;
    if applied.is_empty() {
        println!("the schema is up to date ({} migrations)", MIGRATOR.iter().count());
    } else {
        for version in applied {
            let description = MIGRATOR
                .iter()
                .find(|m| m.version == version)
                .map_or("", |m| m.description.as_ref());
            println!("applied {version} {description}");
        }
    }
    Ok(())
}
