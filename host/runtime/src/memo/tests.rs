use super::*;
use crate::reads::tests::head;
use crate::state::Directives;
use sluice_bindings::RequestVerdict;

fn edits(subject: &str) -> HeaderEdits {
    HeaderEdits {
        set: vec![("x-subject".into(), subject.as_bytes().to_vec())],
        append: Vec::new(),
        remove: Vec::new(),
        context: vec![("subject".into(), subject.into())],
    }
}

fn request(ttl_ms: u64, key: MemoKey) -> MemoRequest {
    MemoRequest {
        ttl: Duration::from_millis(ttl_ms),
        key,
        reads: Reads::new(vec!["x-api-key".into()], vec!["tier".into()]),
        audit: Vec::new(),
        charge: None,
    }
}

fn with_response() -> Directives {
    Directives {
        response: Some(edits("labelled")),
        ..Directives::default()
    }
}

#[test]
fn a_kept_verdict_answers_requests_with_the_same_reads_only() {
    let memo = VerdictMemo::default();
    let req = head();
    assert!(memo.reuse(&req).is_none(), "nothing kept yet");
    let verdict = RequestVerdict::Edit(edits("ann"));
    assert!(memo.keep(
        &req,
        request(60_000, MemoKey::empty()),
        &verdict,
        with_response().response.as_ref(),
        true
    ));
    let reused = memo.reuse(&req).expect("kept");
    let shown = |v: &dyn std::fmt::Debug| format!("{v:?}");
    assert_eq!(shown(&reused.verdict), shown(&verdict));
    assert_eq!(shown(&reused.response), shown(&Some(edits("labelled"))));

    // Not declared: another path, another cookie, another request id change nothing.
    let mut other = head();
    other.path = "/elsewhere".into();
    other.request_id = "req-2".into();
    other.headers.retain(|(n, _)| n != "cookie");
    assert!(memo.reuse(&other).is_some());

    // A declared header or context entry that differs does.
    let mut key = head();
    key.headers[3].1 = b"sk_3".to_vec();
    assert!(memo.reuse(&key).is_none(), "second value of the key header differs");
    let mut reordered = head();
    reordered.headers.swap(1, 3);
    assert!(
        memo.reuse(&reordered).is_none(),
        "the key header's values in another order"
    );
    let mut tier = head();
    tier.context[0].1 = "free".into();
    assert!(memo.reuse(&tier).is_none());
    let mut missing = head();
    missing.headers.retain(|(n, _)| n != "x-api-key");
    assert!(memo.reuse(&missing).is_none());
}

#[test]
fn the_memo_key_flags_add_parts_of_the_head() {
    let memo = VerdictMemo::default();
    let req = head();
    let key = MemoKey::PATH | MemoKey::METHOD;
    assert!(memo.keep(&req, request(60_000, key), &RequestVerdict::Continue, None, true));
    let mut path = head();
    path.path = "/v2".into();
    assert!(memo.reuse(&path).is_none());
    let mut method = head();
    method.method = "POST".into();
    assert!(memo.reuse(&method).is_none());
    let mut ip = head();
    ip.client_ip = "10.0.0.10".into();
    assert!(memo.reuse(&ip).is_some(), "the client IP was not named");
}

#[test]
fn verdicts_that_do_more_than_edit_or_expired_ones_are_not_reused() {
    let memo = VerdictMemo::default();
    let req = head();
    let respond = RequestVerdict::Respond(sluice_bindings::LocalResponse {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
    });
    assert!(!memo.keep(&req, request(60_000, MemoKey::empty()), &respond, None, true));
    let decompress = Directives {
        decompress: Some(sluice_core::decompress::DecompressRequest {
            max_bytes: 10,
            max_ratio: 10,
        }),
        ..Directives::default()
    };
    assert!(!memo.keep(
        &req,
        request(60_000, MemoKey::empty()),
        &RequestVerdict::Continue,
        None,
        decompress.only_edits()
    ));
    assert!(memo.reuse(&req).is_none());

    assert!(memo.keep(
        &req,
        request(1, MemoKey::empty()),
        &RequestVerdict::Continue,
        None,
        true
    ));
    std::thread::sleep(Duration::from_millis(20));
    assert!(memo.reuse(&req).is_none(), "expired after 1 ms");
}

#[test]
fn a_zero_ttl_withdraws_and_clear_forgets_everything() {
    let memo = VerdictMemo::default();
    let req = head();
    let keep = |ttl| {
        memo.keep(
            &req,
            request(ttl, MemoKey::empty()),
            &RequestVerdict::Continue,
            None,
            true,
        )
    };
    assert!(keep(60_000));
    assert!(!keep(0));
    assert!(memo.reuse(&req).is_none());
    assert!(keep(60_000));
    memo.clear();
    assert!(memo.reuse(&req).is_none());
    assert_eq!(memo.kept(), 0);
}

#[test]
fn another_declaration_or_key_shape_starts_afresh() {
    let memo = VerdictMemo::default();
    let req = head();
    assert!(memo.keep(
        &req,
        request(60_000, MemoKey::empty()),
        &RequestVerdict::Continue,
        None,
        true
    ));
    let mut other = request(60_000, MemoKey::PATH);
    other.reads = Reads::new(vec!["authorization".into()], Vec::new());
    let mut bearer = head();
    bearer.headers.push(("authorization".into(), b"Bearer t".to_vec()));
    assert!(memo.keep(&bearer, other, &RequestVerdict::Continue, None, true));
    assert_eq!(memo.kept(), 1, "the first shape's verdicts were dropped");
    assert!(memo.reuse(&bearer).is_some());
    assert!(memo.reuse(&head()).is_none());
}

/// A call on an eligible instance's `on-request-headers`, as `invoke` begins it.
fn recording() -> MemoCall {
    let mut call = MemoCall {
        eligible: true,
        ..MemoCall::default()
    };
    call.begin();
    call.recording = true;
    call
}

fn asked(charged: bool) -> Option<Asked> {
    Some(Asked {
        ttl: Duration::from_secs(1),
        key: MemoKey::empty(),
        charged,
        fields: charged.then(|| vec!["per-key".to_string()]),
    })
}

fn spec() -> LimitSpec {
    LimitSpec {
        key: "k".into(),
        quota: 10,
        period_ms: 1000,
        burst: 10,
    }
}

#[test]
fn a_call_that_used_a_per_request_host_call_is_not_kept() {
    let reads = Reads::new(vec!["x-api-key".into()], Vec::new());
    let mut call = recording();
    call.asked = asked(false);
    call.spoil("metrics.counter-add");
    assert!(call.finish(Some(&reads)).is_none());

    let mut call = recording();
    call.asked = asked(false);
    assert!(call.finish(None).is_none(), "no reads declared");

    let mut call = recording();
    call.asked = asked(false);
    let kept = call.finish(Some(&reads)).expect("asked, nothing spoiled");
    assert_eq!(kept.ttl, Duration::from_secs(1));
    assert!(kept.charge.is_none());
    assert!(call.finish(Some(&reads)).is_none(), "taken once");

    // head.memo after a rate-limit check would skip the charge: refused.
    let mut call = recording();
    call.checked(&[spec()], 1, 1.0, true);
    call.asked = asked(false);
    assert!(call.finish(Some(&reads)).is_none());
}

#[test]
fn rate_limit_memo_keeps_the_one_check_that_admitted() {
    let reads = Reads::new(vec!["x-api-key".into()], Vec::new());
    let mut call = recording();
    call.checked(&[spec()], 2, 0.5, true);
    call.asked = asked(true);
    let kept = call.finish(Some(&reads)).expect("one admitting check");
    let charge = kept.charge.expect("charged");
    assert_eq!((charge.specs, charge.cost, charge.local_share), (vec![spec()], 2, 0.5));
    assert_eq!(charge.fields, Some(vec!["per-key".to_string()]));

    let mut call = recording();
    call.checked(&[spec()], 1, 1.0, true);
    call.checked(&[spec()], 1, 1.0, true);
    call.asked = asked(true);
    assert!(call.finish(Some(&reads)).is_none(), "two checks");

    let mut call = recording();
    call.checked(&[spec()], 1, 1.0, false);
    call.asked = asked(true);
    assert!(call.finish(Some(&reads)).is_none(), "the check denied");

    // Outside a recording call nothing is noted at all.
    let mut call = MemoCall::default();
    call.checked(&[spec()], 1, 1.0, true);
    assert_eq!(call.checks, 0);
}

#[test]
fn the_rate_limit_field_is_written_from_the_decision() {
    let names = ["per-key".to_string(), "per-day".to_string()];
    let states = [
        LimitState {
            remaining: 9,
            reset: 1001,
        },
        LimitState { remaining: 0, reset: 0 },
    ];
    let mut edits = Some(edits("ann"));
    edits
        .as_mut()
        .unwrap()
        .set
        .push(("RateLimit".into(), b"stale".to_vec()));
    set_rate_limit_field(&mut edits, &names, &states);
    let set = &edits.unwrap().set;
    assert_eq!(set.len(), 2, "replaced, not added: {set:?}");
    assert_eq!(set[1].1, br#""per-key";r=9;t=2, "per-day";r=0;t=0"#.to_vec());
    let mut none = None;
    set_rate_limit_field(&mut none, &names[..1], &states[..1]);
    assert_eq!(
        none.unwrap().set,
        vec![("ratelimit".to_string(), br#""per-key";r=9;t=2"#.to_vec())]
    );
}
