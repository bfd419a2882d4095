//! Calling Redis: how its errors become [`LogError`]s, and calling a script
//! so that a lost script cache costs one reload, never a failed request.

use fred::error::{Error as FredError, ErrorKind};
use fred::types::scripts::Script;

use crate::error::LogError;

pub(crate) fn is_noscript(error: &FredError) -> bool {
    error.details().starts_with("NOSCRIPT")
}

/// Runs `call`, an `EVALSHA` of `script`; when the server answers
/// `NOSCRIPT` (it lost its script cache: a restart, a failover, `SCRIPT
/// FLUSH`), loads the script and runs `call` once more. Every script call
/// of the log and the leases goes through here.
pub(crate) async fn loading_once<T, F>(
    client: &fred::clients::Client,
    script: &Script,
    mut call: impl FnMut() -> Result<F, LogError>,
) -> Result<T, LogError>
where
    F: std::future::Future<Output = Result<T, FredError>>,
{
    match call()?.await {
        Err(error) if is_noscript(&error) => {
            script.load(client).await.map_err(unavailable)?;
            call()?.await.map_err(unavailable)
        }
        result => result.map_err(unavailable),
    }
}

pub(crate) fn unavailable(error: FredError) -> LogError {
    match error.kind() {
        ErrorKind::Parse | ErrorKind::Protocol => LogError::Corrupt(error.to_string()),
        _ => LogError::Unavailable(error.to_string()),
    }
}
