use super::*;
use sluice_config::{GpuBackendDef, GpuModelDef};

fn backend(name: &str, slots: u32, models: &[(&str, bool)]) -> GpuBackendDef {
    GpuBackendDef {
        name: name.into(),
        url: format!("http://{name}:8000"),
        kind: Default::default(),
        gpus: 1,
        memory_mb: 24_576,
        slots,
        models: models
            .iter()
            .map(|(m, resident)| GpuModelDef {
                name: (*m).into(),
                size_mb: 8_000,
                resident: *resident,
            })
            .collect(),
    }
}

fn settings(backends: Vec<GpuBackendDef>) -> GpuSettings {
    let mut s: GpuSettings = toml::from_str("").unwrap();
    s.backends = backends;
    s.queue_capacity = 4;
    s
}

fn spec(model: &str, priority: u8, request_id: &str) -> Spec {
    Spec {
        model: model.into(),
        priority,
        tenant: Arc::from("t"),
        request_id: request_id.into(),
        prompt_tokens: 10,
        max_tokens: 10,
        ..Spec::default()
    }
}

fn granted(rx: &mut oneshot::Receiver<Result<Grant, AcquireError>>) -> Option<Grant> {
    rx.try_recv().ok().map(|r| r.expect("granted, not failed"))
}

#[test]
fn a_warm_backend_wins_over_a_cold_one() {
    let s = Scheduler::new(&settings(vec![
        backend("cold", 4, &[("m", false)]),
        backend("warm", 4, &[("m", true)]),
    ]));
    let (_, mut rx) = s.reserve(spec("m", 5, "r1")).unwrap();
    let grant = granted(&mut rx).unwrap();
    assert_eq!(&*grant.name, "warm");
    assert!(!grant.cold);
}

#[test]
fn unknown_models_and_bad_priorities_are_refused() {
    let s = Scheduler::new(&settings(vec![backend("a", 1, &[("m", true)])]));
    assert_eq!(
        s.reserve(spec("other", 5, "r")).unwrap_err(),
        AcquireError::UnknownModel("other".into())
    );
    assert!(matches!(s.reserve(spec("m", 0, "r")), Err(AcquireError::Invalid(_))));
    assert!(matches!(s.reserve(spec("m", 11, "r")), Err(AcquireError::Invalid(_))));
}

#[test]
fn saturation_queues_then_admits_the_highest_priority_on_release() {
    let s = Scheduler::new(&settings(vec![backend("a", 1, &[("m", true)])]));
    let (first, mut rx) = s.reserve(spec("m", 5, "r1")).unwrap();
    assert!(granted(&mut rx).is_some());
    let (_, mut low) = s.reserve(spec("m", 1, "r2")).unwrap();
    let (_, mut high) = s.reserve(spec("m", 9, "r3")).unwrap();
    assert!(
        granted(&mut low).is_none() && granted(&mut high).is_none(),
        "saturated: both wait"
    );
    let released = s
        .release(
            first,
            Outcome {
                success: true,
                ..Outcome::default()
            },
        )
        .unwrap();
    assert_eq!(released.backend.as_deref(), Some("a"));
    assert!(granted(&mut high).is_some(), "the high-priority request goes first");
    assert!(granted(&mut low).is_none());
}

#[test]
fn a_full_queue_answers_with_an_estimated_wait() {
    let s = Scheduler::new(&settings(vec![backend("a", 1, &[("m", true)])]));
    let mut keep = Vec::new();
    for i in 0..5 {
        keep.push(s.reserve(spec("m", 5, &format!("r{i}"))).unwrap());
    }
    match s.reserve(spec("m", 5, "r9")) {
        Err(AcquireError::QueueFull {
            retry_after_ms,
            capacity,
        }) => {
            assert_eq!(capacity, 4);
            assert!(retry_after_ms >= 1000, "{retry_after_ms}");
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
}

#[test]
fn the_prefix_owner_gets_the_follow_up() {
    let s = Scheduler::new(&settings(vec![
        backend("a", 4, &[("m", true)]),
        backend("b", 4, &[("m", true)]),
    ]));
    let mut first = spec("m", 5, "r1");
    first.prefix = Some(42);
    // Take a slot on `a` so the first request goes to `b`, which then holds the prefix.
    let (busy, _rx) = s.reserve(spec("m", 5, "r0")).unwrap();
    let (id, mut rx) = s.reserve(first.clone()).unwrap();
    assert_eq!(&*granted(&mut rx).unwrap().name, "b");
    s.release(
        id,
        Outcome {
            success: true,
            ..Outcome::default()
        },
    );
    s.release(busy, Outcome::default());
    first.request_id = "r2".into();
    let (_, mut rx) = s.reserve(first).unwrap();
    assert_eq!(&*granted(&mut rx).unwrap().name, "b", "follows its prefix");
}

#[test]
fn a_failed_backend_is_excluded_on_retry_and_the_last_one_failing_ends_it() {
    let s = Scheduler::new(&settings(vec![
        backend("a", 4, &[("m", true)]),
        backend("b", 4, &[("m", true)]),
    ]));
    let (id, mut rx) = s.reserve(spec("m", 5, "r1")).unwrap();
    let first = granted(&mut rx).unwrap();
    let mut rx = s.retry(id).unwrap();
    let second = granted(&mut rx).unwrap();
    assert_ne!(first.name, second.name);
    assert!(matches!(s.retry(id), Err(AcquireError::NoBackend { .. })));
    assert!(s.release(id, Outcome::default()).is_none(), "already ended");
}

#[test]
fn a_dependent_request_waits_for_its_dependency() {
    let s = Scheduler::new(&settings(vec![backend("a", 4, &[("m", true)])]));
    let (first, _rx) = s.reserve(spec("m", 5, "step-1")).unwrap();
    let mut next = spec("m", 5, "step-2");
    next.depends_on = vec!["step-1".into()];
    let (_, mut rx) = s.reserve(next).unwrap();
    assert!(granted(&mut rx).is_none(), "step-1 still runs");
    s.release(first, Outcome::default());
    assert!(granted(&mut rx).is_some());
}

#[test]
fn a_cold_success_makes_the_model_resident_and_teaches_the_load_time() {
    let s = Scheduler::new(&settings(vec![backend("a", 4, &[("m", false)])]));
    let (id, mut rx) = s.reserve(spec("m", 5, "r1")).unwrap();
    assert!(granted(&mut rx).unwrap().cold);
    let released = s
        .release(
            id,
            Outcome {
                success: true,
                first_token_ms: Some(700.0),
                ..Outcome::default()
            },
        )
        .unwrap();
    assert!(released.loaded_model);
    let (_, mut rx) = s.reserve(spec("m", 5, "r2")).unwrap();
    assert!(!granted(&mut rx).unwrap().cold);
    assert_eq!(s.lock().cold.estimate("a", "m", 8_000), 700.0);
}

#[test]
fn a_dropped_waiter_gives_its_grant_back() {
    let s = Scheduler::new(&settings(vec![backend("a", 1, &[("m", true)])]));
    let (first, _keep) = s.reserve(spec("m", 5, "r1")).unwrap();
    let (_, rx) = s.reserve(spec("m", 5, "r2")).unwrap();
    drop(rx);
    s.release(first, Outcome::default());
    assert_eq!(s.lock().backends[0].in_flight, 0, "the grant to nobody was released");
    assert!(s.lock().leases.is_empty());
}

#[test]
fn a_reload_adds_backends_and_retires_others_without_dropping_their_leases() {
    let s = Scheduler::new(&settings(vec![backend("old", 1, &[("m", true)])]));
    let (old_lease, mut rx) = s.reserve(spec("m", 5, "r1")).unwrap();
    assert_eq!(&*granted(&mut rx).unwrap().name, "old");
    // The only slot is taken: the next request queues.
    let (_, mut queued) = s.reserve(spec("m", 5, "r2")).unwrap();
    assert!(granted(&mut queued).is_none());

    // A backend added by a reload takes the queued request at once.
    let index = s.add_backend(&backend("new", 1, &[("m", true)]));
    assert_eq!(index, 1);
    assert_eq!(&*granted(&mut queued).unwrap().name, "new");
    assert_eq!(s.settings().backends.len(), 2, "definitions stay aligned with indexes");

    // Retiring `old` keeps its lease until released, and sends nothing new there.
    s.retire(0);
    assert!(s.is_retired(0) && !s.is_retired(1));
    assert_eq!(s.active_backends().len(), 1);
    assert!(s.release(old_lease, Outcome::default()).is_some());
    let (_, mut third) = s.reserve(spec("m", 5, "r3")).unwrap();
    assert!(
        granted(&mut third).is_none(),
        "`new` is busy and `old` takes nothing new"
    );
    let listed: Vec<String> = s.models().into_iter().flat_map(|m| m.backends).collect();
    assert_eq!(listed, ["new"], "a retired backend's models are not listed");
}

#[test]
fn a_model_only_a_retired_backend_had_is_unknown() {
    let s = Scheduler::new(&settings(vec![
        backend("a", 1, &[("m", true), ("only-a", true)]),
        backend("b", 1, &[("m", true)]),
    ]));
    s.retire(0);
    assert!(matches!(
        s.reserve(spec("only-a", 5, "r1")),
        Err(AcquireError::UnknownModel(_))
    ));
    assert!(s.reserve(spec("m", 5, "r2")).is_ok());
}
