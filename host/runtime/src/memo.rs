//! Reused verdicts (`head.memo`): a request hook vouches that its verdict holds for a while
//! for every request with the same declared reads, and the host answers such requests itself,
//! without calling the plugin. [`MemoCall`] is one call's part (in the instance's
//! [`HostState`](crate::state::HostState)): whether the hook asked, whether it used a host call
//! whose effect a reuse would get wrong, and the audit events it emitted. [`VerdictMemo`] is a
//! configured plugin's table of kept verdicts, shared by its instances, emptied on every
//! `on-message` and dropped with the route table on reload.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::reads::Reads;
use sluice_backends::gcra::State as LimitState;
use sluice_backends::rate_limit::LimitSpec;
use sluice_bindings::sluice::plugin::head::MemoKey;
use sluice_bindings::{HeaderEdits, RequestHead, RequestVerdict};

/// The longest a verdict is reused.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// The most verdicts one configured plugin keeps.
const MAX_ENTRIES: usize = 4096;

/// The memo bookkeeping of the hook call in progress.
#[derive(Debug, Default)]
pub struct MemoCall {
    /// Whether the instance declared its reads from `init` (required to ask).
    pub(crate) eligible: bool,
    /// Whether the call is `on-request-headers` of an eligible instance: only then may it ask,
    /// and its audit events are kept for a reuse.
    pub(crate) recording: bool,
    /// What `head.memo` or `rate-limit.memo` asked.
    pub(crate) asked: Option<Asked>,
    /// The first host call the call made whose effect is per request (`rate-limit.check`, a
    /// metric, …): a reuse would skip it, so the verdict is not kept.
    pub(crate) spoiled: Option<&'static str>,
    /// The audit events the call emitted, to emit again on each reuse.
    pub(crate) audit: Vec<AuditReplay>,
    /// How many `rate-limit.check` calls the call made.
    pub(crate) checks: u32,
    /// The call's one `rate-limit.check`, when it admitted the request.
    pub(crate) charge: Option<Charge>,
}

/// An audit event as a hook emitted it, checked, before the host stamps it with the time and
/// the request: what `audit.emit` stamps and queues, and what a kept verdict holds to be
/// stamped anew and queued again (`interfaces::audit::replay`) for each request it is reused
/// for.
#[derive(Debug, Clone)]
pub struct AuditReplay {
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) actor: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) details: serde_json::Value,
}

/// What a hook asked to have reused.
#[derive(Debug)]
pub(crate) struct Asked {
    /// For how long.
    pub(crate) ttl: Duration,
    /// The parts of the head besides the reads that key the verdict.
    pub(crate) key: MemoKey,
    /// `rate-limit.memo`: each reuse charges the call's check first.
    pub(crate) charged: bool,
    /// `rate-limit.memo`'s names for the `RateLimit` field the host writes.
    pub(crate) fields: Option<Vec<String>>,
}

/// A rate-limit check a reused verdict charges first (`rate-limit.memo`).
#[derive(Debug, Clone)]
pub struct Charge {
    /// The limits, as the hook's `check` gave them.
    pub specs: Vec<LimitSpec>,
    /// The cost charged against each.
    pub cost: u64,
    /// The share of each limit enforced locally while Redis is down.
    pub local_share: f64,
    /// The policy names of a `RateLimit` response field to write from each decision.
    pub fields: Option<Vec<String>>,
}

impl MemoCall {
    /// Resets it for a new call.
    pub(crate) fn begin(&mut self) {
        self.recording = false;
        self.asked = None;
        self.spoiled = None;
        self.audit.clear();
        self.checks = 0;
        self.charge = None;
    }

    /// Notes a `rate-limit.check` of `specs` at `cost` that `admitted` the request or not.
    pub(crate) fn checked(&mut self, specs: &[LimitSpec], cost: u64, local_share: f64, admitted: bool) {
        if !self.recording {
            return;
        }
        self.checks += 1;
        self.charge = (self.checks == 1 && admitted).then(|| Charge {
            specs: specs.to_vec(),
            cost,
            local_share,
            fields: None,
        });
    }

    /// Notes a host call whose effect a reuse would skip or get wrong.
    pub(crate) fn spoil(&mut self, call: &'static str) {
        if self.recording && self.spoiled.is_none() {
            self.spoiled = Some(call);
        }
    }

    /// What the finished call asked to keep, with `reads` (the instance's declaration), or
    /// `None` when it did not ask, withdrew, or spoiled the memo.
    pub(crate) fn finish(&mut self, reads: Option<&Reads>) -> Option<Box<MemoRequest>> {
        let asked = self.asked.take()?;
        if let Some(call) = self.spoiled {
            tracing::debug!(call, "memo ignored: the call used a host call a reuse would skip");
            return None;
        }
        let charge = match (asked.charged, self.checks) {
            (false, 0) => None,
            (true, 1) => Some(Charge {
                fields: asked.fields,
                ..self.charge.take()?
            }),
            _ => {
                tracing::debug!(
                    checks = self.checks,
                    "memo ignored: a reuse must charge exactly the one rate-limit check it repeats"
                );
                return None;
            }
        };
        Some(Box::new(MemoRequest {
            ttl: asked.ttl,
            key: asked.key,
            reads: reads?.clone(),
            audit: std::mem::take(&mut self.audit),
            charge,
        }))
    }
}

/// A finished call's request to have its verdict reused.
#[derive(Debug)]
pub struct MemoRequest {
    ttl: Duration,
    key: MemoKey,
    reads: Reads,
    audit: Vec<AuditReplay>,
    charge: Option<Charge>,
}

/// A kept verdict: what a reuse gives (shared, so a reuse copies only what it hands on).
#[derive(Debug)]
pub struct Reused {
    expires: Instant,
    /// The verdict, as the hook returned it.
    pub verdict: RequestVerdict,
    /// Its response edits.
    pub response: Option<HeaderEdits>,
    /// Its audit events, to emit again.
    pub audit: Vec<AuditReplay>,
    /// The rate-limit check to charge first: the verdict applies only when it admits.
    pub charge: Option<Charge>,
}

/// The kept verdicts of one configured plugin, keyed by the request's reads under one shape
/// (the instance's declaration and the `memo-key` flags of the latest kept verdict).
#[derive(Debug, Default)]
pub struct VerdictMemo {
    /// Whether anything was ever kept: the common plugin that never asks pays one load.
    used: AtomicBool,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    shape: Option<(Reads, MemoKey)>,
    entries: HashMap<Box<[u8]>, Arc<Reused>, foldhash::fast::RandomState>,
}

impl VerdictMemo {
    /// The verdict kept for `req`, if one is and it has not expired.
    pub fn reuse(&self, req: &RequestHead) -> Option<Arc<Reused>> {
        if !self.used.load(Ordering::Relaxed) {
            return None;
        }
        let table = self.table.lock();
        let (reads, key) = table.shape.as_ref()?;
        let mut bytes = Vec::with_capacity(128);
        reads.memo_key(req, *key, &mut bytes);
        let entry = table.entries.get(&bytes[..])?;
        if entry.expires <= Instant::now() {
            return None;
        }
        Some(entry.clone())
    }

    /// Keeps `verdict` (with the call's `response` edits) for requests like `req`, as
    /// `request` asked, when it can be reused: a `continue` or `edit` of a call that left no
    /// directive but its response edits (`only_edits`). Returns whether it was kept.
    pub fn keep(
        &self,
        req: &RequestHead,
        request: MemoRequest,
        verdict: &RequestVerdict,
        response: Option<&HeaderEdits>,
        only_edits: bool,
    ) -> bool {
        let reusable = only_edits && matches!(verdict, RequestVerdict::Continue | RequestVerdict::Edit(_));
        let mut table = self.table.lock();
        let shape = (request.reads, request.key);
        if table.shape.as_ref() != Some(&shape) {
            table.entries.clear();
            table.shape = Some(shape);
        }
        let (reads, key) = table.shape.as_ref().expect("set above");
        let mut bytes = Vec::with_capacity(128);
        reads.memo_key(req, *key, &mut bytes);
        if !reusable || request.ttl.is_zero() {
            table.entries.remove(&bytes[..]);
            return false;
        }
        let now = Instant::now();
        if table.entries.len() >= MAX_ENTRIES {
            table.entries.retain(|_, e| e.expires > now);
            if table.entries.len() >= MAX_ENTRIES {
                table.entries.clear();
            }
        }
        let entry = Reused {
            expires: now + request.ttl.min(MAX_TTL),
            verdict: verdict.clone(),
            response: response.cloned(),
            audit: request.audit,
            charge: request.charge,
        };
        table.entries.insert(bytes.into_boxed_slice(), Arc::new(entry));
        self.used.store(true, Ordering::Relaxed);
        true
    }

    /// Forgets every kept verdict (a message arrived for the plugin: a revocation, say).
    pub fn clear(&self) {
        if self.used.load(Ordering::Relaxed) {
            self.table.lock().entries.clear();
        }
    }

    /// How many verdicts are kept (expired ones included until they are swept).
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.table.lock().entries.len()
    }
}

/// Sets the `RateLimit` field (draft-ietf-httpapi-ratelimit-headers) in `edits` from
/// `states`: each limit's name from `names` as a string, with `r` (units remaining) and `t`
/// (seconds until the bucket is full, rounded up); replaces the value the edits set, if any.
pub fn set_rate_limit_field(edits: &mut Option<HeaderEdits>, names: &[String], states: &[LimitState]) {
    let mut value = Vec::with_capacity(names.iter().map(|n| n.len() + 24).sum());
    for (i, (name, state)) in names.iter().zip(states).enumerate() {
        if i > 0 {
            value.extend_from_slice(b", ");
        }
        value.push(b'"');
        value.extend_from_slice(name.as_bytes());
        value.extend_from_slice(b"\";r=");
        value.extend_from_slice(itoa::Buffer::new().format(state.remaining).as_bytes());
        value.extend_from_slice(b";t=");
        value.extend_from_slice(itoa::Buffer::new().format(state.reset.div_ceil(1000)).as_bytes());
    }
    let edits = edits.get_or_insert_with(crate::verdict::no_edits);
    match edits.set.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("ratelimit")) {
        Some((_, old)) => *old = value,
        None => edits.set.push(("ratelimit".into(), value)),
    }
}

#[cfg(test)]
mod tests;
