//! What `sluice plugin check` found, printed one fact a line or as one JSON object (`--json`).

use serde::Serialize;

/// The whole report on one file.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The file checked, as given.
    pub file: String,
    /// Whether the gateway could load it (and, with a config, `init` it on every route).
    pub loadable: bool,
    /// Why it is not loadable: one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What loading it found; absent when it did not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginFacts>,
    /// The grants compared with a gateway config (`--config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFacts>,
}

/// The facts about a component that loaded.
#[derive(Debug, Default, Serialize)]
pub struct PluginFacts {
    /// The name `describe` returned.
    pub name: String,
    /// The version `describe` returned.
    pub version: String,
    /// The hooks `describe` declared, by WIT name.
    pub hooks: Vec<String>,
    /// Whether the component exports the packed request hooks (the `plugin-packed` world), which
    /// the host then calls in place of the typed ones.
    pub packed_hooks: bool,
    /// The largest request body the plugin reads, if it reads bodies.
    pub max_body_bytes: Option<u32>,
    /// The file's size in bytes.
    pub size_bytes: usize,
    /// Always true here: a core module does not load.
    pub component: bool,
    /// The `sluice:plugin` version the component was built against (from its imports).
    pub wit_version: Option<String>,
    /// The WIT version this host implements.
    pub host_wit_version: String,
    /// Milliseconds the host's engine took to compile it.
    pub compile_ms: f64,
    /// The `sluice:plugin` host interfaces it imports (without package and version).
    pub host_imports: Vec<String>,
    /// The WASI interfaces it imports, as named in the component.
    pub wasi_imports: Vec<String>,
    /// The grants (`grants.*` keys) its host imports need.
    pub grants_needed: Vec<String>,
    /// Whether it imports every interface that needs a grant, as componentize-js and
    /// componentize-py build components whatever the code calls.
    pub imports_every_interface: bool,
}

/// The plugin's `[plugins.NAME]` entry in a gateway config.
#[derive(Debug, Default, Serialize)]
pub struct ConfigFacts {
    /// The config file.
    pub file: String,
    /// The `[plugins.NAME]` entry compared with.
    pub entry: String,
    /// Imported interfaces the entry does not grant.
    pub missing_grants: Vec<MissingGrant>,
    /// `init` on each route that uses the entry.
    pub routes: Vec<RouteInit>,
}

/// An imported interface whose grant is missing.
#[derive(Debug, Serialize)]
pub struct MissingGrant {
    /// The WIT interface, e.g. `postgres`.
    pub interface: String,
    /// The `grants.*` key that would cover it.
    pub grant: String,
}

/// The outcome of `init` with one route's config.
#[derive(Debug, Serialize)]
pub struct RouteInit {
    /// The route's name.
    pub route: String,
    /// Why `init` (or configuring the route entry) failed; none when it succeeded.
    pub error: Option<String>,
}

impl Report {
    /// Prints the report as one JSON object on stdout.
    pub fn print_json(&self) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(self)?);
        Ok(())
    }

    /// Prints the report one fact a line on stdout. A load error is left to the caller, which
    /// reports it as the command's error (one line on stderr).
    pub fn print_human(&self) {
        if let Some(p) = &self.plugin {
            print_plugin(&self.file, p);
        }
        if let Some(c) = &self.config {
            print_config(c);
        }
    }
}

fn print_plugin(file: &str, p: &PluginFacts) {
    println!("{file}: plugin {} {}", p.name, p.version);
    println!(
        "format: WebAssembly component built against sluice:plugin@{} (this host speaks {}: it loads)",
        p.wit_version.as_deref().unwrap_or("0.1.x"),
        p.host_wit_version
    );
    println!(
        "hooks: {}{}",
        p.hooks.join(", "),
        if p.packed_hooks {
            " (request hooks called packed: plugin-packed world)"
        } else {
            ""
        }
    );
    match p.max_body_bytes {
        Some(n) => println!("reads request bodies up to {n} bytes"),
        None => println!("reads no request bodies"),
    }
    println!("size: {} bytes; compiled in {:.1} ms", p.size_bytes, p.compile_ms);
    println!(
        "imports: {} (and {} WASI interfaces)",
        if p.host_imports.is_empty() {
            "no host interfaces".to_string()
        } else {
            p.host_imports.join(", ")
        },
        p.wasi_imports.len()
    );
    if !p.wasi_imports.is_empty() {
        println!("wasi imports: {}", p.wasi_imports.join(", "));
    }
    if p.grants_needed.is_empty() {
        println!("grants needed: none");
    } else {
        println!("grants needed to use them: {}", p.grants_needed.join(", "));
    }
    if p.imports_every_interface {
        println!(
            "note: it imports every host interface of the world (componentize-js and componentize-py \
             build that way); only the interfaces it calls need their grants"
        );
    }
}

fn print_config(c: &ConfigFacts) {
    let name = &c.entry;
    for m in &c.missing_grants {
        println!(
            "warning: imports {}, which [plugins.{name}] does not grant (grants.{}): calls will fail with `denied`",
            m.interface, m.grant
        );
    }
    if c.missing_grants.is_empty() {
        println!("[plugins.{name}] in {} grants everything it imports", c.file);
    }
    if c.routes.is_empty() {
        println!("no route in {} uses [plugins.{name}]: init not run", c.file);
    }
    for r in &c.routes {
        match &r.error {
            None => println!("route {}: init ok", r.route),
            Some(e) => println!("route {}: init failed: {e}", r.route),
        }
    }
}
