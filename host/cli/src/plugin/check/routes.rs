//! `init` of the checked file with the config of each route that uses its `[plugins.NAME]`
//! entry, through the gateway's own route building (grants, limits, `${env:...}` expansion).

use std::path::Path;

use sluice_config::GatewayConfig;
use sluice_runtime::Runtime;

use super::report::RouteInit;

/// Runs `init` of `file` for every route of `gateway` whose chain has entry `name`, each
/// route on its own so that one failure does not hide the others.
pub async fn init_each_route(runtime: &Runtime, gateway: &GatewayConfig, name: &str, file: &Path) -> Vec<RouteInit> {
    let mut results = Vec::new();
    for route in gateway
        .routes
        .iter()
        .filter(|r| r.plugins.iter().any(|e| e.plugin == name))
    {
        let mut one = gateway.clone();
        let mut route = route.clone();
        route.plugins.retain(|e| e.plugin == name);
        one.routes = vec![route.clone()];
        one.plugins.retain(|n, _| n == name);
        if let Some(def) = one.plugins.get_mut(name) {
            // The file being checked, whatever module the entry names.
            def.module = file.to_path_buf();
        }
        let prefix = format!("on route '{}': ", route.name);
        let error = runtime
            .build_routes(&one)
            .await
            .err()
            .map(|e| e.reason.strip_prefix(&prefix).unwrap_or(&e.reason).to_string());
        results.push(RouteInit {
            route: route.name,
            error,
        });
    }
    results
}
