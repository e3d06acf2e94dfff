//! Request extractors: JSON bodies with clear 4xx errors, the admin key, the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tessera_core::error::ErrorCode;

use super::{ApiError, AppState, MAX_BODY_BYTES};
use crate::service::{Actor, AdminAuth};

/// A JSON body whose rejections become `ApiError`s: 400 malformed, 413 too large, 415 not JSON,
/// 422 wrong fields or types. Literal values are cut from the messages, so a mistyped passcode or
/// password sent as the wrong type is never echoed back or logged.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let message = match rejection {
        JsonRejection::JsonDataError(e) => {
            format!("invalid request body: {}", redact_literals(&source_text(e)))
        }
        JsonRejection::JsonSyntaxError(e) => format!("malformed JSON: {}", redact_literals(&source_text(e))),
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with Content-Type: application/json".into()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("request body larger than {MAX_BODY_BYTES} bytes")
        }
        other => other.body_text(),
    };
    ApiError::new(status, ErrorCode::InvalidInput, message)
}

fn source_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

/// In serde's "invalid type/value/length" messages, replaces the quoted input value with `…`;
/// other messages (unknown or missing field) only quote field names and are kept as they are.
fn redact_literals(message: &str) -> String {
    let quotes_values =
        ["invalid type", "invalid value", "invalid length"].iter().any(|p| message.contains(p));
    if !quotes_values {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    out.push('…');
                    quote = Some(c);
                }
            }
        }
    }
    out
}

/// An authenticated administrator (`Authorization: Bearer tsk_...`).
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|k| !k.is_empty());
        let ip = client_ip(parts, state);
        match state.service.authenticate_admin(key, ip).await? {
            AdminAuth::Admin(actor) => Ok(Self(actor)),
            AdminAuth::TooManyFailures => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many failed admin authentications from this address; try again later",
            )),
            AdminAuth::Refused => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Denied,
                match (header, key) {
                    (None, _) => "an admin API key is required (Authorization: Bearer tsk_...)",
                    (Some(_), None) => "the Authorization header must be 'Bearer <admin key>'",
                    (Some(_), Some(_)) => "unknown admin API key",
                },
            )),
        }
    }
}

/// The client's IP address: the socket peer, or, when the server is configured to trust its
/// proxy, the last `X-Forwarded-For` entry (the one that proxy appended; earlier entries are
/// whatever the client wrote).
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_ip(parts, state)))
    }
}

pub(super) fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    if state.trust_forwarded_for
        && let Some(forwarded) = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(forwarded);
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

#[cfg(test)]
mod tests {
    use super::redact_literals;

    #[test]
    fn literals_are_cut_from_messages() {
        assert_eq!(
            redact_literals(
                "passcode: invalid type: integer `123456`, expected a string at line 1 column 40"
            ),
            "passcode: invalid type: integer `…`, expected a string at line 1 column 40"
        );
        assert_eq!(
            redact_literals(r#"username: invalid value: string "x", expected y"#),
            r#"username: invalid value: string "…", expected y"#
        );
        let unknown = "unknown field `pasword`, expected one of `username`, `password`, `passcode`";
        assert_eq!(redact_literals(unknown), unknown);
        assert_eq!(redact_literals("no quotes"), "no quotes");
    }
}
