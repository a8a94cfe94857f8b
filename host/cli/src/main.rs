//! The `sluice` command, one module per subcommand: `run` serves, `check` validates a config
//! and loads its plugins, `migrate` applies the Postgres migrations, `keys` manages API keys,
//! `plugin` holds the tools for plugin authors, `version` prints the versions, `completions`
//! prints a shell completion script.

mod check;
mod config;
mod keys;
mod migrate;
mod plugin;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_config::TelemetrySettings;
use sluice_core::telemetry::logging::{self, LogFormat};

use keys::KeysCommand;
use plugin::PluginCommand;

/// The process allocator: jemalloc, with its background thread returning freed memory to the
/// system. glibc's malloc and free were 18% of the instructions of a request through auth +
/// ratelimit (about 170 allocations per request, many of them strings crossing the plugin
/// boundary); jemalloc takes 11% off that request and 6% off a bare one (docs/benchmarks.md).
/// mimalloc took 14% off but stayed at 89 MiB resident after a cold plugin compile, past the
/// 64 MiB budget; jemalloc's background thread purges every arena on its own clock, so
/// resident memory stays near glibc's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Apply the pending Postgres migrations (embedded from `migrations/`) and print what was
    /// applied: to `--database-url`, else to the `[postgres]` database of `--config`, else to
    /// `DATABASE_URL` from the environment.
    Migrate {
        /// The config file whose `[postgres]` database to migrate.
        #[arg(long, conflicts_with = "database_url")]
        config: Option<PathBuf>,
        /// The database to migrate, as a `postgres://` URL.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print a completion script for `shell` to standard output, e.g.
    /// `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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

/// The `[telemetry]` settings to start with: the config's for `sluice run`, the defaults for
/// the other commands.
fn telemetry_settings(command: &Command) -> TelemetrySettings {
    match command {
        Command::Run { config } => run::telemetry_settings(config.as_deref()),
        _ => TelemetrySettings::default(),
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => check::check(config.as_deref()).await,
        Command::Plugin { action } => plugin::run(action).await,
        Command::Run { config } => run::run(config).await,
        Command::Migrate { config, database_url } => {
            let target = migrate::Target::choose(config, database_url, std::env::var("DATABASE_URL").ok());
            migrate::migrate(target).await
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "sluice", &mut std::io::stdout());
            Ok(())
        }
        Command::Keys {
            config,
            secret_env,
            channel,
            action,
        } => keys::command(config.as_deref(), keys::KeysOptions { secret_env, channel }, action).await,
        Command::Version => {
            println!(
                "sluice {}\nwasmtime 48.0.8\nplugin world {}@{}",
                env!("CARGO_PKG_VERSION"),
                sluice_runtime::WIT_PACKAGE,
                sluice_runtime::WIT_VERSION
            );
            Ok(())
        }
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
    let result = runtime.block_on(dispatch(cli.command));
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
