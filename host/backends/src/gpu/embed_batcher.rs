//! The embeddings batcher: the first request for a backend and model opens a batch and leads
//! it; requests arriving within the window join; when the window closes (or the batch holds
//! `max_inputs` items) the leader sends one merged request and hands every member its part.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use super::embed_batch::{SplitError, input_items, merge, shaping, split};

/// What batches are per: requests share a call only on the same backend for the same model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// The backend the requests go to.
    pub backend: Arc<str>,
    /// The model they ask for.
    pub model: Arc<str>,
}

/// Why a batched request got no answer of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The backend call failed (every member of the batch gets the same error).
    #[error("the embeddings backend failed: {0}")]
    Backend(String),
    /// The backend's answer to the merged request could not be split back.
    #[error("the batched embeddings response could not be split: {0}")]
    Split(#[from] SplitError),
    /// The batch's leader went away without an answer or a hand-back (it panicked).
    #[error("the embeddings batch this request joined was abandoned")]
    Abandoned,
}

/// What a backend call returns: a status and a JSON body, or why there was no answer.
type Answer = Result<(u16, Value), BatchError>;

/// What a member of a batch is told by its leader.
enum Outcome {
    /// Its answer.
    Answer(Answer),
    /// Its request back, to send alone (the batch could not be sent merged).
    Alone(Value),
}

struct Member {
    request: Value,
    reply: oneshot::Sender<Outcome>,
}

impl Member {
    fn hand_back(self) {
        let _ = self.reply.send(Outcome::Alone(self.request));
    }
}

/// A batch still taking members.
struct Open {
    id: u64,
    shaping: [Option<Value>; 3],
    inputs: usize,
    members: Vec<Member>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct Batches {
    open: HashMap<BatchKey, Open>,
    /// Batches closed early (full, or cut by a request that did not fit), by id, until their
    /// leader takes them.
    closed: HashMap<u64, Vec<Member>>,
    next_id: u64,
}

impl Batches {
    /// Closes the open batch for `key` and wakes its leader.
    fn close(&mut self, key: &BatchKey) {
        if let Some(open) = self.open.remove(key) {
            open.wake.notify_one();
            self.closed.insert(open.id, open.members);
        }
    }

    /// The members of batch `id`, taking it out (empty when it is gone).
    fn take(&mut self, key: &BatchKey, id: u64) -> Vec<Member> {
        if self.open.get(key).is_some_and(|o| o.id == id) {
            return self.open.remove(key).map(|o| o.members).unwrap_or_default();
        }
        self.closed.remove(&id).unwrap_or_default()
    }
}

/// What a submitted request does.
enum Role {
    Alone(Value),
    Member(oneshot::Receiver<Outcome>),
    Leader { id: u64, wake: Arc<Notify>, request: Value },
}

/// Merges concurrent embeddings requests per [`BatchKey`] into one backend call.
pub struct EmbedBatcher {
    window: Duration,
    max_inputs: usize,
    batches: Mutex<Batches>,
}

impl EmbedBatcher {
    /// A batcher that holds a batch open for `window` after its first request, or until it
    /// holds `max_inputs` input items.
    pub fn new(window: Duration, max_inputs: usize) -> Self {
        EmbedBatcher {
            window,
            max_inputs: max_inputs.max(1),
            batches: Mutex::new(Batches::default()),
        }
    }

    /// Submits an embeddings request. The first for `key` opens a batch, waits the window (or
    /// until the batch is full) and sends the merged request with its `send`; the others join
    /// and get their part. Returns the caller's answer: `(200, its embeddings response)`, or
    /// the backend's own non-200 status and body, or [`BatchError::Backend`] when the call
    /// failed — a failure reaches every member as-is. Requests that cannot share a call (an
    /// input of unknown shape, a different `encoding_format` or `dimensions` than the open
    /// batch, or `max_inputs` items on their own) are sent alone with their own `send`.
    pub async fn submit<F, Fut>(&self, key: BatchKey, request: Value, send: F) -> Result<(u16, Value), BatchError>
    where
        F: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<(u16, Value), String>>,
    {
        match self.role(&key, request) {
            Role::Alone(request) => alone(send, request).await,
            Role::Member(reply) => match reply.await {
                Ok(Outcome::Answer(answer)) => answer,
                Ok(Outcome::Alone(request)) => alone(send, request).await,
                Err(_) => Err(BatchError::Abandoned),
            },
            Role::Leader { id, wake, request } => self.lead(key, id, wake, request, send).await,
        }
    }

    /// Joins the open batch for `key`, opens one, or says to go alone.
    fn role(&self, key: &BatchKey, request: Value) -> Role {
        let Some(count) = input_items(&request).map(|items| items.len()) else {
            return Role::Alone(request);
        };
        if count >= self.max_inputs {
            return Role::Alone(request);
        }
        let request_shaping = shaping(&request).map(|v| v.cloned());
        let mut guard = self.batches.lock();
        let batches = &mut *guard;
        if let Some(open) = batches.open.get_mut(key) {
            if open.shaping != request_shaping {
                return Role::Alone(request);
            }
            if open.inputs + count <= self.max_inputs {
                let (reply, answer) = oneshot::channel();
                open.members.push(Member { request, reply });
                open.inputs += count;
                if open.inputs >= self.max_inputs {
                    batches.close(key);
                }
                return Role::Member(answer);
            }
            // It would overflow: the open batch goes now, this request opens the next.
            batches.close(key);
        }
        let id = batches.next_id;
        batches.next_id += 1;
        let wake = Arc::new(Notify::new());
        let open = Open {
            id,
            shaping: request_shaping,
            inputs: count,
            members: Vec::new(),
            wake: wake.clone(),
        };
        batches.open.insert(key.clone(), open);
        Role::Leader { id, wake, request }
    }

    /// Leads batch `id`: waits, sends the merged request, hands out the parts.
    async fn lead<F, Fut>(&self, key: BatchKey, id: u64, wake: Arc<Notify>, request: Value, send: F) -> Answer
    where
        F: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<(u16, Value), String>>,
    {
        // Should this future be dropped, the members get their requests back.
        let mut guard = LeaderGuard {
            batcher: self,
            key,
            id,
            members: None,
        };
        tokio::select! {
            _ = tokio::time::sleep(self.window) => {}
            _ = wake.notified() => {}
        }
        let members = self.batches.lock().take(&guard.key, id);
        if members.is_empty() {
            guard.members = Some(Vec::new());
            return alone(send, request).await;
        }
        let mut requests = Vec::with_capacity(members.len() + 1);
        requests.push(request);
        requests.extend(members.iter().map(|m| m.request.clone()));
        guard.members = Some(members);
        let Ok((merged, ranges)) = merge(&requests) else {
            // Cannot happen for requests checked on joining; still, nobody is left waiting.
            drop(guard);
            return alone(send, requests.swap_remove(0)).await;
        };
        let result = send(merged).await;
        let members = guard.members.replace(Vec::new()).unwrap_or_default();
        let (status, body) = match result {
            Err(e) => return broadcast(members, Err(BatchError::Backend(e))),
            Ok((status, body)) if status != 200 => return broadcast(members, Ok((status, body))),
            Ok(answer) => answer,
        };
        let parts = match split(&body, &ranges) {
            Ok(parts) => parts,
            Err(e) => return broadcast(members, Err(BatchError::Split(e))),
        };
        let mut parts = parts.into_iter();
        let own = parts.next().map(|part| (status, part));
        for (member, part) in members.into_iter().zip(parts) {
            let _ = member.reply.send(Outcome::Answer(Ok((status, part))));
        }
        own.ok_or(BatchError::Abandoned)
    }
}

/// Sends `request` on its own.
async fn alone<F, Fut>(send: F, request: Value) -> Answer
where
    F: FnOnce(Value) -> Fut,
    Fut: Future<Output = Result<(u16, Value), String>>,
{
    send(request).await.map_err(BatchError::Backend)
}

/// Gives every member `answer` and returns it for the leader.
fn broadcast(members: Vec<Member>, answer: Answer) -> Answer {
    for member in members {
        let _ = member.reply.send(Outcome::Answer(answer.clone()));
    }
    answer
}

/// Hands the members their requests back when the leader goes before answering them.
struct LeaderGuard<'a> {
    batcher: &'a EmbedBatcher,
    key: BatchKey,
    id: u64,
    /// The members once taken out of the batcher; `None` while the batch is still there.
    members: Option<Vec<Member>>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let members = match self.members.take() {
            Some(members) => members,
            None => self.batcher.batches.lock().take(&self.key, self.id),
        };
        members.into_iter().for_each(Member::hand_back);
    }
}
