//! `POST /api/v1/oneswipe`: log in with the One Swipe code a login screen's camera read.

use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{ClientIp, Json};
use super::{ApiError, AppState};
use crate::service::{OneSwipeRequest, OneSwipeResponse, RejectReason};

/// Redeems a One Swipe code (the text of the QR code a push device shows).
///
/// Answers 200 with `result` `accept` (and the `username`) or `reject` with a typed `reason`:
/// `malformed`, `unsupported_version`, `wrong_audience`, `unknown_device`, `bad_signature`,
/// `expired`, `not_yet_valid`, `replayed`, `bad_otp`, `locked`, `disabled`, `wrong_user`,
/// `invalid_credentials`, `unknown_transaction`, or `rate_limited` (429). Each code is accepted
/// once. Users with a password must send it too. With `transaction_id` the code approves that
/// pending push login; complete it with `validate`.
#[utoipa::path(post, path = "/api/v1/oneswipe", tag = "validate", request_body = OneSwipeRequest, responses(
    (status = 200, description = "Accepted or rejected", body = OneSwipeResponse),
    (status = 429, description = "Too many attempts from this client or for this user", body = OneSwipeResponse),
    (status = 400, description = "Malformed JSON or fields", body = super::ErrorBody),
    (status = 413, description = "Body too large", body = super::ErrorBody),
    (status = 422, description = "Missing fields or wrong types", body = super::ErrorBody),
))]
pub async fn redeem(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    Json(request): Json<OneSwipeRequest>,
) -> Result<(StatusCode, axum::Json<OneSwipeResponse>), ApiError> {
    let response = state.service.redeem_one_swipe(request, client_ip).await?;
    let status = if response.reason == Some(RejectReason::RateLimited) {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(response)))
}
