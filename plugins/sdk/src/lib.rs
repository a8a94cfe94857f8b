//! The Rust SDK for Sluice gateway plugins.
//!
//! A plugin is a type implementing [`Plugin`], exported with [`export_plugin!`], built for
//! `wasm32-wasip2`. Every hook has a default (`continue`), so a plugin writes only the hooks
//! it needs and lists them in [`Plugin::HOOKS`]:
//!
//! ```ignore
//! use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestHead, RequestVerdict};
//!
//! struct AddHeader;
//!
//! impl Plugin for AddHeader {
//!     const NAME: &'static str = "add-header";
//!     const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];
//!
//!     fn new(_config: Config) -> Result<Self, String> {
//!         Ok(AddHeader)
//!     }
//!
//!     fn on_request_headers(&mut self, _req: &RequestHead) -> RequestVerdict {
//!         Edits::new().set("x-hello", "world").into()
//!     }
//! }
//!
//! sluice_plugin_sdk::export_plugin!(AddHeader);
//! ```
//!
//! The host interfaces (log, metrics, clock, kv, cache, redis, postgres, http-client, gpu, body,
//! response, rate-limit, http-cache) are re-exported as modules of the same names; a call to one the plugin's config does not grant
//! returns [`HostError::Denied`].

pub mod alloc;
mod config;
mod error;
#[doc(hidden)]
pub mod packed;
mod plugin;
mod request;
mod verdict;

/// The bindings generated from the `plugin-packed` world of `sluice:plugin@0.1.5` (the
/// `plugin` world with the packed request hooks). Most plugins need only the re-exports at
/// the crate root.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin-packed",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_sluice_world",
        default_bindings_module: "::sluice_plugin_sdk::bindings",
    });
}

pub use bindings::sluice::plugin::types::{
    CacheSpec, CoalesceSpec, Encoding, EncodingSpec, HeaderEdits, Hook, HostError, LocalResponse, LogEntry, PluginInfo,
    RequestHead, RequestVerdict, ResponseHead, ResponseVerdict, UpstreamChoice,
};
pub use bindings::sluice::plugin::{
    audit, body, cache, clock, crypto, gpu, head, http_cache, http_client, kv, log, metrics, postgres, rate_limit,
    redis, response,
};
/// Plugins built with the SDK allocate through [`alloc::SizeClasses`] (a few instructions per
/// allocation where wasi-libc's malloc takes hundreds), unless they enable the feature
/// `system-allocator` (for example to install an allocator of their own).
#[cfg(all(target_arch = "wasm32", not(feature = "system-allocator")))]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

pub use config::Config;
pub use plugin::{Plugin, Reads, describe};
pub use request::{Headers, RequestExt, header_list};
pub use verdict::{Edits, Response};

/// Exports a [`Plugin`] type as the component's `sluice:plugin` world (its `plugin-packed`
/// form).
///
/// Use it once per plugin crate, at the crate root. The generated glue keeps one value of the
/// type per instance: `init` builds it with [`Plugin::new`] and declares its [`Plugin::reads`] to
/// the host, and each hook borrows it. The request and response hooks are exported twice: as
/// the world's typed functions and packed (heads and verdicts as one buffer each), which the
/// host calls when it has them; both run the same [`Plugin`] method.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct SluiceGuest;

            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::core::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::core::option::Option::None) };
            }

            fn with_instance<R>(default: R, hook: impl FnOnce(&mut $plugin) -> R) -> R {
                INSTANCE.with(|cell| match cell.borrow_mut().as_mut() {
                    ::core::option::Option::Some(plugin) => hook(plugin),
                    ::core::option::Option::None => default,
                })
            }

            impl $crate::bindings::Guest for SluiceGuest {
                fn describe() -> $crate::PluginInfo {
                    $crate::describe::<$plugin>()
                }

                fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    let plugin = <$plugin as $crate::Plugin>::new($crate::Config::new(config))?;
                    if let ::core::option::Option::Some(reads) = $crate::Plugin::reads(&plugin) {
                        $crate::head::reads(&reads.headers, &reads.context)
                            .map_err(|e| ::std::format!("the host refused what the plugin reads: {}", e.message()))?;
                    }
                    INSTANCE.with(|cell| *cell.borrow_mut() = ::core::option::Option::Some(plugin));
                    ::core::result::Result::Ok(())
                }

                fn on_request_headers(req: $crate::RequestHead) -> $crate::RequestVerdict {
                    with_instance($crate::RequestVerdict::Continue, |p| {
                        $crate::Plugin::on_request_headers(p, &req)
                    })
                }

                fn on_request_body(req: $crate::RequestHead, body: ::std::vec::Vec<u8>) -> $crate::RequestVerdict {
                    with_instance($crate::RequestVerdict::Continue, |p| {
                        $crate::Plugin::on_request_body(p, &req, &body)
                    })
                }

                fn on_response_headers(
                    req: $crate::RequestHead,
                    resp: $crate::ResponseHead,
                ) -> $crate::ResponseVerdict {
                    with_instance($crate::ResponseVerdict::Continue, |p| {
                        $crate::Plugin::on_response_headers(p, &req, &resp)
                    })
                }

                fn on_request_headers_packed(head: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                    let verdict = with_instance($crate::RequestVerdict::Continue, |p| {
                        let req = $crate::packed::read_request_head(&head).unwrap_or_else(|e| {
                            ::core::panic!("the host passed a request head that cannot be read: {e}")
                        });
                        $crate::Plugin::on_request_headers(p, &req)
                    });
                    $crate::packed::write_request_verdict(&verdict)
                }

                fn on_response_headers_packed(
                    head: ::std::vec::Vec<u8>,
                    resp: ::std::vec::Vec<u8>,
                ) -> ::std::vec::Vec<u8> {
                    let verdict = with_instance($crate::ResponseVerdict::Continue, |p| {
                        let req = $crate::packed::read_request_head(&head).unwrap_or_else(|e| {
                            ::core::panic!("the host passed a request head that cannot be read: {e}")
                        });
                        let resp = $crate::packed::read_response_head(&resp).unwrap_or_else(|e| {
                            ::core::panic!("the host passed a response head that cannot be read: {e}")
                        });
                        $crate::Plugin::on_response_headers(p, &req, &resp)
                    });
                    $crate::packed::write_response_verdict(&verdict)
                }

                fn on_log(entry: $crate::LogEntry) {
                    with_instance((), |p| $crate::Plugin::on_log(p, &entry))
                }

                fn on_message(channel: ::std::string::String, message: ::std::vec::Vec<u8>) {
                    with_instance((), |p| $crate::Plugin::on_message(p, &channel, &message))
                }

                fn on_tick() {
                    with_instance((), |p| $crate::Plugin::on_tick(p))
                }
            }

    $crate::bindings::__export_sluice_world!(SluiceGuest with_types_in $crate::bindings);
        };
    };
}
