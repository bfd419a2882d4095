//! Who may open a socket or read a snapshot: every admission check (origin,
//! token, rollout, this instance's capacity, the user's connection limit
//! across instances), each refusal one [`Refusal`] with one mapping to a
//! close code ([`Refusal::close`]) and one to an HTTP status
//! ([`Refusal::status`]).

use axum::http::{header, HeaderMap, StatusCode};
use common::protocol::close::Close;

use crate::auth::{token_from_headers, AuthError, Claims};
use crate::connection::Connection;
use crate::state::AppState;

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A browser on a site that may not open the socket.
    #[error("origin not allowed")]
    Origin,
    /// No valid token.
    #[error("{0}")]
    Token(AuthError),
    /// Real-time is off for this user (flag and rollout).
    #[error("real-time disabled for this user")]
    Disabled,
    /// This instance holds as many connections as it may.
    #[error("capacity reached")]
    Capacity,
    /// The user holds the maximum number of connections (all instances).
    #[error("too many connections for this user")]
    TooManyConnections,
}

impl Refusal {
    /// The close a refused socket gets.
    pub fn close(&self) -> Close {
        match self {
            Refusal::Origin => Close::OriginNotAllowed,
            Refusal::Token(error) => Close::Unauthenticated(error.unauthenticated()),
            Refusal::Disabled => Close::Disabled,
            Refusal::Capacity => Close::Capacity,
            Refusal::TooManyConnections => Close::TooManyConnections,
        }
    }

    /// The HTTP status a refused REST request gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Origin => StatusCode::FORBIDDEN,
            Refusal::Token(_) => StatusCode::UNAUTHORIZED,
            Refusal::Disabled | Refusal::Capacity | Refusal::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the client is told (the close reason, and the REST error's
    /// message): never more than it can act on.
    pub fn message(&self) -> &'static str {
        self.close().reason()
    }

    /// The metric label of a refusal counted as an auth failure.
    fn auth_label(&self) -> Option<&'static str> {
        match self {
            Refusal::Origin => Some("origin"),
            Refusal::Token(_) => Some("token"),
            Refusal::Disabled | Refusal::Capacity | Refusal::TooManyConnections => None,
        }
    }
}

/// Checks the request's token (bearer header first, then the `session`
/// cookie).
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, Refusal> {
    let cookies: Vec<&str> = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    let cookie = cookies.join("; ");
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = token_from_headers(Some(&cookie).filter(|c| !c.is_empty()).map(String::as_str), authorization)
        .ok_or(Refusal::Token(AuthError::Missing))?;
    state.jwt.validate(token).map_err(Refusal::Token)
}

/// Same-origin requests, and the configured origins, may open the socket;
/// requests without `Origin` (native clients) are not browsers.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let same_origin = origin.split_once("://").is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    if same_origin || state.config.allowed_origins.iter().any(|allowed| allowed == origin) {
        Ok(())
    } else {
        Err(Refusal::Origin)
    }
}

/// Decides whether a socket may open, in order: origin, token, rollout,
/// this instance's capacity, the user's connection limit (all instances).
pub(crate) async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Box<Connection>, Refusal> {
    let admitted = admit_checked(state, headers).await;
    if let Some(label) = admitted.as_ref().err().and_then(Refusal::auth_label) {
        state.stats.auth_failure(label);
    }
    admitted
}

async fn admit_checked(state: &AppState, headers: &HeaderMap) -> Result<Box<Connection>, Refusal> {
    check_origin(state, headers)?;
    let claims = authenticate(state, headers)?;
    if !state.config.rollout.allows(&claims.user_id) {
        return Err(Refusal::Disabled);
    }
    let permit = state.capacity.clone().try_acquire_owned().map_err(|_| Refusal::Capacity)?;
    let conn = state.next_conn();
    let shared = &state.connections;
    let limits = shared.limits;
    match shared.leases.acquire(&claims.user_id, &shared.lease_id(conn), limits.lease_ttl, limits.per_user).await {
        Ok(true) => {}
        Ok(false) => return Err(Refusal::TooManyConnections),
        // Failing open: during a Redis outage the limit is not enforced,
        // rather than refusing every user.
        Err(error) => tracing::warn!(%error, "Lease store unavailable; admitting without a lease."),
    }
    // Boxed: the upgrade task holds it until the socket is ready, and then
    // the connection's future does; a box is one copy, not two.
    Ok(Box::new(Connection {
        membership: state.hubs.join(&claims.user_id, conn),
        claims,
        shared: shared.clone(),
        shutdown: state.shutdown_notice(),
        _permit: permit,
    }))
}
