//! Response compression: the compression ratio and the CPU time per MB of each encoding at
//! the host's default level, on a realistic JSON payload of about 1 MB (an API listing:
//! ids, names, e-mail addresses, timestamps, prices, nested tags), fed to the encoder in
//! 16 KiB frames as a streamed body would be. Ratios are printed once before the timings
//! (`ratio gzip level 6: 7.9 (1048576 -> 132000 bytes)`). `bench/compress-load` builds a
//! payload of the same shape for its load runs.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_bindings::Encoding;
use sluice_core::compress::{Encoder, default_level, token};

/// Frames of this size, as an upstream's body arrives.
const FRAME: usize = 16 * 1024;

/// A JSON array of records, about `target` bytes, the same every run (a fixed seed).
fn payload(target: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(6);
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    ];
    let mut out = String::from("[");
    let mut id = 0u64;
    while out.len() < target {
        id += 1;
        let first = words[rng.usize(..words.len())];
        let last = words[rng.usize(..words.len())];
        let record = serde_json::json!({
            "id": id,
            "uuid": format!("{:016x}{:016x}", rng.u64(..), rng.u64(..)),
            "name": format!("{first} {last}"),
            "email": format!("{first}.{last}{}@example.com", rng.u32(..1000)),
            "created_at": format!("2026-{:02}-{:02}T{:02}:{:02}:{:02}Z", rng.u8(1..13), rng.u8(1..29), rng.u8(..24), rng.u8(..60), rng.u8(..60)),
            "price": (rng.f64() * 10_000.0).round() / 100.0,
            "active": rng.bool(),
            "tags": [words[rng.usize(..words.len())], words[rng.usize(..words.len())]],
            "address": { "city": words[rng.usize(..words.len())], "zip": format!("{:05}", rng.u32(..100_000)) },
        });
        if id > 1 {
            out.push(',');
        }
        out.push_str(&record.to_string());
    }
    out.push(']');
    out.into_bytes()
}

/// Compresses `data` as a stream of frames and returns the compressed size.
fn compress(encoding: Encoding, level: i32, data: &[u8]) -> usize {
    let mut encoder = Encoder::new(encoding, level).expect("encoder");
    let mut size = 0;
    for frame in data.chunks(FRAME) {
        encoder.write(frame).expect("write");
        size += encoder.take().len();
    }
    size + encoder.finish().expect("finish").len()
}

fn encodings(c: &mut Criterion) {
    let data = payload(1 << 20);
    let mut group = c.benchmark_group("compress");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    for encoding in [Encoding::Gzip, Encoding::Br, Encoding::Zstd] {
        let level = default_level(encoding);
        let size = compress(encoding, level, &data);
        println!(
            "ratio {} level {level}: {:.2} ({} -> {size} bytes)",
            token(encoding),
            data.len() as f64 / size as f64,
            data.len()
        );
        group.bench_function(format!("{}_1mb_json", token(encoding)), |b| {
            b.iter(|| black_box(compress(encoding, level, black_box(&data))))
        });
    }
    group.finish();
}

criterion_group!(benches, encodings);
criterion_main!(benches);
