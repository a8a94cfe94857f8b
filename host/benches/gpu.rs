//! The GPU scheduler's admission decision with 1,000 requests queued (priorities 1–10, 50
//! tenants): one admission (the queue scanned for the best request a backend can take) plus
//! one arrival, so the queue stays at 1,000. Criterion times the mean; the p99 over 20,000
//! decisions is printed too (the target: p99 ≤ 50 µs).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice::gpu::AdmissionQueue;

const QUEUED: usize = 1_000;

fn filled(rng: &mut fastrand::Rng, tenants: &[Arc<str>]) -> AdmissionQueue<u32> {
    let mut q = AdmissionQueue::new(QUEUED + 1, 500);
    for i in 0..QUEUED {
        let tenant = tenants[rng.usize(..tenants.len())].clone();
        q.push(rng.u8(1..=10), tenant, i as u64, rng.u32(..8)).unwrap();
    }
    q
}

fn decisions(c: &mut Criterion) {
    let tenants: Vec<Arc<str>> = (0..50).map(|i| Arc::from(format!("tenant-{i}"))).collect();
    let mut rng = fastrand::Rng::with_seed(8);
    let mut q = filled(&mut rng, &tenants);
    let mut now = QUEUED as u64;
    // A backend that can take any request needing fewer than 6 GPUs.
    let fits = |gpus: &u32| *gpus < 6;
    c.bench_function("gpu/admit_with_1000_queued", |b| {
        b.iter(|| {
            now += 1;
            let admitted = q.pop_next(now, fits);
            let tenant = tenants[rng.usize(..tenants.len())].clone();
            let _ = q.push(rng.u8(1..=10), tenant, now, rng.u32(..8));
            black_box(admitted)
        })
    });
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        now += 1;
        let started = Instant::now();
        let admitted = q.pop_next(now, fits);
        samples.push(started.elapsed());
        black_box(admitted);
        let tenant = tenants[rng.usize(..tenants.len())].clone();
        let _ = q.push(rng.u8(1..=10), tenant, now, rng.u32(..8));
    }
    samples.sort();
    println!(
        "gpu/admit_with_1000_queued: p50 {:.1} µs, p99 {:.1} µs over {} decisions",
        samples[samples.len() / 2].as_secs_f64() * 1e6,
        samples[samples.len() * 99 / 100].as_secs_f64() * 1e6,
        samples.len()
    );
}

criterion_group!(benches, decisions);
criterion_main!(benches);
