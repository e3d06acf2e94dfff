//! `POST /api/v1/validate`: is this user's passcode right?

use axum::extract::State;
use axum::http::StatusCode;

use tessera_core::error::ErrorCode;

use super::extract::{CallingApplication, ClientIp, Json};
use super::{ApiError, AppState};
use crate::service::{Caller, Door, PublicReason, ValidateRequest, ValidateResponse};

/// Checks a user's passcode (and password/PIN when they have one).
///
/// Answers 200 with `result` `accept` or `reject`; a rejection's `reason` says `locked` or
/// `rate_limited` (429) but never which part of the credentials was wrong. An empty or
/// one-character passcode for a user with a push device answers `challenge` with a
/// `transaction_id` (and the `number` to show): wait on `/api/v1/transactions/{id}`, then call
/// again with `transaction_id` to be accepted, once. A password ending in `-nopush` answers
/// `challenge` without a push: ask for a passcode.
///
/// A relying party may present its application key (`Authorization: Bearer tak_...`, from
/// `tessera-server admin create-app`): the device then shows the application's service name, and
/// `client_ip` and `user_agent` from the body. Without a key the device shows the server's
/// service name and the caller's own address; `require_application_key = true` refuses such calls.
#[utoipa::path(post, path = "/api/v1/validate", tag = "validate", request_body = ValidateRequest,
    security((), ("application_key" = [])), responses(
    (status = 200, description = "Accepted or rejected", body = ValidateResponse),
    (status = 429, description = "Too many attempts from this client or for this user", body = ValidateResponse),
    (status = 401, description = "An unknown application key, or none where one is required", body = super::ErrorBody),
    (status = 400, description = "Malformed JSON", body = super::ErrorBody),
    (status = 413, description = "Body too large", body = super::ErrorBody),
    (status = 422, description = "Missing fields or wrong types", body = super::ErrorBody),
))]
pub async fn validate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    CallingApplication(application): CallingApplication,
    headers: axum::http::HeaderMap,
    Json(request): Json<ValidateRequest>,
) -> Result<(StatusCode, axum::Json<ValidateResponse>), ApiError> {
    if application.is_none() && state.service.requires_application_key() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Denied,
            "this server requires an application key (Authorization: Bearer tak_...)",
        ));
    }
    let user_agent = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let response =
        state.service.validate(request, &Caller { ip, user_agent, application, door: Door::Api }).await?;
    let status = if response.reason == Some(PublicReason::RateLimited) {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(response)))
}
