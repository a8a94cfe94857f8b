//! Sluice's compression plugin. On the response head it decides whether and how the host
//! compresses the body: it negotiates an encoding from the request's `Accept-Encoding`
//! (q-values, `*`, `identity`, the server's preference order) and skips responses that must
//! not or need not be compressed (HEAD, 1xx/204/206/304, already encoded,
//! `Cache-Control: no-transform`, a content type not on the list, a known length below the
//! minimum). The host streams the compression and fixes the headers (`Content-Encoding`,
//! `Content-Length`, `Vary`, `ETag`, `Accept-Ranges`).
//!
//! With `decompress_requests` set, it also asks the host (`body.decompress-request`) to decode
//! compressed request bodies on their way upstream, within a size and a ratio bound.
//!
//! The config reference is `plugins/compress/README.md`.

mod negotiate;
mod settings;

use sluice_plugin_sdk::{
    Config, Edits, EncodingSpec, Headers, Hook, Plugin, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict,
    body, log,
};

use settings::Settings;

struct Compress {
    settings: Settings,
}

/// Why a response is sent as it is (for tests; the plugin only needs the yes/no).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Head,
    Status,
    Encoded,
    NoTransform,
    ContentType,
    Small,
    NotAccepted,
}

/// Decides the `compress` verdict for a response: the encoding spec, or why not.
fn decide(settings: &Settings, req: &RequestHead, resp: &ResponseHead) -> Result<EncodingSpec, Skip> {
    if req.method.eq_ignore_ascii_case("HEAD") {
        return Err(Skip::Head);
    }
    if matches!(resp.status, 100..=199 | 204 | 206 | 304) {
        return Err(Skip::Status);
    }
    let headers = &resp.headers[..];
    let encoded = headers.get_all("content-encoding").any(|v| {
        std::str::from_utf8(v).map_or(true, |s| {
            s.split(',').any(|t| !t.trim().eq_ignore_ascii_case("identity"))
        })
    });
    if encoded {
        return Err(Skip::Encoded);
    }
    let no_transform = headers.get_all("cache-control").any(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
    });
    if no_transform {
        return Err(Skip::NoTransform);
    }
    if !headers.get_str("content-type").is_some_and(|t| settings.allows_type(t)) {
        return Err(Skip::ContentType);
    }
    // An unknown length (a streamed body) is compressed; an unreadable one is treated alike.
    let length = headers
        .get_str("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if length.is_some_and(|len| len < settings.min_size) {
        return Err(Skip::Small);
    }
    let accept: Vec<&str> = req
        .headers
        .get_all("accept-encoding")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    let encoding = negotiate::choose(&accept, &settings.encodings).ok_or(Skip::NotAccepted)?;
    Ok(EncodingSpec {
        encoding,
        level: settings.level(encoding),
    })
}

/// Whether the response's `Vary` already covers `Accept-Encoding` (or is `*`).
fn varies_on_encoding(resp: &ResponseHead) -> bool {
    resp.headers.get_all("vary").any(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .any(|f| f.trim() == "*" || f.trim().eq_ignore_ascii_case("accept-encoding"))
    })
}

impl Plugin for Compress {
    const NAME: &'static str = "compress";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::ResponseHeaders];

    fn new(config: Config) -> Result<Self, String> {
        Ok(Compress {
            settings: Settings::from_json(config.as_str())?,
        })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        if let Some((max_bytes, max_ratio)) = self.settings.decompress_requests
            && req.headers.get_bytes("content-encoding").is_some()
            && let Err(e) = body::decompress_request(max_bytes, max_ratio)
        {
            log::write(log::Level::Warn, &format!("decompress-request refused: {e:?}"));
        }
        RequestVerdict::Continue
    }

    fn on_response_headers(&mut self, req: &RequestHead, resp: &ResponseHead) -> ResponseVerdict {
        match decide(&self.settings, req, resp) {
            Ok(spec) => ResponseVerdict::Compress(spec),
            // Another client would have got it compressed: caches must key on Accept-Encoding.
            Err(Skip::NotAccepted) if !varies_on_encoding(resp) => {
                Edits::new().append("vary", "Accept-Encoding").into()
            }
            Err(_) => ResponseVerdict::Continue,
        }
    }
}

sluice_plugin_sdk::export_plugin!(Compress);

#[cfg(test)]
mod tests;
