//! Builders for verdicts: header edits and local responses.

use crate::{HeaderEdits, LocalResponse, RequestVerdict, ResponseVerdict};

/// Builds [`HeaderEdits`]; converts into an `edit` verdict with `.into()`.
#[derive(Debug, Default, Clone)]
pub struct Edits(HeaderEdits);

impl Edits {
    /// No edits yet.
    pub fn new() -> Self {
        Edits(HeaderEdits {
            set: Vec::new(),
            append: Vec::new(),
            remove: Vec::new(),
            context: Vec::new(),
        })
    }

    /// Sets header `name` to `value`, replacing existing values.
    pub fn set(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.0.set.push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Appends a value for header `name`.
    pub fn append(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.0.append.push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Removes every value of header `name`.
    pub fn remove(mut self, name: &str) -> Self {
        self.0.remove.push(name.to_ascii_lowercase());
        self
    }

    /// Attaches a context entry for later plugins in the chain.
    pub fn context(mut self, key: &str, value: &str) -> Self {
        self.0.context.push((key.to_string(), value.to_string()));
        self
    }

    /// The finished edits.
    pub fn build(self) -> HeaderEdits {
        self.0
    }
}

impl Default for HeaderEdits {
    fn default() -> Self {
        Edits::new().build()
    }
}

impl From<Edits> for RequestVerdict {
    fn from(edits: Edits) -> Self {
        RequestVerdict::Edit(edits.0)
    }
}

impl From<Edits> for ResponseVerdict {
    fn from(edits: Edits) -> Self {
        ResponseVerdict::Edit(edits.0)
    }
}

/// Builds a [`LocalResponse`]; converts into a `respond` (request) or `replace` (response)
/// verdict with `.into()`.
#[derive(Debug, Clone)]
pub struct Response(LocalResponse);

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response(LocalResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// A JSON response: `status`, `content-type: application/json` and `body` as given.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status)
            .header("content-type", "application/json")
            .body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.0
            .headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.0.body = body.into();
        self
    }

    /// The finished response.
    pub fn build(self) -> LocalResponse {
        self.0
    }
}

impl From<Response> for RequestVerdict {
    fn from(resp: Response) -> Self {
        RequestVerdict::Respond(resp.0)
    }
}

impl From<Response> for ResponseVerdict {
    fn from(resp: Response) -> Self {
        ResponseVerdict::Replace(resp.0)
    }
}
