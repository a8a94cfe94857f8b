use super::*;

fn settings() -> Settings {
    Settings {
        min_prefix_chars: 8,
        prefix_chars: 32,
        ..Settings::default()
    }
}

fn ok(endpoint: Endpoint, body: &str) -> Inference {
    parse(endpoint, body.as_bytes(), &settings()).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn err(endpoint: Endpoint, body: &str) -> ApiError {
    parse(endpoint, body.as_bytes(), &settings()).expect_err(body)
}

#[test]
fn endpoints_are_recognised_by_exact_path() {
    assert_eq!(Endpoint::of("/v1/chat/completions"), Some(Endpoint::Chat));
    assert_eq!(Endpoint::of("/v1/completions"), Some(Endpoint::Completions));
    assert_eq!(Endpoint::of("/v1/embeddings"), Some(Endpoint::Embeddings));
    for other in ["/v1/models", "/v1/chat/completions/", "/v2/completions", ""] {
        assert_eq!(Endpoint::of(other), None, "{other}");
    }
}

#[test]
fn fnv1a_matches_the_reference_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn prefix_hash_covers_the_first_characters_only() {
    let a = "x".repeat(40) + "tail one";
    let b = "x".repeat(40) + "tail two";
    assert_eq!(prefix_hash(&a, 32, 8), prefix_hash(&b, 32, 8));
    assert_eq!(prefix_hash(&a, 32, 8), Some(fnv1a64("x".repeat(32).as_bytes())));
    assert_ne!(prefix_hash(&a, 48, 8), prefix_hash(&b, 48, 8));
    assert_eq!(prefix_hash("short", 32, 8), None);
    assert_eq!(prefix_hash("12345678", 32, 8), Some(fnv1a64(b"12345678")));
    assert_eq!(prefix_hash("", 32, 0), Some(fnv1a64(b"")));
    // Characters, not bytes: a multi-byte prefix is cut on a character boundary.
    let wide = "\u{e9}".repeat(10);
    assert_eq!(
        prefix_hash(&wide, 4, 4),
        Some(fnv1a64("\u{e9}\u{e9}\u{e9}\u{e9}".as_bytes()))
    );
}

#[test]
fn chat_bodies_give_model_estimate_budget_and_prefix() {
    let body = r#"{"model": "llama-3-8b", "max_tokens": 100, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": null, "tool_calls": []}
    ]}"#;
    let inf = ok(Endpoint::Chat, body);
    assert_eq!(inf.model, "llama-3-8b");
    assert_eq!(inf.max_tokens, 100);
    // "system: You are terse.\nuser: Hi\nassistant: \n" is 44 characters.
    assert_eq!(inf.prompt_tokens, 11);
    assert!(inf.prefix_hash.is_some());
}

#[test]
fn a_different_system_prompt_gives_a_different_prefix() {
    let chat = |system: &str| {
        ok(
            Endpoint::Chat,
            &format!(r#"{{"model":"m","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"same question here"}}]}}"#),
        )
        .prefix_hash
    };
    assert_eq!(chat("Be helpful."), chat("Be helpful."));
    assert_ne!(chat("Be helpful."), chat("Be brief!!!"));
    // The same words as a user message are not the same prefix as a system prompt.
    let as_user = ok(
        Endpoint::Chat,
        r#"{"model":"m","messages":[{"role":"user","content":"Be helpful."}]}"#,
    );
    assert_ne!(chat("Be helpful."), as_user.prefix_hash);
}

#[test]
fn budgets_prefer_max_completion_tokens_and_multiply_by_n() {
    let s = |b: &str| ok(Endpoint::Chat, b).max_tokens;
    assert_eq!(s(r#"{"model":"m","messages":[]}"#), 256);
    assert_eq!(s(r#"{"model":"m","max_tokens":null}"#), 256);
    assert_eq!(s(r#"{"model":"m","max_completion_tokens":50,"max_tokens":10}"#), 50);
    assert_eq!(s(r#"{"model":"m","max_tokens":10,"n":3}"#), 30);
    assert_eq!(s(r#"{"model":"m","max_tokens":4294967295,"n":2}"#), u32::MAX);
    assert_eq!(s(r#"{"model":"m","max_tokens":0}"#), 0);
}

#[test]
fn completions_take_strings_and_token_ids() {
    let inf = ok(Endpoint::Completions, r#"{"model":"m","prompt":"abcdefghi"}"#);
    assert_eq!((inf.prompt_tokens, inf.max_tokens), (3, 256));
    assert_eq!(inf.prefix_hash, Some(fnv1a64(b"abcdefghi")));
    let inf = ok(Endpoint::Completions, r#"{"model":"m","prompt":["abcd","efgh"]}"#);
    assert_eq!(inf.prompt_tokens, 3); // "abcd\nefgh": 9 characters
    let inf = ok(Endpoint::Completions, r#"{"model":"m","prompt":[1,2,3,4,5]}"#);
    assert_eq!((inf.prompt_tokens, inf.prefix_hash), (5, None));
    let inf = ok(Endpoint::Completions, r#"{"model":"m"}"#);
    assert_eq!(inf.prompt_tokens, 0);
}

#[test]
fn embeddings_have_no_budget_and_no_prefix() {
    let long = "y".repeat(100);
    let inf = ok(
        Endpoint::Embeddings,
        &format!(r#"{{"model":"e","input":"{long}","max_tokens":9}}"#),
    );
    assert_eq!((inf.prompt_tokens, inf.max_tokens, inf.prefix_hash), (25, 0, None));
    let inf = ok(Endpoint::Embeddings, r#"{"model":"e","input":[[1,2,3],[4,5]]}"#);
    assert_eq!(inf.prompt_tokens, 5);
    let inf = ok(Endpoint::Embeddings, r#"{"model":"e","input":["abcd","ef"]}"#);
    assert_eq!(inf.prompt_tokens, 2);
}

#[test]
fn the_estimate_counts_characters_not_bytes() {
    let inf = ok(
        Endpoint::Completions,
        "{\"model\":\"m\",\"prompt\":\"\u{65e5}\u{672c}\u{8a9e}\u{3067}\"}",
    );
    assert_eq!(inf.prompt_tokens, 1);
}

#[test]
fn bad_json_is_invalid_json() {
    for body in ["", "{", "not json", "{\"model\": }", "[1,2]", "\"text\"", "null"] {
        let e = err(Endpoint::Chat, body);
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (400, "invalid_json", None),
            "{body}"
        );
    }
    assert_eq!(
        parse(Endpoint::Chat, &[0xff, 0xfe], &settings()).unwrap_err().code,
        "invalid_json"
    );
}

#[test]
fn a_missing_or_non_string_model_is_missing_model() {
    for body in [r#"{}"#, r#"{"model": 5}"#, r#"{"model": null}"#, r#"{"model": ["m"]}"#] {
        let e = err(Endpoint::Completions, body);
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (400, "missing_model", Some("model")),
            "{body}"
        );
    }
}

#[test]
fn malformed_fields_are_invalid_request_naming_the_field() {
    for (endpoint, body, param) in [
        (Endpoint::Chat, r#"{"model":"m","messages":"hi"}"#, "messages"),
        (Endpoint::Chat, r#"{"model":"m","messages":["hi"]}"#, "messages"),
        (
            Endpoint::Chat,
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            "messages",
        ),
        (Endpoint::Completions, r#"{"model":"m","prompt":5}"#, "prompt"),
        (Endpoint::Completions, r#"{"model":"m","prompt":[1,"a",{}]}"#, "prompt"),
        (Endpoint::Embeddings, r#"{"model":"m","input":[[1,-2]]}"#, "input"),
        (Endpoint::Embeddings, r#"{"model":"m","input":{"a":1}}"#, "input"),
        (Endpoint::Chat, r#"{"model":"m","max_tokens":-1}"#, "max_tokens"),
        (Endpoint::Chat, r#"{"model":"m","max_tokens":"10"}"#, "max_tokens"),
        (
            Endpoint::Completions,
            r#"{"model":"m","max_completion_tokens":1.5}"#,
            "max_completion_tokens",
        ),
        (Endpoint::Chat, r#"{"model":"m","n":0}"#, "n"),
    ] {
        let e = err(endpoint, body);
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (400, "invalid_request", Some(param)),
            "{body}"
        );
    }
}
