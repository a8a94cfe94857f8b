//! `sluice plugin check FILE.wasm [--config FILE] [--plugin NAME]`: loads a component as the
//! gateway would (the world, its WIT version, its exports, `describe`), and prints what it is,
//! what it imports, its size and compile time. With a gateway config, also says whether the
//! plugin's grants cover the capabilities it imports. Exits 1 when the file is not a loadable
//! plugin; missing grants are warnings (the calls would fail with `denied`).

use std::path::Path;

use sluice::capability::Capabilities;
use sluice::config::{GatewayConfig, Grants};
use sluice::runtime::{Runtime, hook_name};

/// The host interfaces that need a grant, with the grant that covers them.
const GRANTED: &[(&str, &str)] = &[
    ("kv", "kv"),
    ("cache", "cache"),
    ("redis", "redis"),
    ("postgres", "postgres"),
    ("http-client", "http"),
    ("gpu", "gpu"),
    ("audit", "audit"),
    ("rate-limit", "ratelimit"),
    ("http-cache", "http_cache"),
];

fn granted(grants: &Grants, grant: &str) -> bool {
    match grant {
        "kv" => grants.kv,
        "cache" => grants.cache,
        "redis" => grants.redis.is_some(),
        "postgres" => grants.postgres.is_some(),
        "http" => grants.http.is_some(),
        "gpu" => grants.gpu,
        "audit" => grants.audit,
        "ratelimit" => grants.ratelimit,
        "http_cache" => grants.http_cache,
        _ => true,
    }
}

/// Checks `file` and prints the report; `config` and `plugin` select grants to compare with.
pub async fn run(file: &Path, config: Option<&Path>, plugin: Option<&str>) -> anyhow::Result<()> {
    // No compile cache: the compile time shown is a real compile, and nothing is written.
    let base = GatewayConfig::parse(
        "[runtime]\ncache_dir = \"\"\n",
        Path::new("plugin-check.toml"),
        std::env::current_dir()?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = Runtime::for_config(&base, Capabilities::in_memory()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let loaded = runtime
        .load_plugin("checked", file)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.reason))?;
    let info = &loaded.info;
    let hooks: Vec<&str> = info.hooks.iter().map(|h| hook_name(*h)).collect();
    println!("{}: plugin {} {}", file.display(), info.name, info.version);
    println!(
        "world: {}@{} (loads in this host)",
        sluice::runtime::WIT_PACKAGE,
        sluice::runtime::WIT_VERSION
    );
    println!("hooks: {}", hooks.join(", "));
    match info.max_body_bytes {
        Some(n) => println!("reads request bodies up to {n} bytes"),
        None => println!("reads no request bodies"),
    }
    println!(
        "size: {} bytes; compiled in {:.1} ms",
        loaded.size,
        loaded.compile_time.as_secs_f64() * 1000.0
    );
    let engine = runtime.engine();
    let component = loaded.pre.instance_pre().component();
    let mut host = Vec::new();
    let mut wasi = 0;
    for (name, _) in component.component_type().imports(engine) {
        match name.strip_prefix("sluice:plugin/") {
            // `types` holds only type definitions: nothing to grant or call.
            Some(rest) if rest.starts_with("types@") => {}
            Some(rest) => host.push(rest.split('@').next().unwrap_or(rest).to_string()),
            None => wasi += 1,
        }
    }
    println!(
        "imports: {} (and {wasi} WASI interfaces)",
        if host.is_empty() {
            "no host interfaces".into()
        } else {
            host.join(", ")
        }
    );
    let needed: Vec<(&str, &str)> = GRANTED
        .iter()
        .copied()
        .filter(|(i, _)| host.iter().any(|h| h == i))
        .collect();
    if needed.is_empty() {
        println!("grants needed: none");
    } else {
        let names: Vec<&str> = needed.iter().map(|(_, g)| *g).collect();
        println!("grants needed to use them: {}", names.join(", "));
    }
    let Some(config) = config else { return Ok(()) };
    let gateway = GatewayConfig::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let wanted = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let entry = gateway.plugins.iter().find(|(name, def)| match plugin {
        Some(p) => name.as_str() == p,
        None => std::fs::canonicalize(gateway.resolve(&def.module)).ok().as_ref() == Some(&wanted),
    });
    let Some((name, def)) = entry else {
        let which = plugin.map_or_else(
            || format!("whose module is {}", file.display()),
            |p| format!("named '{p}'"),
        );
        anyhow::bail!("{} has no [plugins.*] entry {which}", config.display());
    };
    let mut missing = 0;
    for (interface, grant) in needed {
        if !granted(&def.grants, grant) {
            missing += 1;
            println!(
                "warning: imports {interface}, which [plugins.{name}] does not grant (grants.{grant}): calls will fail with `denied`"
            );
        }
    }
    if missing == 0 {
        println!("[plugins.{name}] in {} grants everything it imports", config.display());
    }
    Ok(())
}
