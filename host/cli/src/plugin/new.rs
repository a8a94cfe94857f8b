//! `sluice plugin new NAME [--dir DIR]`: scaffolds a Rust plugin on the SDK that builds for
//! wasm32-wasip2 and passes its own test: a plugin that sets a request header from its config.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub mod vendor;

/// Where the new project's SDK comes from.
#[derive(Debug, Clone, PartialEq)]
enum SdkSource {
    /// A path dependency on the SDK of the Sluice checkout this binary was built in.
    Checkout(PathBuf),
    /// A copy of the SDK and its WIT inside the project (`sluice-plugin-sdk/`).
    Vendored,
}

impl SdkSource {
    /// The checkout's SDK when this binary was built in a checkout that is still there and
    /// `vendor` is false; a vendored copy otherwise.
    fn choose(vendor: bool) -> Self {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk");
        match std::fs::canonicalize(&sdk) {
            Ok(path) if !vendor => SdkSource::Checkout(path),
            _ => SdkSource::Vendored,
        }
    }

    /// The `[dependencies]` line for the SDK.
    fn dependency_line(&self) -> String {
        match self {
            SdkSource::Checkout(path) => {
                format!("sluice-plugin-sdk = {{ path = {:?} }}", path.display().to_string())
            }
            SdkSource::Vendored => vendor::DEPENDENCY_LINE.to_string(),
        }
    }
}

/// Checks `name` is a usable crate name: letters, digits, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("'{name}' is not a plugin name: use 1-64 letters, digits, '-' and '_', starting with a letter");
    }
    Ok(())
}

/// The type name for `name` (`add-header` → `AddHeader`).
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes the project into `dir/name` and prints what to do next. With `vendor_sdk`, or when
/// this binary was not built in a Sluice checkout, the SDK is copied into the project.
pub fn run(name: &str, dir: Option<&Path>, vendor_sdk: bool) -> anyhow::Result<()> {
    check_name(name)?;
    let root: PathBuf = dir.unwrap_or(Path::new(".")).join(name);
    if root.exists() {
        bail!("{} already exists: choose another name or directory", root.display());
    }
    std::fs::create_dir_all(root.join("src")).with_context(|| format!("cannot create {}", root.display()))?;
    let file = name.replace('-', "_");
    let sdk = SdkSource::choose(vendor_sdk);
    let files = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        (
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"stable\"\ntargets = [\"wasm32-wasip2\"]\n".to_string(),
        ),
        (".gitignore", "target/\n".to_string()),
        ("src/lib.rs", lib_rs(name)),
        ("README.md", readme(name, &file)),
    ];
    for (path, text) in files {
        std::fs::write(root.join(path), text).with_context(|| format!("cannot write {path}"))?;
    }
    if sdk == SdkSource::Vendored {
        vendor::write_sdk(&root)?;
    }
    println!("created {}", root.display());
    println!(
        "next: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
        root.display()
    );
    println!("then: sluice plugin check target/wasm32-wasip2/release/{file}.wasm");
    Ok(())
}

fn cargo_toml(name: &str, sdk: &SdkSource) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n{}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\npanic = \"abort\"\ncodegen-units = 1\nstrip = \"debuginfo\"\n\n\
         # A workspace of its own, wherever it is created.\n[workspace]\n",
        sdk.dependency_line()
    )
}

fn lib_rs(name: &str) -> String {
    let ty = type_name(name);
    format!(
        r#"//! The `{name}` Sluice plugin: sets a request header from its route config.
//! Config: `{{"header": "x-greeting", "value": "hello"}}`.

use serde::Deserialize;
use sluice_plugin_sdk::{{Config, Edits, Hook, Plugin, RequestHead, RequestVerdict}};

/// The route's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {{
    header: String,
    value: String,
}}

/// Checks the settings (kept apart from the hooks so it can be tested natively).
fn validate(settings: &Settings) -> Result<(), String> {{
    let valid = !settings.header.is_empty() && settings.header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {{
        return Err(format!("`header` '{{}}' is not a header name", settings.header));
    }}
    Ok(())
}}

struct {ty} {{
    settings: Settings,
}}

impl Plugin for {ty} {{
    const NAME: &'static str = "{name}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {{
        let settings: Settings = config.parse()?;
        validate(&settings)?;
        Ok({ty} {{ settings }})
    }}

    fn on_request_headers(&mut self, _req: &RequestHead) -> RequestVerdict {{
        Edits::new().set(&self.settings.header, &self.settings.value).into()
    }}
}}

sluice_plugin_sdk::export_plugin!({ty});

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn good_settings_pass_and_bad_header_names_are_refused() {{
        let good = Settings {{ header: "x-greeting".into(), value: "hello".into() }};
        assert_eq!(validate(&good), Ok(()));
        let bad = Settings {{ header: "not a header".into(), value: "x".into() }};
        assert!(validate(&bad).unwrap_err().contains("not a header name"));
    }}
}}
"#
    )
}

fn readme(name: &str, file: &str) -> String {
    format!(
        "# {name}\n\nA Sluice plugin: sets a request header from its route config.\n\n\
         ```sh\ncargo test                                          # unit tests, natively\n\
         cargo build --release --target wasm32-wasip2        # the component\n\
         sluice plugin check target/wasm32-wasip2/release/{file}.wasm\n\
         echo '{{\"path\": \"/\"}}' > req.json\n\
         sluice plugin test target/wasm32-wasip2/release/{file}.wasm --request req.json \\\n  --config '{{\"header\": \"x-greeting\", \"value\": \"hello\"}}'\n```\n\n\
         In the gateway config:\n\n```toml\n[plugins.{name}]\nmodule = \"path/to/{file}.wasm\"\n\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"{name}\", config = {{ header = \"x-greeting\", value = \"hello\" }} }}]\n```\n\n\
         The guide: docs/plugin-authoring.md in the Sluice repository.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_become_type_names() {
        assert!(check_name("add-header").is_ok());
        assert!(check_name("1st").is_err());
        assert!(check_name("a b").is_err());
        assert_eq!(type_name("add-header_v2"), "AddHeaderV2");
    }

    #[test]
    fn the_sdk_is_the_checkout_or_a_vendored_copy() {
        let path = SdkSource::Checkout("/src/sluice/plugins/sdk".into()).dependency_line();
        assert_eq!(path, "sluice-plugin-sdk = { path = \"/src/sluice/plugins/sdk\" }");
        assert_eq!(SdkSource::choose(true), SdkSource::Vendored);
        // Built in this checkout, the default is a path to it.
        assert!(matches!(SdkSource::choose(false), SdkSource::Checkout(_)));
        let manifest: toml::Table = toml::from_str(&cargo_toml("x", &SdkSource::Vendored)).unwrap();
        assert!(manifest["dependencies"]["sluice-plugin-sdk"]["path"].is_str());
    }
}
