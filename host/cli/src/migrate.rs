//! `sluice migrate [--config FILE | --database-url URL]`: applies the pending Postgres
//! migrations (embedded from `migrations/`) to one database.

use std::path::{Path, PathBuf};

use sluice_backends::postgres::{MIGRATOR, PostgresBackend};
use sluice_config::{GatewayConfig, PostgresSettings};
use sluice_core::telemetry::metrics::Registry;

use crate::config;

/// The database to migrate.
#[derive(Debug, PartialEq)]
pub enum Target {
    /// The `[postgres]` section of a config (the embedded default when `None`).
    Config(Option<PathBuf>),
    /// A URL, from `--database-url` or `DATABASE_URL`.
    Url(String),
}

impl Target {
    /// `--database-url` first, then `--config`, then `DATABASE_URL` (the sqlx convention),
    /// then the embedded default config.
    pub fn choose(config: Option<PathBuf>, database_url: Option<String>, env_url: Option<String>) -> Self {
        match (database_url, config, env_url) {
            (Some(url), _, _) => Target::Url(url),
            (None, Some(path), _) => Target::Config(Some(path)),
            (None, None, Some(url)) if !url.is_empty() => Target::Url(url),
            _ => Target::Config(None),
        }
    }

    /// The pool settings for the target: a config's section, or a URL with default settings
    /// (checked as the config checks `postgres.url`).
    fn settings(&self) -> anyhow::Result<PostgresSettings> {
        match self {
            Target::Config(path) => {
                let config = config::load(path.as_deref())?;
                config.postgres.ok_or_else(|| {
                    anyhow::anyhow!("the config has no [postgres] section: nothing to migrate (or give --database-url)")
                })
            }
            Target::Url(url) => {
                let text = format!("[postgres]\nurl = {}\n", serde_json::to_string(url)?);
                let config = GatewayConfig::parse(&text, Path::new("--database-url"), PathBuf::from("."))?;
                config.postgres.ok_or_else(|| anyhow::anyhow!("no database URL"))
            }
        }
    }
}

/// Migrates the target database and prints what was applied.
pub async fn migrate(target: Target) -> anyhow::Result<()> {
    let settings = target.settings()?;
    let registry = Registry::new();
    let pg = PostgresBackend::connect_lazy(&settings, &registry)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_config_then_the_environment() {
        let url = || Some("postgres://a@h/db".to_string());
        let env = || Some("postgres://env@h/db".to_string());
        let file = || Some(PathBuf::from("g.toml"));
        assert_eq!(Target::choose(None, url(), env()), Target::Url(url().unwrap()));
        assert_eq!(Target::choose(file(), None, env()), Target::Config(file()));
        assert_eq!(Target::choose(None, None, env()), Target::Url(env().unwrap()));
        assert_eq!(Target::choose(None, None, Some(String::new())), Target::Config(None));
        assert_eq!(Target::choose(None, None, None), Target::Config(None));
    }

    #[test]
    fn a_url_that_is_not_postgres_is_refused_with_the_reason() {
        let err = Target::Url("mysql://x/y".into()).settings().unwrap_err();
        assert!(
            err.to_string().contains("postgres.url must start with postgres://"),
            "{err}"
        );
        let ok = Target::Url("postgres://u@127.0.0.1:5432/d?sslmode=disable".into())
            .settings()
            .unwrap();
        assert_eq!(ok.url, "postgres://u@127.0.0.1:5432/d?sslmode=disable");
    }
}
