//! Embedding batching: concurrent `/v1/embeddings` requests for the same model on the same
//! backend, arriving within a short window, become one backend call ([`merge`]) whose
//! response is split back to the callers ([`split`]). The batcher itself is
//! [`EmbedBatcher`](super::EmbedBatcher) (`embed_batcher.rs`).

use std::ops::Range;

use serde_json::{Map, Value};

/// Why requests could not be merged (the batcher then sends them alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// There was nothing to merge.
    #[error("no embeddings requests to merge")]
    Empty,
    /// A request's `input` is missing, empty or of no known shape.
    #[error("embeddings request {0} has no input of a known shape")]
    BadInput(usize),
    /// A request differs from the first in a field that shapes the whole call.
    #[error("embeddings request {index} differs from the first in `{field}`")]
    Mismatch {
        /// Which request.
        index: usize,
        /// The field: `model`, `encoding_format` or `dimensions`.
        field: &'static str,
    },
}

/// Why a batched response could not be split back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The response has no `data` list.
    #[error("the embeddings response has no `data` list")]
    NoData,
    /// The response has a different number of embeddings than there were inputs.
    #[error("the embeddings response has {got} embeddings for {expected} inputs")]
    CountMismatch {
        /// Inputs sent.
        expected: usize,
        /// Embeddings received.
        got: usize,
    },
    /// The embeddings' `index` values are not each of `0..n` once.
    #[error("the embeddings response's indices are not each of 0..{0} once")]
    BadIndex(usize),
}

/// The fields that must agree for requests to share one call.
const SHAPING: [&str; 3] = ["model", "encoding_format", "dimensions"];

/// The items of an embeddings `input`: a string is one, a flat list of token ids is one, a
/// list of strings or of token-id lists is one per element. `None` for anything else
/// (missing, empty, mixed).
pub(crate) fn input_items(request: &Value) -> Option<Vec<&Value>> {
    let is_tokens = |v: &Value| {
        v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_number))
    };
    match request.get("input")? {
        s @ Value::String(_) => Some(vec![s]),
        Value::Array(items) if items.is_empty() => None,
        tokens @ Value::Array(items) if items.iter().all(Value::is_number) => Some(vec![tokens]),
        Value::Array(items) if items.iter().all(Value::is_string) || items.iter().all(is_tokens) => {
            Some(items.iter().collect())
        }
        _ => None,
    }
}

/// What must agree between requests of one batch: `model`, `encoding_format`, `dimensions`.
pub(crate) fn shaping(request: &Value) -> [Option<&Value>; 3] {
    SHAPING.map(|field| request.get(field))
}

/// Merges embeddings requests into one: its `input` lists every request's items in order, its
/// other fields are the first request's. Returns it with the range of items each request
/// owns. Fails when a request's input has no known shape or requests differ in `model`,
/// `encoding_format` or `dimensions`.
pub fn merge(requests: &[Value]) -> Result<(Value, Vec<Range<usize>>), MergeError> {
    let first = requests.first().ok_or(MergeError::Empty)?;
    let mut input = Vec::new();
    let mut ranges = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        if let Some(i) = (0..SHAPING.len()).find(|&i| shaping(request)[i] != shaping(first)[i]) {
            return Err(MergeError::Mismatch {
                index,
                field: SHAPING[i],
            });
        }
        let items = input_items(request).ok_or(MergeError::BadInput(index))?;
        let start = input.len();
        input.extend(items.into_iter().cloned());
        ranges.push(start..input.len());
    }
    let mut merged = first.as_object().cloned().unwrap_or_default();
    merged.insert("input".to_owned(), Value::Array(input));
    Ok((Value::Object(merged), ranges))
}

/// Splits a batched embeddings response: each range (from [`merge`]) gets an OpenAI
/// embeddings response with its embeddings renumbered from 0, the response's other fields
/// (`object`, `model`, …), and a share of `usage` in proportion to its item count (the
/// shares add up to the totals; no `usage` when the response had none). Fails when `data`
/// is missing, its count differs from the inputs, or its indices are not `0..n`.
pub fn split(response: &Value, ranges: &[Range<usize>]) -> Result<Vec<Value>, SplitError> {
    let data = response
        .get("data")
        .and_then(Value::as_array)
        .ok_or(SplitError::NoData)?;
    let expected = ranges.iter().map(|r| r.end).max().unwrap_or(0);
    if data.len() != expected {
        return Err(SplitError::CountMismatch {
            expected,
            got: data.len(),
        });
    }
    let ordered = by_index(data)?;
    let counts: Vec<u64> = ranges.iter().map(|r| r.len() as u64).collect();
    let usage = response.get("usage").and_then(Value::as_object);
    let usage_shares: Vec<(String, Vec<u64>)> = usage
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), shares(v.as_u64()?, &counts))))
        .collect();
    let mut out = Vec::with_capacity(ranges.len());
    for (caller, range) in ranges.iter().enumerate() {
        let mut part: Map<String, Value> = response.as_object().cloned().unwrap_or_default();
        let items = ordered[range.clone()].iter().enumerate().map(|(i, item)| {
            let mut item = item.as_object().cloned().unwrap_or_default();
            item.insert("index".to_owned(), Value::from(i));
            item.entry("object").or_insert_with(|| Value::from("embedding"));
            Value::Object(item)
        });
        part.insert("object".to_owned(), Value::from("list"));
        part.insert("data".to_owned(), Value::Array(items.collect()));
        if usage.is_some() {
            let usage: Map<String, Value> = usage_shares
                .iter()
                .map(|(k, s)| (k.clone(), Value::from(s[caller])))
                .collect();
            part.insert("usage".to_owned(), Value::Object(usage));
        }
        out.push(Value::Object(part));
    }
    Ok(out)
}

/// `data` in `index` order (in list order when no item has an index).
fn by_index(data: &[Value]) -> Result<Vec<&Value>, SplitError> {
    if data.iter().all(|d| d.get("index").is_none()) {
        return Ok(data.iter().collect());
    }
    let mut slots: Vec<Option<&Value>> = vec![None; data.len()];
    for item in data {
        let index = item.get("index").and_then(Value::as_u64).map(|i| i as usize);
        match index.and_then(|i| slots.get_mut(i)) {
            Some(slot @ None) => *slot = Some(item),
            _ => return Err(SplitError::BadIndex(data.len())),
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// `total` split in proportion to `counts`, by largest remainder: the shares add up to it.
fn shares(total: u64, counts: &[u64]) -> Vec<u64> {
    let sum: u64 = counts.iter().sum();
    if sum == 0 {
        return vec![0; counts.len()];
    }
    let mut out: Vec<u64> = counts.iter().map(|&c| total * c / sum).collect();
    let mut left = total - out.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(total * counts[i] % sum));
    for &i in by_remainder.iter().cycle().take(counts.len() * 2) {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

#[cfg(test)]
#[path = "embed_batch_tests.rs"]
mod tests;
