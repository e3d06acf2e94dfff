//! Request extractors: JSON bodies with clear 4xx errors, the admin key, an application's key,
//! the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tessera_core::error::ErrorCode;

use super::{ApiError, AppState, MAX_BODY_BYTES};
use crate::service::{APPLICATION_KEY_PREFIX, Application};
use crate::service::{Actor, AdminAuth};

/// A JSON body whose rejections become `ApiError`s: 400 malformed, 413 too large, 415 not JSON,
/// 422 wrong fields or types. Literal values are cut from the messages, so a mistyped passcode or
/// password sent as the wrong type is never echoed back or logged.
pub struct Json<T>(pub T);

/// A request body the router read in full before the request took a place in its pool (see
/// [`super::router`]); [`Json`] parses it from here.
#[derive(Clone)]
pub(super) struct ReadBody(pub(super) axum::body::Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Some(ReadBody(bytes)) = request.extensions().get::<ReadBody>().cloned() else {
            return match axum::Json::<T>::from_request(request, state).await {
                Ok(axum::Json(value)) => Ok(Self(value)),
                Err(rejection) => Err(json_error(&rejection)),
            };
        };
        if !json_content_type(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::InvalidInput,
                MISSING_JSON,
            ));
        }
        axum::Json::<T>::from_bytes(&bytes).map(|axum::Json(value)| Self(value)).map_err(|e| json_error(&e))
    }
}

/// A form-encoded body (`application/x-www-form-urlencoded`) as its name–value pairs, in order,
/// read from the body the router already took in (webhooks from SMS providers send these).
pub struct FormPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormPairs {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let read = parts.extensions.get::<ReadBody>().map(|ReadBody(bytes)| bytes.clone());
        let request = Request::from_parts(parts, read.map_or(body, axum::body::Body::from));
        axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map(|axum::Form(pairs)| Self(pairs))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidInput,
                    rejection.body_text(),
                )
            })
    }
}

const MISSING_JSON: &str = "expected a JSON body with Content-Type: application/json";

/// `application/json` or `application/…+json`, parameters aside (as axum's own check).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let message = match rejection {
        JsonRejection::JsonDataError(e) => {
            format!("invalid request body: {}", redact_literals(&source_text(e)))
        }
        JsonRejection::JsonSyntaxError(e) => format!("malformed JSON: {}", redact_literals(&source_text(e))),
        JsonRejection::MissingJsonContentType(_) => MISSING_JSON.into(),
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
        let ip = client_ip(parts, state)?;
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

/// The relying party calling `/validate`, when it presents its key (`Authorization: Bearer
/// tak_...`). An unknown `tak_` key is refused, never taken as an anonymous call; other
/// `Authorization` values (meant for a proxy, say) leave the call anonymous.
pub struct CallingApplication(pub Option<Application>);

impl FromRequestParts<AppState> for CallingApplication {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| k.starts_with(APPLICATION_KEY_PREFIX));
        let Some(key) = key else { return Ok(Self(None)) };
        let ip = client_ip(parts, state)?;
        Ok(Self(Some(state.service.authenticate_application(key, ip).await?)))
    }
}

/// The client's IP address: the socket peer, or, when the server is configured to trust its
/// proxy, the last `X-Forwarded-For` entry (the one that proxy appended; earlier entries are
/// whatever the client wrote). A trusted header whose last entry is not an address (with or
/// without a port) is refused with 400, never replaced by the proxy's own address: that would
/// put every such client in one rate-limit bucket and write the proxy into the audit log.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_ip(parts, state)?))
    }
}

pub(super) fn client_ip(parts: &Parts, state: &AppState) -> Result<Option<IpAddr>, ApiError> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    if !state.trust_forwarded_for {
        return Ok(peer);
    }
    let values: Vec<_> = parts.headers.get_all("x-forwarded-for").iter().collect();
    if values.is_empty() {
        return Ok(peer);
    }
    let last = values.last().and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()).map(str::trim);
    match last.and_then(forwarded_address) {
        Some(ip) => Ok(Some(ip)),
        None => {
            tracing::warn!(peer = ?peer, "refused a request whose trusted X-Forwarded-For does not end in an address");
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidInput,
                "X-Forwarded-For does not end in the client's address",
            ))
        }
    }
}

/// An `X-Forwarded-For` entry's address: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry.parse().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use super::{forwarded_address, redact_literals};

    #[test]
    fn forwarded_entries_with_and_without_ports() {
        for (entry, address) in [
            ("192.0.2.1", Some("192.0.2.1")),
            ("192.0.2.1:4711", Some("192.0.2.1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]:4711", Some("2001:db8::1")),
            ("unknown", None),
            ("", None),
            ("192.0.2.1:port", None),
        ] {
            assert_eq!(forwarded_address(entry), address.map(|a| a.parse().unwrap()), "{entry}");
        }
    }

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
