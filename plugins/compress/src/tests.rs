use sluice_plugin_sdk::{Encoding, RequestHead, ResponseHead};

use super::{Skip, decide};
use crate::settings::Settings;

fn request(method: &str, accept: Option<&str>) -> RequestHead {
    RequestHead {
        method: method.into(),
        scheme: "http".into(),
        authority: "example.test".into(),
        path: "/".into(),
        headers: accept
            .map(|a| vec![("accept-encoding".to_string(), a.as_bytes().to_vec())])
            .unwrap_or_default(),
        client_ip: "127.0.0.1".into(),
        request_id: "r".into(),
        route: "r".into(),
        context: Vec::new(),
    }
}

fn response(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn settings(json: &str) -> Settings {
    Settings::from_json(json).unwrap()
}

#[test]
fn a_compressible_response_gets_the_negotiated_encoding_and_its_level() {
    let s = settings(r#"{"levels":{"br":7}}"#);
    let spec = decide(&s, &request("GET", Some("gzip, br")), &response(200, &[JSON])).unwrap();
    assert_eq!(spec.encoding, Encoding::Br);
    assert_eq!(spec.level, Some(7));
    let spec = decide(
        &s,
        &request("POST", Some("gzip")),
        &response(404, &[JSON, ("content-length", "5000")]),
    )
    .unwrap();
    assert_eq!(spec.encoding, Encoding::Gzip);
    assert_eq!(spec.level, None, "the host's default");
}

#[test]
fn skip_rules() {
    let s = settings("{}");
    let gzip = Some("gzip");
    let cases: Vec<(RequestHead, ResponseHead, Skip)> = vec![
        (request("HEAD", gzip), response(200, &[JSON]), Skip::Head),
        (request("GET", gzip), response(204, &[JSON]), Skip::Status),
        (request("GET", gzip), response(206, &[JSON]), Skip::Status),
        (request("GET", gzip), response(304, &[JSON]), Skip::Status),
        (request("GET", gzip), response(103, &[JSON]), Skip::Status),
        (
            request("GET", gzip),
            response(200, &[JSON, ("content-encoding", "br")]),
            Skip::Encoded,
        ),
        (
            request("GET", gzip),
            response(200, &[JSON, ("Cache-Control", "public, No-Transform")]),
            Skip::NoTransform,
        ),
        (
            request("GET", gzip),
            response(200, &[("content-type", "image/png")]),
            Skip::ContentType,
        ),
        (request("GET", gzip), response(200, &[]), Skip::ContentType),
        (
            request("GET", gzip),
            response(200, &[JSON, ("content-length", "999")]),
            Skip::Small,
        ),
        (request("GET", None), response(200, &[JSON]), Skip::NotAccepted),
        (
            request("GET", Some("gzip;q=0")),
            response(200, &[JSON]),
            Skip::NotAccepted,
        ),
    ];
    for (req, resp, why) in cases {
        assert_eq!(
            decide(&s, &req, &resp).map(|_| ()),
            Err(why),
            "{:?} {resp:?}",
            req.method
        );
    }
}

#[test]
fn minimum_size_edges() {
    let s = settings(r#"{"min_size":1000}"#);
    let req = request("GET", Some("zstd"));
    assert!(decide(&s, &req, &response(200, &[JSON, ("content-length", "1000")])).is_ok());
    assert!(
        decide(&s, &req, &response(200, &[JSON])).is_ok(),
        "unknown length: compressed"
    );
    assert!(decide(&s, &req, &response(200, &[JSON, ("content-length", "x")])).is_ok());
    let zero = settings(r#"{"min_size":0}"#);
    assert!(decide(&zero, &req, &response(200, &[JSON, ("content-length", "1")])).is_ok());
}

#[test]
fn identity_content_encoding_is_not_an_encoding() {
    let s = settings("{}");
    let resp = response(200, &[JSON, ("content-encoding", "identity")]);
    assert!(decide(&s, &request("GET", Some("gzip")), &resp).is_ok());
}

#[test]
fn a_response_not_compressed_only_because_of_the_client_still_varies_on_it() {
    use sluice_plugin_sdk::{Plugin, ResponseVerdict};
    let mut plugin = super::Compress {
        settings: settings("{}"),
    };
    let plain = request("GET", Some("identity"));
    let verdict = plugin.on_response_headers(&plain, &response(200, &[JSON]));
    let ResponseVerdict::Edit(edits) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(edits.append, vec![("vary".to_string(), b"Accept-Encoding".to_vec())]);
    let already = response(200, &[JSON, ("vary", "Origin, accept-encoding")]);
    assert!(matches!(
        plugin.on_response_headers(&plain, &already),
        ResponseVerdict::Continue
    ));
    let small = response(200, &[JSON, ("content-length", "10")]);
    assert!(
        matches!(plugin.on_response_headers(&plain, &small), ResponseVerdict::Continue),
        "never compressed: no Vary"
    );
}
