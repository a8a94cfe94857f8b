//! `sluice plugin check FILE.wasm [--config FILE] [--plugin NAME] [--json]`: loads a component
//! as the gateway would (the world, its WIT version, its exports, `describe`), and prints what
//! it is, what it imports, its size and compile time. With a gateway config, also says whether
//! the plugin's grants cover the capabilities it imports and runs its `init` with each route's
//! config. Exits 1 when the file is not a loadable plugin or `init` fails; missing grants are
//! warnings (the calls would fail with `denied`).

mod report;
mod routes;

use std::path::Path;

use sluice_backends::Backends;
use sluice_config::GatewayConfig;
use sluice_runtime::capability::{CAPABILITIES, Capability};
use sluice_runtime::{LoadedPlugin, Runtime, WIT_PACKAGE, WIT_VERSION, hook_name};

use report::{ConfigFacts, MissingGrant, PluginFacts, Report};

/// The host interfaces that need a grant, with the grant that covers them.
/// The interfaces that need a grant, each with its `grants.*` key, from the capability table.
fn granted_interfaces() -> impl Iterator<Item = (&'static str, &'static str, Capability)> {
    CAPABILITIES.iter().filter_map(|d| {
        let key = d.grant?.trim_start_matches("grants.");
        Some((d.name, key, d.capability))
    })
}

/// What to check `file` against, from the command line.
pub struct CheckOptions<'a> {
    /// A gateway config whose grants and route configs to check with.
    pub config: Option<&'a Path>,
    /// The `[plugins.NAME]` entry (default: the one whose module is the file).
    pub plugin: Option<&'a str>,
    /// Print the report as JSON.
    pub json: bool,
}

/// Checks `file` and prints the report; fails (exit 1) when it is not a loadable plugin.
pub async fn run(file: &Path, options: CheckOptions<'_>) -> anyhow::Result<()> {
    let mut report = Report {
        file: file.display().to_string(),
        ..Report::default()
    };
    let result = check(file, &options, &mut report).await;
    report.loadable = result.is_ok();
    if let Err(e) = &result {
        report.error = Some(format!("{e:#}"));
    }
    if options.json {
        report.print_json()?;
    } else {
        report.print_human();
    }
    result
}

async fn check(file: &Path, options: &CheckOptions<'_>, report: &mut Report) -> anyhow::Result<()> {
    // No compile cache: the compile time shown is a real compile, and nothing is written.
    let base = GatewayConfig::parse(
        "[runtime]\ncache_dir = \"\"\n",
        Path::new("plugin-check.toml"),
        std::env::current_dir()?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = Runtime::for_config(&base, Backends::in_memory()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let loaded = runtime
        .load_plugin("checked", file)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.reason))?;
    let facts = facts(&runtime, &loaded);
    let needed: Vec<(&str, &str, Capability)> = granted_interfaces()
        .filter(|(i, _, _)| facts.host_imports.iter().any(|h| h == i))
        .collect();
    report.plugin = Some(facts);
    let Some(config) = options.config else { return Ok(()) };
    let gateway = GatewayConfig::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let wanted = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let entry = gateway.plugins.iter().find(|(name, def)| match options.plugin {
        Some(p) => name.as_str() == p,
        None => std::fs::canonicalize(gateway.resolve(&def.module)).ok().as_ref() == Some(&wanted),
    });
    let Some((name, def)) = entry else {
        let which = options.plugin.map_or_else(
            || format!("whose module is {}", file.display()),
            |p| format!("named '{p}'"),
        );
        anyhow::bail!("{} has no [plugins.*] entry {which}", config.display());
    };
    let missing_grants = needed
        .iter()
        .filter(|(_, _, capability)| !capability.granted(&def.grants))
        .map(|(interface, grant, _)| MissingGrant {
            interface: interface.to_string(),
            grant: grant.to_string(),
        })
        .collect();
    let routes = routes::init_each_route(&runtime, &gateway, name, &wanted).await;
    let failed: Vec<&str> = routes
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.route.as_str())
        .collect();
    let failed = (!failed.is_empty()).then(|| failed.join(", "));
    report.config = Some(ConfigFacts {
        file: config.display().to_string(),
        entry: name.clone(),
        missing_grants,
        routes,
    });
    if let Some(failed) = failed {
        anyhow::bail!("{}: init failed on route(s) {failed}", file.display());
    }
    Ok(())
}

/// What the loaded component is, declares and imports.
fn facts(runtime: &Runtime, loaded: &LoadedPlugin) -> PluginFacts {
    let info = &loaded.info;
    let component = loaded.instance_pre.component();
    let (mut host_imports, mut wasi_imports, mut wit_version) = (Vec::new(), Vec::new(), None);
    for (name, _) in component.component_type().imports(runtime.engine()) {
        match name.strip_prefix(WIT_PACKAGE).and_then(|r| r.strip_prefix('/')) {
            Some(rest) => {
                let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
                if !version.is_empty() {
                    wit_version.get_or_insert_with(|| version.to_string());
                }
                // `types` holds only type definitions: nothing to grant or call.
                if interface != "types" {
                    host_imports.push(interface.to_string());
                }
            }
            None => wasi_imports.push(name.to_string()),
        }
    }
    let grants_needed: Vec<String> = granted_interfaces()
        .filter(|(i, _, _)| host_imports.iter().any(|h| h == i))
        .map(|(_, g, _)| g.to_string())
        .collect();
    let imports_every_interface = grants_needed.len() == granted_interfaces().count();
    PluginFacts {
        name: info.name.clone(),
        version: info.version.clone(),
        hooks: info.hooks.iter().map(|h| hook_name(*h).to_string()).collect(),
        packed_hooks: loaded.packed.any(),
        max_body_bytes: info.max_body_bytes,
        size_bytes: loaded.size,
        component: true,
        wit_version,
        host_wit_version: WIT_VERSION.to_string(),
        compile_ms: loaded.compile_time.as_secs_f64() * 1000.0,
        host_imports,
        wasi_imports,
        grants_needed,
        imports_every_interface,
    }
}
