//! The `sluice` command: `sluice run` serves, `sluice check` validates a config and loads its
//! plugins, `sluice version` prints the versions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod keys_cli;
mod plugin_check_cli;
mod plugin_new_cli;
mod plugin_test_cli;

use clap::{Parser, Subcommand};
use sluice::app::RunningGateway;
use sluice::backend::postgres::{MIGRATOR, PostgresBackend};
use sluice::capability::Capabilities;
use sluice::config::GatewayConfig;
use sluice::config::TelemetrySettings;
use sluice::gateway::ConfigSource;
use sluice::runtime::Runtime;
use sluice::telemetry::logging::{self, LogFormat};

/// The config `sluice` uses when no file is given.
const DEFAULT_CONFIG: &str = include_str!("../../config/sluice.toml");

/// Sluice: an API gateway whose policy runs as WebAssembly plugins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format: `human` (default) or `json` (one JSON object per line). The level comes from
    /// `RUST_LOG` (default `sluice=info`).
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: the public listener, the admin API, hot reload on file change, SIGHUP or
    /// `POST /admin/reload`; SIGTERM or SIGINT drain in-flight requests and stop.
    Run {
        /// The config file; the embedded default config when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the version of Sluice, of wasmtime and of the plugin WIT package.
    Version,
    /// Apply the pending Postgres migrations (embedded from `migrations/`) to the database of
    /// the config's `[postgres]` section, and print what was applied.
    Migrate {
        /// The config file; the embedded default config when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage API keys in the `api_keys` table of the config's Postgres: `create` (prints the
    /// key once), `list`, `revoke`, `rotate`. The HMAC secret comes from the environment (the
    /// same value the auth plugin's `secret` names); changes are announced on the auth plugin's
    /// Redis channel when the config has `[redis]`.
    Keys {
        /// The config file; the embedded default config when omitted.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The environment variable holding the HMAC secret.
        #[arg(long, global = true, default_value = "SLUICE_AUTH_SECRET")]
        secret_env: String,
        /// The auth plugin's revocation channel.
        #[arg(long, global = true, default_value = "auth-revocations")]
        channel: String,
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Validate a config (file:line errors), load and compile its plugins, run each plugin's
    /// `init` with its route config, and print what would run. Exits 1 on any error.
    Check {
        /// The config file; the embedded default config when omitted.
        config: Option<PathBuf>,
    },
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        action: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a Rust plugin project on the SDK that builds for wasm32-wasip2 and passes its own
    /// test (a plugin that sets a request header from its config).
    New {
        /// The plugin's name (a crate name: letters, digits, '-', '_').
        name: String,
        /// Where to create it (default: the current directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Copy the SDK and its WIT into the project (the default when this binary was not
        /// built in a Sluice checkout; inside one, the project depends on the checkout's SDK).
        #[arg(long)]
        vendor_sdk: bool,
    },
    /// Load a component as the gateway would and print what it is: name, version, hooks, the
    /// host interfaces it imports, size and compile time. With `--config`, say whether that
    /// config's `[plugins.NAME]` grants what it imports and run `init` with each route's config.
    /// Exits 1 when it is not a loadable plugin or `init` fails.
    Check {
        /// The plugin component.
        file: PathBuf,
        /// A gateway config to check the plugin's grants in.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The `[plugins.NAME]` entry (default: the one whose module is FILE).
        #[arg(long)]
        plugin: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write the WIT package this host speaks (host.wit, types.wit, world.wit) into DIR, for
    /// building plugins in other languages (componentize-js, componentize-py) outside a
    /// Sluice checkout.
    Wit {
        /// Where to write it (created when missing).
        dir: PathBuf,
    },
    /// Run a plugin's hooks offline against a recorded request (JSON: method, path, headers,
    /// body) and optionally a response head, and print each verdict. No gateway, Postgres or
    /// Redis needed: kv, cache and rate limits run in memory.
    Test {
        /// The plugin component.
        file: PathBuf,
        /// The recorded request (JSON).
        #[arg(long)]
        request: PathBuf,
        /// The recorded response head (JSON: status, headers).
        #[arg(long)]
        response: Option<PathBuf>,
        /// The plugin's route config, as JSON.
        #[arg(long, default_value = "{}")]
        config: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        /// Who the key belongs to (passed upstream as the subject).
        #[arg(long)]
        owner: String,
        /// A name to tell the key apart.
        #[arg(long)]
        name: String,
        /// A scope to grant; repeat for more.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The caller's tier.
        #[arg(long, default_value = "free")]
        tier: String,
        /// The environment in the key's prefix (`sk_<env>_`).
        #[arg(long, default_value = "live")]
        env: String,
        /// Days until the key expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Make a key for the auth plugin's `static_keys` (no Postgres needed): prints the key and
    /// the config entry with its hash.
    NewStatic {
        /// The entry's id in audit rows and the key-id header.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        id: i64,
        /// Who the key belongs to.
        #[arg(long)]
        owner: String,
        /// A scope to grant; repeat for more.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The caller's tier.
        #[arg(long, default_value = "free")]
        tier: String,
        /// The environment in the key's prefix.
        #[arg(long, default_value = "live")]
        env: String,
    },
    /// List keys (no secrets): id, prefix, state, owner, name, tier, times, scopes.
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke a key now; every gateway stops accepting it within a second.
    Revoke {
        /// The key's id.
        id: i64,
    },
    /// Replace a key: print the new one; the old one keeps working for the grace period.
    Rotate {
        /// The key's id.
        id: i64,
        /// Hours the old key keeps working.
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
        /// The new key's environment.
        #[arg(long, default_value = "live")]
        env: String,
    },
}

async fn keys(config: Option<&Path>, options: keys_cli::KeysOptions, command: KeysCommand) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let action = match command {
        KeysCommand::Create {
            owner,
            name,
            scopes,
            tier,
            env,
            expires_in_days,
        } => keys_cli::KeysAction::Create(sluice::keys::KeySpec {
            env,
            owner,
            name,
            scopes,
            tier,
            expires_in_days,
        }),
        KeysCommand::NewStatic {
            id,
            owner,
            scopes,
            tier,
            env,
        } => keys_cli::KeysAction::NewStatic {
            id,
            spec: sluice::keys::KeySpec {
                env,
                owner,
                name: String::new(),
                scopes,
                tier,
                expires_in_days: None,
            },
        },
        KeysCommand::List { owner } => keys_cli::KeysAction::List { owner },
        KeysCommand::Revoke { id } => keys_cli::KeysAction::Revoke { id },
        KeysCommand::Rotate { id, grace_hours, env } => keys_cli::KeysAction::Rotate { id, env, grace_hours },
    };
    println!("{}", keys_cli::run(&config, &options, action).await?);
    Ok(())
}

fn load_config(path: Option<&Path>) -> anyhow::Result<GatewayConfig> {
    Ok(match path {
        Some(path) => GatewayConfig::load(path)?,
        None => GatewayConfig::parse(DEFAULT_CONFIG, Path::new("<embedded sluice.toml>"), PathBuf::from("."))?,
    })
}

async fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let source = match path {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::Embedded(DEFAULT_CONFIG),
    };
    let gateway = RunningGateway::start(source).await.map_err(anyhow::Error::msg)?;
    println!(
        "sluice {} listening on http://{} (admin http://{})",
        env!("CARGO_PKG_VERSION"),
        gateway.addr,
        gateway.admin_addr
    );
    gateway.run_until_signalled().await?;
    Ok(())
}

async fn migrate(path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let Some(settings) = &config.postgres else {
        anyhow::bail!("the config has no [postgres] section: nothing to migrate");
    };
    let registry = sluice::telemetry::metrics::Registry::new();
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

async fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let runtime = Runtime::for_config(&config, Capabilities::in_memory())?;
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

/// The `[telemetry]` settings `sluice run` starts with (span export is set up once, before
/// serving); defaults for the other commands, or when the config does not load (`run` then
/// reports the error itself).
fn telemetry_settings(command: &Command) -> TelemetrySettings {
    match command {
        Command::Run { config } => load_config(config.as_deref()).map(|c| c.telemetry).unwrap_or_default(),
        _ => TelemetrySettings::default(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = if cli.log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Human
    };
    let telemetry = match logging::init(format, &telemetry_settings(&cli.command), runtime.handle().clone()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check { config } => check(config.as_deref()).await,
            Command::Plugin {
                action: PluginCommand::New { name, dir, vendor_sdk },
            } => plugin_new_cli::run(&name, dir.as_deref(), vendor_sdk),
            Command::Plugin {
                action: PluginCommand::Wit { dir },
            } => plugin_new_cli::write_wit(&dir),
            Command::Plugin {
                action:
                    PluginCommand::Check {
                        file,
                        config,
                        plugin,
                        json,
                    },
            } => {
                let options = plugin_check_cli::CheckOptions {
                    config: config.as_deref(),
                    plugin: plugin.as_deref(),
                    json,
                };
                plugin_check_cli::run(&file, options).await
            }
            Command::Plugin {
                action:
                    PluginCommand::Test {
                        file,
                        request,
                        response,
                        config,
                    },
            } => plugin_test_cli::run(&file, &request, response.as_deref(), &config).await,
            Command::Run { config } => run(config).await,
            Command::Migrate { config } => migrate(config.as_deref()).await,
            Command::Keys {
                config,
                secret_env,
                channel,
                action,
            } => keys(config.as_deref(), keys_cli::KeysOptions { secret_env, channel }, action).await,
            Command::Version => {
                println!(
                    "sluice {}\nwasmtime 48.0.8\nplugin world {}@{}",
                    env!("CARGO_PKG_VERSION"),
                    sluice::runtime::WIT_PACKAGE,
                    sluice::runtime::WIT_VERSION
                );
                Ok(())
            }
        }
    });
    // Send the last spans while the runtime that carries the exports still runs.
    drop(telemetry);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
