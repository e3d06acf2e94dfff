//! Push endpoints: device registration, the device channel (SSE stream, long-poll), answers, and
//! the login client's wait on a transaction.
//!
//! Devices authenticate every request with `Tessera-Serial`, `Tessera-Timestamp` (Unix seconds) and
//! `Tessera-Signature` (Ed25519, base64url, over `tessera_core::push::device_auth_message`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tessera_core::push::{Delivery, RegisterRequest, RegisterResponse, SignedAnswer, WakeUpdate};

use super::extract::{ClientIp, Json, client_ip};
use super::{ApiError, AppState};
use tessera_core::wire::{
    AnswerReceipt, ErrorBody, SERIAL_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TransactionStatus,
};

use crate::push::{Device, StreamEnd};

/// A device authenticated by its signed timestamp.
pub struct AuthenticatedDevice(pub Device);

impl FromRequestParts<AppState> for AuthenticatedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header =
            |name| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (serial, timestamp, signature) =
            (header(SERIAL_HEADER), header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let ip = client_ip(parts, state)?;
        Ok(Self(state.service.push().authenticate_device(&serial, &timestamp, &signature, ip).await?))
    }
}

/// Registers a device from an enrollment link (the link's credential works once).
#[utoipa::path(post, path = "/api/v1/push/register", tag = "push", request_body(content = Object, description = "tessera_core::push::RegisterRequest"),
    responses((status = 200, description = "The server's key and the TOTP seed for approve-with-OTP"), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(request): Json<RegisterRequest>,
) -> Result<axum::Json<RegisterResponse>, ApiError> {
    Ok(axum::Json(state.service.register_device(request, ip).await?))
}

/// Where a device's stream or poll resumes.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct Resume {
    /// The last sequence number received (also read from `Last-Event-ID`).
    after: Option<i64>,
    /// Seconds to wait for a challenge (long-poll, at most 25).
    wait: Option<u64>,
}

fn resume_point(headers: &HeaderMap, resume: &Resume) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(resume.after)
        .unwrap_or(0)
        .max(0)
}

/// The device channel: Server-Sent Events, one `challenge` event (id = sequence number) per
/// pending challenge, starting after `Last-Event-ID`; kept alive with comments every 15 s. The
/// stream ends with an `end` event (`{"reason": "revoked" | "replaced" | "expired" | "stopping"}`)
/// when the push token is disabled or deleted, a newer stream of the device replaces it, it has
/// been open `limits.stream_max_secs` (the device then authenticates again), or the server stops.
#[utoipa::path(get, path = "/api/v1/push/stream", tag = "push", params(Resume),
    responses((status = 200, description = "text/event-stream of challenge events"), (status = 401, body = ErrorBody),
        (status = 503, description = "The server holds as many device streams as it may", body = ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    headers: HeaderMap,
    Query(resume): Query<Resume>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = resume_point(&headers, &resume);
    let slot = state.service.push().open_stream(&device)?;
    let (deliveries, arriving) = tokio::sync::mpsc::channel::<Delivery>(16);
    let (ended, end) = tokio::sync::oneshot::channel::<StreamEnd>();
    let service = state.service.clone();
    tokio::spawn(async move {
        service.metrics().device_connections(1);
        let reason = service.push().serve_stream(&device, after, &slot, &deliveries).await;
        drop(slot);
        let _ = ended.send(reason);
        service.metrics().device_connections(-1);
    });
    let challenges = futures_util::stream::unfold(arriving, |mut arriving| async move {
        let delivery = arriving.recv().await?;
        let event = Event::default().id(delivery.seq.to_string()).event("challenge").json_data(&delivery);
        Some((event.ok(), arriving))
    });
    let last = futures_util::stream::once(async move {
        let reason = end.await.ok()?;
        Event::default().event("end").json_data(serde_json::json!({ "reason": reason.as_str() })).ok()
    });
    let events = challenges.chain(last).filter_map(|event| std::future::ready(event.map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Long-poll fallback: the pending challenges after `after`, waiting up to `wait` seconds.
#[utoipa::path(get, path = "/api/v1/push/pending", tag = "push", params(Resume),
    responses((status = 200, description = "Deliveries: {seq, challenge} in order"), (status = 401, body = ErrorBody)))]
pub async fn pending(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    headers: HeaderMap,
    Query(resume): Query<Resume>,
) -> Result<axum::Json<Vec<Delivery>>, ApiError> {
    let after = resume_point(&headers, &resume);
    let wait = Duration::from_secs(resume.wait.unwrap_or(0));
    Ok(axum::Json(state.service.push().wait_for_deliveries(&device, after, wait).await?))
}

/// A device's signed answer: approve (with the number and the current TOTP) or deny.
#[utoipa::path(post, path = "/api/v1/push/answer", tag = "push", request_body(content = Object, description = "tessera_core::push::SignedAnswer"),
    responses((status = 200, body = AnswerReceipt), (status = 401, description = "Bad signature, or the device is disabled, deleted or unregistered", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 409, description = "Already answered", body = ErrorBody), (status = 410, description = "Expired", body = ErrorBody)))]
pub async fn answer(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(answer): Json<SignedAnswer>,
) -> Result<axum::Json<AnswerReceipt>, ApiError> {
    Ok(axum::Json(state.service.push().answer(answer, ip).await?))
}

/// Sets or clears where FCM or APNs can wake the device: `{"wake": {"service": "fcm", "token":
/// "..."}}`, `{"wake": {"service": "apns", "token": "<hex>"}}` or `{"wake": null}`.
#[utoipa::path(post, path = "/api/v1/push/wake", tag = "push", request_body(content = Object, description = "tessera_core::push::WakeUpdate"),
    responses((status = 204, description = "Saved"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn wake(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AuthenticatedDevice(device): AuthenticatedDevice,
    Json(update): Json<WakeUpdate>,
) -> Result<axum::http::StatusCode, ApiError> {
    state.service.push().set_wake_address(&device, update.wake, ip).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// How long to wait.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct Wait {
    /// Seconds to wait while the transaction is pending (at most 25).
    wait: Option<u64>,
}

/// A push transaction's status; with `wait`, answers as soon as it changes (long-poll).
#[utoipa::path(get, path = "/api/v1/transactions/{id}", tag = "validate", params(("id" = String, Path), Wait),
    responses((status = 200, body = TransactionStatus), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "As many long-polls wait as may", body = ErrorBody)))]
pub async fn transaction(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<axum::Json<TransactionStatus>, ApiError> {
    if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(crate::service::ServiceError::NotFound("transaction", String::new()).into());
    }
    let wait = Duration::from_secs(wait.wait.unwrap_or(0));
    Ok(axum::Json(state.service.push().transaction_status(&id, wait, ip).await?))
}
