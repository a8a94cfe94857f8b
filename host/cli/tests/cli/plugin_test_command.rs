//! `sluice plugin test`: the good test plugin run offline against a recorded request and
//! response, and the errors for a bad request file.

use super::support::sluice_cli;

fn sluice_plugin_test(args: &[&str], request: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let request_file = dir.path().join("request.json");
    std::fs::write(&request_file, request).unwrap();
    let response_file = dir.path().join("response.json");
    std::fs::write(
        &response_file,
        r#"{"status": 200, "headers": {"content-type": "text/plain"}}"#,
    )
    .unwrap();
    let mut all: Vec<std::ffi::OsString> = ["plugin", "test", sluice_artifacts::GOOD, "--request"]
        .iter()
        .map(Into::into)
        .collect();
    all.extend([
        request_file.into_os_string(),
        "--response".into(),
        response_file.into_os_string(),
    ]);
    all.extend(args.iter().map(Into::into));
    sluice_cli(all)
}

#[test]
fn the_hooks_run_offline_and_print_their_verdicts() {
    let request = r#"{"method": "GET", "path": "/", "headers": {"x-chain": "client"}}"#;
    let (ok, out, err) = sluice_plugin_test(&["--config", r#"{"tag": "t1"}"#], request);
    assert!(ok, "{out}{err}");
    assert!(out.contains("(init ok)"), "{out}");
    assert!(
        out.contains("on-request-headers -> edit: set x-chain: client,t1"),
        "{out}"
    );
    assert!(out.contains("context seen-by = t1"), "{out}");
    assert!(out.contains("on-response-headers -> "), "{out}");
    assert!(out.contains("on-log -> ok"), "{out}");

    let with_body = r#"{"method": "POST", "path": "/body", "body": "hello"}"#;
    let (ok, out, err) = sluice_plugin_test(&["--config", r#"{"tag": "t1"}"#], with_body);
    assert!(ok, "{out}{err}");
    assert!(out.contains("on-request-headers -> need-body(16)"), "{out}");
    assert!(out.contains("on-request-body (5 bytes) -> "), "{out}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let (ok, _, err) = sluice_plugin_test(&[], r#"{"path": "/", "bogus": 1}"#);
    assert!(!ok);
    assert!(
        err.contains("the request file") && err.contains("is not the JSON expected"),
        "{err}"
    );
    let (ok, _, err) = sluice_plugin_test(&["--config", r#"{"reject": true}"#], r#"{"path": "/"}"#);
    assert!(!ok);
    assert!(err.contains("refused on purpose"), "{err}");
}
