//! Tokens, deterministic text generation and deterministic embeddings.
//!
//! A "token" is a whitespace-separated word. Output depends only on the seed, the model and the
//! prompt tokens: they are hashed (FNV-1a, stable across builds) into the seed of an RNG that
//! picks words from a fixed vocabulary.

/// The words generated text is made of.
const VOCAB: &[&str] = &[
    "the",
    "a",
    "model",
    "token",
    "cache",
    "gateway",
    "request",
    "stream",
    "latency",
    "memory",
    "queue",
    "route",
    "prefix",
    "batch",
    "kernel",
    "tensor",
    "layer",
    "answer",
    "simulated",
    "quickly",
    "slowly",
    "and",
    "or",
    "is",
    "was",
    "will",
    "never",
    "always",
    "under",
    "over",
    "between",
    "inside",
    "vector",
    "prompt",
    "reply",
    "server",
    "client",
    "header",
    "chunk",
    "load",
    "unload",
    "warm",
    "cold",
    "fast",
    "slow",
    "small",
    "large",
    "green",
];

/// Splits text into tokens: its whitespace-separated words.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A stable 64-bit hash of the seed and a sequence of strings.
fn hash(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Generates the completion for a prompt: between 1 and `max_tokens` words.
///
/// Fewer than `max_tokens` words means the simulated model "stopped"; exactly `max_tokens`
/// means it hit the length limit.
pub(crate) fn generate(seed: u64, model: &str, prompt: &[String], max_tokens: u32) -> Vec<&'static str> {
    let mut parts: Vec<&str> = vec![model];
    parts.extend(prompt.iter().map(String::as_str));
    let mut rng = fastrand::Rng::with_seed(hash(seed, &parts));
    let max = max_tokens.max(1) as usize;
    let natural = rng.usize(4..=40);
    (0..natural.min(max)).map(|_| VOCAB[rng.usize(..VOCAB.len())]).collect()
}

/// A deterministic unit-length embedding of `text`.
pub(crate) fn embed(seed: u64, model: &str, text: &str, dim: usize) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(hash(seed, &[model, "embedding", text]));
    let raw: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_bounded() {
        let prompt = tokenize("hello  there\tworld");
        assert_eq!(prompt, ["hello", "there", "world"]);
        let a = generate(7, "m", &prompt, 5);
        assert_eq!(a, generate(7, "m", &prompt, 5));
        assert!(!a.is_empty() && a.len() <= 5);
        let long_a = generate(7, "m", &prompt, 1000);
        let long_b = generate(8, "m", &prompt, 1000);
        assert_ne!(long_a, long_b, "the seed must change the output");
    }

    #[test]
    fn embeddings_are_unit_length() {
        let v = embed(1, "m", "some text", 64);
        assert_eq!(v.len(), 64);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(v, embed(1, "m", "some text", 64));
        assert_ne!(v, embed(1, "m", "other text", 64));
    }
}
