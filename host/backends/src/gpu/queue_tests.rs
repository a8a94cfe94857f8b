use super::*;

fn tenant(name: &str) -> Arc<str> {
    Arc::from(name)
}

fn queue() -> AdmissionQueue<&'static str> {
    AdmissionQueue::new(100, 1_000)
}

#[test]
fn higher_priority_goes_first_then_the_oldest() {
    let mut q = queue();
    q.push(3, tenant("a"), 0, "low").unwrap();
    q.push(8, tenant("a"), 1, "high-1").unwrap();
    q.push(8, tenant("a"), 2, "high-2").unwrap();
    let order: Vec<_> = std::iter::from_fn(|| q.pop_next(10, |_| true).map(|w| w.item)).collect();
    assert_eq!(order, ["high-1", "high-2", "low"]);
}

#[test]
fn within_a_priority_tenants_take_turns() {
    let mut q = queue();
    for i in 0..3 {
        q.push(5, tenant("busy"), i, "busy").unwrap();
    }
    q.push(5, tenant("quiet"), 10, "quiet").unwrap();
    let first = q.pop_next(20, |_| true).unwrap();
    assert_eq!(first.item, "busy", "the oldest first when nobody was served yet");
    let second = q.pop_next(20, |_| true).unwrap();
    assert_eq!(
        second.item, "quiet",
        "then the tenant served longest ago, though it came last"
    );
}

#[test]
fn waiting_ages_a_request_up_so_nothing_starves() {
    let mut q: AdmissionQueue<u32> = AdmissionQueue::new(1_000, 100);
    q.push(1, tenant("batch"), 0, 0).unwrap();
    // A steady stream of priority-10 requests, one new per admission, 10 ms apart.
    let mut now = 0;
    let mut admitted_at = None;
    for n in 1..=200 {
        now += 10;
        q.push(10, tenant("interactive"), now, n).unwrap();
        let w = q.pop_next(now, |_| true).unwrap();
        if w.item == 0 {
            admitted_at = Some(now);
            break;
        }
    }
    // After 9 aging steps (900 ms) it competes at level 10 and is the oldest: admitted then.
    let at = admitted_at.expect("the priority-1 request starved");
    assert!((900..=1_000).contains(&at), "admitted at {at} ms");
    assert_eq!(q.effective(1, 0, 5_000), 11, "aging stops at ten levels");
}

#[test]
fn only_requests_a_backend_can_take_are_admitted() {
    let mut q = queue();
    q.push(9, tenant("a"), 0, "needs-8-gpus").unwrap();
    q.push(2, tenant("a"), 1, "fits").unwrap();
    let w = q.pop_next(5, |item| *item != "needs-8-gpus").unwrap();
    assert_eq!(w.item, "fits");
    assert!(q.pop_next(5, |item| *item != "needs-8-gpus").is_none());
    assert_eq!(q.len(), 1);
}

#[test]
fn a_full_queue_refuses_and_a_cancelled_request_leaves() {
    let mut q: AdmissionQueue<u32> = AdmissionQueue::new(2, 1_000);
    let first = q.push(5, tenant("a"), 0, 1).unwrap();
    q.push(5, tenant("a"), 0, 2).unwrap();
    let full = q.push(5, tenant("a"), 0, 3).unwrap_err();
    assert_eq!((full.item, full.waiting), (3, 2));
    assert_eq!(q.remove(first), Some(1));
    assert_eq!(q.remove(first), None);
    assert!(q.push(5, tenant("a"), 0, 3).is_ok());
}

#[test]
fn priorities_are_clamped_and_counted() {
    let mut q = queue();
    q.push(0, tenant("a"), 0, "zero").unwrap();
    q.push(200, tenant("a"), 0, "huge").unwrap();
    q.push(4, tenant("a"), 0, "four").unwrap();
    let counts = q.by_priority();
    assert_eq!((counts[0], counts[3], counts[9]), (1, 1, 1));
    assert_eq!(q.ahead_of(5, 0), 1, "only the clamped 10 is ahead of a new 5");
    assert_eq!(q.ahead_of(1, 0), 3);
}
