//! Who may join or read a room: the rules both hosts apply to a user token before a room sees
//! the connection. The store decides (`POST /collaboration/verify`, [`crate::store_http`]); a
//! host may cache its verdicts, and answers a token equal to its own shared secret itself.

use subtle::ConstantTimeEq;
use ykeep_core::contract::{code, reason};

use crate::Close;
use crate::store::StoreError;
use crate::store_http::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a user token is required")]
    Missing,
    #[error("token refused: {0}")]
    Refused(String),
    #[error("token is not for this resource")]
    WrongResource,
    #[error("cannot verify the token now: the store is unavailable")]
    Unavailable,
}

impl AuthError {
    /// The HTTP status of a refused request.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Refused(_) => 401,
            AuthError::WrongResource => 403,
            AuthError::Unavailable => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::Refused(_) => code::UNAUTHORIZED,
            AuthError::WrongResource => code::FORBIDDEN,
            AuthError::Unavailable => code::UNAVAILABLE,
        }
    }

    /// How a refused WebSocket is closed: 1013 (try again later) while the store cannot answer,
    /// 1008 otherwise; the reason starts with the contract code.
    pub fn close(&self) -> Close {
        let code = match self {
            AuthError::Unavailable => 1013,
            _ => crate::close_code::POLICY,
        };
        let mut reason = format!("{}: {self}", self.code());
        reason.truncate(120);
        Close { code, reason }
    }
}

/// What a host can decide about a token before asking the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precheck<'a> {
    /// The host's own shared secret: a server-side caller.
    Secret,
    /// Ask the store about this token (the host may answer from its cache).
    AskStore(&'a str),
}

/// No token (or an empty one) is refused; the host's own secret passes (compared in constant
/// time); anything else is the store's to judge.
pub fn precheck<'a>(
    token: Option<&'a str>,
    secret: Option<&str>,
) -> Result<Precheck<'a>, AuthError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
    if let Some(secret) = secret
        && bool::from(token.as_bytes().ct_eq(secret.as_bytes()))
    {
        return Ok(Precheck::Secret);
    }
    Ok(Precheck::AskStore(token))
}

/// The store's answer to a token check. `Err(Unavailable)` (the store could not answer) is not
/// a verdict: a host must not cache it.
pub fn judge(answer: Result<Verdict, StoreError>) -> Result<(), AuthError> {
    match answer {
        Ok(Verdict::Allowed { .. }) => Ok(()),
        Ok(Verdict::Denied { reason }) if reason == reason::WRONG_RESOURCE => {
            Err(AuthError::WrongResource)
        }
        Ok(Verdict::Denied { reason }) => Err(AuthError::Refused(reason)),
        Err(e) => {
            tracing::warn!(error = %e, "token verification: the store did not answer");
            Err(AuthError::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_judged_by_the_contract() {
        assert_eq!(precheck(None, Some("s")), Err(AuthError::Missing));
        assert_eq!(precheck(Some(""), Some("s")), Err(AuthError::Missing));
        assert_eq!(precheck(Some("s"), Some("s")), Ok(Precheck::Secret));
        assert_eq!(precheck(Some("t"), Some("s")), Ok(Precheck::AskStore("t")));
        assert_eq!(precheck(Some("t"), None), Ok(Precheck::AskStore("t")));
        let denied = |r: &str| Ok(Verdict::Denied { reason: r.into() });
        assert_eq!(
            judge(denied("wrong_resource")),
            Err(AuthError::WrongResource)
        );
        assert_eq!(
            judge(denied("expired")),
            Err(AuthError::Refused("expired".into()))
        );
        assert_eq!(judge(Ok(Verdict::Allowed { user_id: None })), Ok(()));
        let down = judge(Err(StoreError::Unreachable("refused".into()))).unwrap_err();
        assert_eq!((down.status(), down.close().code), (503, 1013));
        assert_eq!(AuthError::Missing.close().code, 1008);
        assert!(
            AuthError::Missing
                .close()
                .reason
                .starts_with("unauthorized: ")
        );
    }
}
