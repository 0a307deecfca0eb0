//! Who may use a hers server and how much one request may carry: the tokens and limits that
//! `hers serve` and a cluster's front door both take, check the same way, and state in
//! `GET /v1/config` (their client, [`crate::Connection`], sizes its requests by them).

use axum::http::{HeaderMap, StatusCode};

use crate::api::{ApiError, check_bearer};

/// The tokens and limits of a server's HTTP API.
#[derive(Clone)]
pub struct Access {
    /// Bearer token for enrolment and removal; `None` refuses every write (403).
    pub token: Option<String>,
    /// Bearer token for searches, verification, `/v1/ids` and `/v1/config` (the write token
    /// also serves); `None` leaves them open to anyone who can connect. `/healthz` and
    /// `/metrics` stay open.
    pub read_token: Option<String>,
    /// Largest request body in bytes; larger ones get 413 (before the body is read when its
    /// length is announced).
    pub max_body_bytes: usize,
    /// Most probes in one query (400 beyond, before any ciphertext is decoded).
    pub max_probes: usize,
    /// Searches admitted beyond those being worked on; more get 429 + `Retry-After`
    /// (`hers serve`: waiting beyond the pass being scored, 0 admitting a query only while the
    /// scorer is idle; a cluster: in flight at once, at least 1).
    pub max_inflight: usize,
}

impl Default for Access {
    /// No tokens (writes refused, reads open), 64 MiB bodies, 64 probes per query, 64 searches
    /// waiting.
    fn default() -> Self {
        Self { token: None, read_token: None, max_body_bytes: 64 << 20, max_probes: 64, max_inflight: 64 }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_probes", &self.max_probes)
            .field("max_inflight", &self.max_inflight)
            .finish()
    }
}

impl Access {
    /// Checks the bearer token of a write.
    pub fn authorize_write(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        check_bearer(self.token.as_deref(), headers)
    }

    /// Checks the bearer token of a read when the server has a read token (the write token
    /// also serves: a writer may read).
    pub fn authorize_read(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(read) = self.read_token.as_deref() else { return Ok(()) };
        match (check_bearer(Some(read), headers), self.token.as_deref()) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(write)) if check_bearer(Some(write), headers).is_ok() => Ok(()),
            (Err(e), _) if e.status() == StatusCode::UNAUTHORIZED && e.message().starts_with("wrong") => Err(e),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server's searches and gallery description need `Authorization: Bearer <token>` \
                 (hers client --read-token-file FILE)",
            )),
        }
    }

    /// The probe limit a query is checked against (at least 1).
    pub fn probes(&self) -> usize {
        self.max_probes.max(1)
    }
}
