//! The SDK copied into a new plugin project (`sluice plugin new --sdk vendored`, the default
//! outside a Sluice checkout): the SDK's sources and the WIT it binds, embedded in this binary,
//! so the project builds from crates.io alone, against exactly the world this host speaks.

use std::path::Path;

use anyhow::{Context, anyhow};

/// The SDK's source files, as `(path under src/, text)`.
const SDK_SOURCES: &[(&str, &str)] = &[
    ("alloc.rs", include_str!("../../../../../plugins/sdk/src/alloc.rs")),
    (
        "alloc/tests.rs",
        include_str!("../../../../../plugins/sdk/src/alloc/tests.rs"),
    ),
    ("config.rs", include_str!("../../../../../plugins/sdk/src/config.rs")),
    ("error.rs", include_str!("../../../../../plugins/sdk/src/error.rs")),
    ("lib.rs", include_str!("../../../../../plugins/sdk/src/lib.rs")),
    ("packed.rs", include_str!("../../../../../plugins/sdk/src/packed.rs")),
    (
        "packed/tests.rs",
        include_str!("../../../../../plugins/sdk/src/packed/tests.rs"),
    ),
    ("plugin.rs", include_str!("../../../../../plugins/sdk/src/plugin.rs")),
    ("request.rs", include_str!("../../../../../plugins/sdk/src/request.rs")),
    ("verdict.rs", include_str!("../../../../../plugins/sdk/src/verdict.rs")),
];

/// The packed hooks' byte layout (`sluice-wire`), which the SDK depends on, as `(path under
/// src/, text)`; the copy goes into `sluice-plugin-sdk/wire`.
const WIRE_SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../../../../../host/wire/src/lib.rs")),
    ("tests.rs", include_str!("../../../../../host/wire/src/tests.rs")),
];

/// The WIT package the SDK binds, as `(file, text)`.
const WIT_FILES: &[(&str, &str)] = &[
    ("host.wit", include_str!("../../../../../wit/host.wit")),
    ("types.wit", include_str!("../../../../../wit/types.wit")),
    ("world.wit", include_str!("../../../../../wit/world.wit")),
];

/// The plugins workspace manifest: the SDK's dependency versions come from here.
const PLUGINS_MANIFEST: &str = include_str!("../../../../../plugins/Cargo.toml");

/// Where the SDK's `generate!` finds the WIT in this repository, and in a vendored copy.
const WIT_PATH_IN_REPO: &str = "path: \"../../wit\"";
const WIT_PATH_VENDORED: &str = "path: \"wit\"";

/// The dependency line of a project whose SDK copy is in `sluice-plugin-sdk/`.
pub const DEPENDENCY_LINE: &str = "# The SDK and the WIT it binds, copied by `sluice plugin new` from the host that made\n\
     # this project; `sluice plugin new` again with a newer host gives a newer copy.\n\
     sluice-plugin-sdk = { path = \"sluice-plugin-sdk\" }";

/// Writes the SDK (manifest, sources, WIT, and its `sluice-wire` dependency in `wire/`) into
/// `project/sluice-plugin-sdk`.
pub fn write_sdk(project: &Path) -> anyhow::Result<()> {
    let root = project.join("sluice-plugin-sdk");
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(root.join("Cargo.toml"), sdk_manifest()?).context("cannot write the SDK's Cargo.toml")?;
    for (file, text) in SDK_SOURCES {
        let text = if *file == "lib.rs" {
            vendored_lib(text)?
        } else {
            text.to_string()
        };
        write_source(&root.join("src").join(file), &text)?;
    }
    let wire = root.join("wire");
    std::fs::create_dir_all(&wire)?;
    std::fs::write(wire.join("Cargo.toml"), wire_manifest()).context("cannot write sluice-wire's Cargo.toml")?;
    for (file, text) in WIRE_SOURCES {
        write_source(&wire.join("src").join(file), text)?;
    }
    write_wit(&root.join("wit"))
}

/// Writes one source file, creating its directory.
fn write_source(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A standalone manifest for the copy of `sluice-wire` (no dependencies).
fn wire_manifest() -> String {
    format!(
        "[package]\nname = \"sluice-wire\"\nversion = \"{}\"\nedition = \"2024\"\npublish = false\n\
         description = \"The packed hooks' byte layout, copied with the Sluice plugin SDK\"\n\n[dependencies]\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes the WIT package this host speaks (`host.wit`, `types.wit`, `world.wit`) into `dir`,
/// creating it; an existing file of the same name is replaced.
pub fn write_wit(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, text) in WIT_FILES {
        std::fs::write(dir.join(file), text).with_context(|| format!("cannot write {file}"))?;
    }
    Ok(())
}

/// The SDK's `lib.rs` with `generate!` pointed at the copied WIT.
fn vendored_lib(text: &str) -> anyhow::Result<String> {
    if !text.contains(WIT_PATH_IN_REPO) {
        return Err(anyhow!(
            "the SDK no longer names its WIT as {WIT_PATH_IN_REPO}; update vendor.rs"
        ));
    }
    Ok(text.replacen(WIT_PATH_IN_REPO, WIT_PATH_VENDORED, 1))
}

/// A standalone manifest for the SDK copy, with the plugins workspace's dependency versions.
fn sdk_manifest() -> anyhow::Result<String> {
    let workspace: toml::Table = toml::from_str(PLUGINS_MANIFEST)?;
    let deps = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
        .ok_or_else(|| anyhow!("plugins/Cargo.toml has no [workspace.dependencies]"))?;
    let mut lines = vec!["sluice-wire = { path = \"wire\" }".to_string()];
    for name in ["wit-bindgen", "serde", "serde_json"] {
        let spec = deps
            .get(name)
            .ok_or_else(|| anyhow!("plugins/Cargo.toml does not name {name}"))?;
        lines.push(format!("{name} = {spec}"));
    }
    Ok(format!(
        "[package]\nname = \"sluice-plugin-sdk\"\nversion = \"{}\"\nedition = \"2024\"\npublish = false\n\
         description = \"The Sluice plugin SDK, copied by `sluice plugin new`\"\n\n\
         [features]\nsystem-allocator = []\n\n[dependencies]\n{}\n",
        env!("CARGO_PKG_VERSION"),
        lines.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_points_at_its_own_wit_and_has_a_valid_manifest() {
        let lib = SDK_SOURCES.iter().find(|(f, _)| *f == "lib.rs").unwrap().1;
        let vendored = vendored_lib(lib).unwrap();
        assert!(vendored.contains(WIT_PATH_VENDORED) && !vendored.contains(WIT_PATH_IN_REPO));
        let manifest: toml::Table = toml::from_str(&sdk_manifest().unwrap()).unwrap();
        let deps = manifest["dependencies"].as_table().unwrap();
        assert!(
            deps["wit-bindgen"]["version"].as_str().unwrap().starts_with("0."),
            "{deps:?}"
        );
        assert!(deps.contains_key("serde") && deps.contains_key("serde_json"));
        assert_eq!(deps["sluice-wire"]["path"].as_str(), Some("wire"));
        assert!(manifest["features"].get("system-allocator").is_some());
        let wire: toml::Table = toml::from_str(&wire_manifest()).unwrap();
        assert_eq!(wire["package"]["name"].as_str(), Some("sluice-wire"));
        let line: toml::Table = toml::from_str(&format!("[dependencies]\n{DEPENDENCY_LINE}\n")).unwrap();
        assert_eq!(
            line["dependencies"]["sluice-plugin-sdk"]["path"].as_str(),
            Some("sluice-plugin-sdk")
        );
    }
}
