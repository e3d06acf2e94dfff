//! `POST /api/v1/validate`: is this user's passcode right?

use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{ClientIp, Json};
use super::{ApiError, AppState};
use crate::service::{PublicReason, ValidateRequest, ValidateResponse};

/// Checks a user's passcode (and password/PIN when they have one).
///
/// Answers 200 with `result` `accept` or `reject`; a rejection's `reason` says `locked` or
/// `rate_limited` (429) but never which part of the credentials was wrong. An empty or
/// one-character passcode for a user with a push device answers `challenge` with a
/// `transaction_id` (and the `number` to show): wait on `/api/v1/transactions/{id}`, then call
/// again with `transaction_id` to be accepted, once. A password ending in `-nopush` answers
/// `challenge` without a push: ask for a passcode.
#[utoipa::path(post, path = "/api/v1/validate", tag = "validate", request_body = ValidateRequest, responses(
    (status = 200, description = "Accepted or rejected", body = ValidateResponse),
    (status = 429, description = "Too many attempts from this client or for this user", body = ValidateResponse),
    (status = 400, description = "Malformed JSON", body = super::ErrorBody),
    (status = 413, description = "Body too large", body = super::ErrorBody),
    (status = 422, description = "Missing fields or wrong types", body = super::ErrorBody),
))]
pub async fn validate(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: axum::http::HeaderMap,
    Json(request): Json<ValidateRequest>,
) -> Result<(StatusCode, axum::Json<ValidateResponse>), ApiError> {
    let user_agent = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let response = state.service.validate(request, client_ip, user_agent).await?;
    let status = if response.reason == Some(PublicReason::RateLimited) {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(response)))
}
