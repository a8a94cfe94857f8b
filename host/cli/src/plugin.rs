//! `sluice plugin …`: tools for plugin authors. `new` scaffolds a Rust plugin, `check` says
//! what a component is and whether a config grants what it imports, `wit` writes the WIT this
//! host speaks, `test` runs a plugin's hooks offline against a recorded request.

mod check;
mod new;
mod test;
mod wit;

use std::path::PathBuf;

use clap::Subcommand;

/// `sluice plugin` subcommands.
#[derive(Subcommand)]
pub enum PluginCommand {
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

/// Runs `command`.
pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, dir, vendor_sdk } => new::run(&name, dir.as_deref(), vendor_sdk),
        PluginCommand::Wit { dir } => wit::write_wit(&dir),
        PluginCommand::Check {
            file,
            config,
            plugin,
            json,
        } => {
            let options = check::CheckOptions {
                config: config.as_deref(),
                plugin: plugin.as_deref(),
                json,
            };
            check::run(&file, options).await
        }
        PluginCommand::Test {
            file,
            request,
            response,
            config,
        } => test::run(&file, &request, response.as_deref(), &config).await,
    }
}
