//! `POST /api/v1/signin`: an app signs in to the organisation and gets its push token.

use axum::extract::State;
use axum::http::header;

use super::extract::{ClientIp, Json};
use super::{ApiError, AppState};
use crate::service::{Caller, Door};
use tessera_core::wire::{SignInAnswer, SignInRequest};

/// Signs an app in to the organisation ("sign in to your organisation" in the desktop app,
/// `tessera signin` in the CLI): the user's password and a second factor, exactly as the portal's
/// sign-in (lockout, rate limits, `-nopush`, push, sent codes, registration codes for a first
/// device). On `accept` the answer carries a `tessera://enroll` link for a new push token,
/// pending until the app registers with it (`POST /api/v1/push/register`). On `challenge`, wait
/// on `/api/v1/transactions/{id}` (push) or ask for the code sent, then call again with
/// `transaction_id`. Needs the portal to be enabled (`[portal]`).
#[utoipa::path(post, path = "/api/v1/signin", tag = "validate", request_body = SignInRequest, responses(
    (status = 200, description = "Accepted (with the enrollment link), a challenge, or refused", body = SignInAnswer),
    (status = 403, description = "Not from the networks `[portal] allowed_networks` names", body = super::ErrorBody),
    (status = 404, description = "The portal is not enabled on this server", body = super::ErrorBody),
    (status = 409, description = "The user holds the most devices allowed", body = super::ErrorBody),
    (status = 422, description = "Missing fields or wrong types", body = super::ErrorBody),
))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    Json(request): Json<SignInRequest>,
) -> Result<axum::Json<SignInAnswer>, ApiError> {
    if !state.service.portal().enabled {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            tessera_core::error::ErrorCode::NotFound,
            "signing in from an app needs the self-service portal: set [portal] enabled = true",
        ));
    }
    if !state.service.portal().admits(ip) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            tessera_core::error::ErrorCode::Denied,
            "signing in to this organisation is not available from your network",
        ));
    }
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let caller = Caller {
        ip,
        user_agent,
        application: None,
        door: Door::Portal { registration_code: None, first_code_by_sms: false },
    };
    Ok(axum::Json(state.service.app_sign_in(request, &caller).await?))
}
