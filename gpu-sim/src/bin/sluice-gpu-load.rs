//! `sluice-gpu-load`: closed-loop load with mixed priorities against one chat completions URL.
//!
//! `--concurrency` workers each send `POST` chat requests with an `x-priority` header picked at
//! random by weight (`--mix`), wait for the whole answer, and send the next. Requests that
//! finish within the measured window (after `--warmup-s`, for `--duration-s`) are counted; at
//! the end of the window requests still in flight are abandoned and reported per priority as
//! `unfinished` with the age of the oldest (a lower bound of its latency, so starvation shows).
//! Prints one JSON object on stdout. Everything random is seeded by `--seed`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Closed-loop load with mixed priorities against an OpenAI-compatible chat completions URL.
#[derive(Parser, Clone)]
#[command(name = "sluice-gpu-load", version)]
struct Args {
    /// Full URL of the chat completions endpoint, e.g. `http://127.0.0.1:8080/v1/chat/completions`.
    #[arg(long)]
    url: Uri,
    /// Concurrent workers, each with one request in flight.
    #[arg(long, default_value_t = 48)]
    concurrency: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration_s: f64,
    /// Warm-up before the measured window, in seconds (its results are not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Priorities and their weights, `priority:weight` separated by commas.
    #[arg(long, default_value = "1:60,5:30,9:10")]
    mix: String,
    /// Seed of every random choice (priorities, lengths, prompt words).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Model name sent in each request.
    #[arg(long, default_value = "m")]
    model: String,
    /// Upper bound of `max_tokens`; each request draws uniformly from [N/2, N].
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// Words in each prompt.
    #[arg(long, default_value_t = 30)]
    prompt_words: usize,
    /// Free text copied into the output.
    #[arg(long, default_value = "")]
    label: String,
}

/// One finished request: its priority, latency in ms and status (0: transport error).
type Record = (u8, f64, u16);

/// What one worker saw: finished requests in the window, and the age of the request it
/// abandoned at the end of the window, if any.
struct WorkerResult {
    records: Vec<Record>,
    unfinished: Option<(u8, f64)>,
}

const WORDS: &[&str] = &[
    "river", "stone", "cloud", "lamp", "orbit", "vector", "garden", "signal", "copper", "meadow", "engine", "harbor",
    "pixel", "quartz", "window", "thunder", "forest", "ledger", "socket", "violet", "canyon", "binary", "ember",
    "glacier",
];

/// Parses `1:60,5:30,9:10` into (priority, weight) pairs.
fn parse_mix(mix: &str) -> anyhow::Result<Vec<(u8, u32)>> {
    let mut out = Vec::new();
    for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (p, w) = part
            .split_once(':')
            .with_context(|| format!("mix entry `{part}` is not priority:weight"))?;
        let p: u8 = p.trim().parse().with_context(|| format!("bad priority in `{part}`"))?;
        let w: u32 = w.trim().parse().with_context(|| format!("bad weight in `{part}`"))?;
        if !(1..=10).contains(&p) {
            bail!("priority {p} is outside 1..=10");
        }
        out.push((p, w));
    }
    if out.iter().map(|&(_, w)| u64::from(w)).sum::<u64>() == 0 {
        bail!("--mix has no positive weight");
    }
    Ok(out)
}

/// Picks a priority at random by weight.
fn pick(rng: &mut fastrand::Rng, mix: &[(u8, u32)]) -> u8 {
    let total: u32 = mix.iter().map(|&(_, w)| w).sum();
    let mut r = rng.u32(0..total);
    for &(p, w) in mix {
        if r < w {
            return p;
        }
        r -= w;
    }
    mix[mix.len() - 1].0
}

/// Nearest-rank percentile (`p` in 0..=100) of ascending `sorted` values; `None` when empty.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Seconds of a `Retry-After` header given in (possibly fractional) seconds.
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value))
}

/// Loops sending requests until `end`; counts those that finish after `measure_from`.
async fn worker(
    id: usize,
    args: Args,
    mix: Vec<(u8, u32)>,
    client: Client<HttpConnector, Full<Bytes>>,
    measure_from: Instant,
    end: Instant,
) -> WorkerResult {
    let mut rng = fastrand::Rng::with_seed(args.seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
    let mut records = Vec::new();
    while Instant::now() < end {
        let priority = pick(&mut rng, &mix);
        let low = (args.max_tokens / 2).max(1);
        let max_tokens = rng.u32(low..=args.max_tokens.max(low));
        let prompt: Vec<&str> = (0..args.prompt_words)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect();
        let body = json!({
            "model": args.model,
            "messages": [{"role": "user", "content": prompt.join(" ")}],
            "max_tokens": max_tokens,
        });
        let request = Request::post(args.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-priority", priority.to_string())
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request");
        let start = Instant::now();
        let exchange = async {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            body.collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts.status, retry_after(&parts.headers)))
        };
        let outcome = match tokio::time::timeout_at(end.into(), exchange).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let age = start.elapsed().as_secs_f64() * 1e3;
                return WorkerResult {
                    records,
                    unfinished: Some((priority, age)),
                };
            }
        };
        let done = Instant::now();
        let latency = (done - start).as_secs_f64() * 1e3;
        let (status, pause) = match outcome {
            Ok((status, wait)) => {
                let retryable = status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
                let pause = wait.filter(|_| retryable).map(|d| d.min(Duration::from_secs(1)));
                (status.as_u16(), pause)
            }
            // Transport error: do not spin against a gateway that is down.
            Err(_) => (0, Some(Duration::from_millis(100))),
        };
        if done >= measure_from {
            records.push((priority, latency, status));
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    WorkerResult {
        records,
        unfinished: None,
    }
}

/// Builds the output object from every worker's results.
fn report(args: &Args, results: &[WorkerResult]) -> Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_priority: BTreeMap<u8, (u64, Vec<f64>, u64, f64)> = BTreeMap::new();
    for &(p, _) in &parse_mix(&args.mix).unwrap_or_default() {
        by_priority.entry(p).or_default();
    }
    let (mut requests, mut ok) = (0u64, 0u64);
    for result in results {
        for &(p, latency, status) in &result.records {
            let key = if status == 0 {
                "error".to_string()
            } else {
                status.to_string()
            };
            *statuses.entry(key).or_default() += 1;
            let entry = by_priority.entry(p).or_default();
            entry.0 += 1;
            requests += 1;
            if status == 200 {
                entry.1.push(latency);
                ok += 1;
            }
        }
        if let Some((p, age)) = result.unfinished {
            let entry = by_priority.entry(p).or_default();
            entry.2 += 1;
            entry.3 = entry.3.max(age);
        }
    }
    let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    let mut prio = serde_json::Map::new();
    for (p, (count, mut lat, unfinished, oldest)) in by_priority {
        lat.sort_by(f64::total_cmp);
        prio.insert(
            p.to_string(),
            json!({
                "count": count, "ok": lat.len(),
                "p50_ms": round(percentile(&lat, 50.0)), "p90_ms": round(percentile(&lat, 90.0)),
                "p99_ms": round(percentile(&lat, 99.0)), "max_ms": round(lat.last().copied()),
                "unfinished": unfinished, "unfinished_max_age_ms": round(Some(oldest)),
            }),
        );
    }
    json!({
        "label": args.label, "duration_s": args.duration_s, "concurrency": args.concurrency,
        "mix": args.mix, "seed": args.seed, "requests": requests, "ok": ok, "errors": requests - ok,
        "throughput_rps": round(Some(ok as f64 / args.duration_s)),
        "by_priority": prio, "statuses": statuses,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mix = parse_mix(&args.mix)?;
    if args.concurrency == 0
        || args.duration_s.is_nan()
        || args.duration_s <= 0.0
        || args.warmup_s.is_nan()
        || args.warmup_s < 0.0
    {
        bail!("--concurrency and --duration-s must be above 0, --warmup-s at least 0");
    }
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup_s);
    let end = measure_from + Duration::from_secs_f64(args.duration_s);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|id| tokio::spawn(worker(id, args.clone(), mix.clone(), client.clone(), measure_from, end)))
        .collect();
    let mut results = Vec::with_capacity(workers.len());
    for w in workers {
        results.push(w.await?);
    }
    println!("{}", report(&args, &results));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&v, 99.0), Some(10.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn mix_parses_and_picks_by_weight() {
        let mix = parse_mix("1:60, 5:30,9:10").unwrap();
        assert_eq!(mix, vec![(1, 60), (5, 30), (9, 10)]);
        assert!(parse_mix("11:1").is_err() && parse_mix("1:0").is_err() && parse_mix("x").is_err());
        let mut rng = fastrand::Rng::with_seed(1);
        let nines = (0..10_000).filter(|_| pick(&mut rng, &mix) == 9).count();
        assert!((800..1200).contains(&nines), "{nines}");
    }
}
