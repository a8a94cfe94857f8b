//! `sluice plugin wit DIR`: the WIT package this binary speaks, for plugins in other
//! languages built outside a Sluice checkout.

use std::path::Path;

use super::new::vendor;

/// `sluice plugin wit DIR`: writes the WIT this host speaks, for toolchains of other languages
/// (componentize-js, componentize-py) used outside a Sluice checkout.
pub fn write_wit(dir: &Path) -> anyhow::Result<()> {
    vendor::write_wit(dir)?;
    println!(
        "wrote {}/{{host,types,world}}.wit: package sluice:plugin@{}, world `plugin`",
        dir.display(),
        sluice_runtime::WIT_VERSION
    );
    Ok(())
}
