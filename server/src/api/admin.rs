//! Administration: users, tokens, applications, admin keys, audit, delivered passcodes' gateways and outbox. Every handler requires an admin
//! API key.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::extract::{Admin, FormPairs, Json};
use super::{ApiError, AppState, ErrorBody};
use crate::delivery::{GatewayTest, VoiceStep};
use crate::service::NewApplication;
use crate::service::{
    DeliveryFilter, EnrollRequest, Enrollment, ImportReport, IssuedPasscode, NewUser, RegistrationCode,
    RegistrationCodeRequest, SentCodes, SyncReport, TemporaryPasscodeRequest, TokenImport, TokenView,
    UserChanges, UserImport, UserImportReport, UserView,
};
use crate::store::{AdminKeyRow, ApplicationRow, AuditEntry, AuditFilter, DeliveryRow};

type Reply<T> = Result<axum::Json<T>, ApiError>;

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", security(("admin_key" = [])), request_body = NewUser, responses(
    (status = 201, body = UserView), (status = 409, description = "The name is taken", body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
))]
pub async fn create_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(user): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    Ok((StatusCode::CREATED, axum::Json(state.service.create_user(&actor, user).await?)))
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("admin_key" = [])), responses((status = 200, body = [UserView])))]
pub async fn list_users(State(state): State<AppState>, _admin: Admin) -> Reply<Vec<UserView>> {
    Ok(axum::Json(state.service.users().await?))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> Reply<UserView> {
    Ok(axum::Json(state.service.user(&username).await?))
}

/// Changes a user's password/PIN, phone or email (`null` clears).
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), request_body = UserChanges,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
    Json(changes): Json<UserChanges>,
) -> Reply<UserView> {
    Ok(axum::Json(state.service.update_user(&actor, &username, changes).await?))
}

/// Deletes a user and their tokens.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_user(&actor, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enrolls a new token: TOTP, HOTP or push (the response carries the seed or link once, with QR
/// codes), or SMS or email (`mode`, `ttl_secs`, `period_days`, `destination`; the seed stays on
/// the server and the response carries only the serial).
#[utoipa::path(post, path = "/api/v1/users/{username}/tokens", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), request_body = EnrollRequest,
    responses((status = 201, body = Enrollment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
    Json(request): Json<EnrollRequest>,
) -> Result<(StatusCode, axum::Json<Enrollment>), ApiError> {
    Ok((StatusCode::CREATED, axum::Json(state.service.enroll(&actor, &username, request).await?)))
}

/// A user's tokens (never their seeds).
#[utoipa::path(get, path = "/api/v1/users/{username}/tokens", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), responses((status = 200, body = [TokenView]), (status = 404, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> Reply<Vec<TokenView>> {
    Ok(axum::Json(state.service.tokens(&username).await?))
}

/// Issues a registration code for the help desk to hand to a user who has no token yet: it lets
/// them into the self-service portal once to enrol their first one. Shown this once, stored only
/// as a hash; a new code replaces the user's earlier one.
#[utoipa::path(post, path = "/api/v1/users/{username}/registration-code", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), request_body = RegistrationCodeRequest,
    responses((status = 201, body = RegistrationCode), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn registration_code(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
    Json(request): Json<RegistrationCodeRequest>,
) -> Result<(StatusCode, axum::Json<RegistrationCode>), ApiError> {
    let issued = state.service.issue_registration_code(&actor, &username, request).await?;
    Ok((StatusCode::CREATED, axum::Json(issued)))
}

/// Issues a temporary passcode for the help desk to hand to the user: shown this once, stored only
/// as an Argon2id hash, good for `max_uses` logins within `valid_hours`.
#[utoipa::path(post, path = "/api/v1/users/{username}/temporary-passcode", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), request_body = TemporaryPasscodeRequest,
    responses((status = 201, body = IssuedPasscode), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn temporary_passcode(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
    Json(request): Json<TemporaryPasscodeRequest>,
) -> Result<(StatusCode, axum::Json<IssuedPasscode>), ApiError> {
    let issued = state.service.issue_temporary_passcode(&actor, &username, request).await?;
    Ok((StatusCode::CREATED, axum::Json(issued)))
}

/// Clears a user's password lock and the failures and locks of all their tokens.
#[utoipa::path(post, path = "/api/v1/users/{username}/unlock", tag = "admin", security(("admin_key" = [])),
    params(("username" = String, Path)), responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn unlock_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(username): Path<String>,
) -> Reply<UserView> {
    Ok(axum::Json(state.service.unlock_user(&actor, &username).await?))
}

/// A new relying-party application.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplicationRequest {
    /// Unique name, 1–128 printable characters (the audit log's `app:<name>`).
    name: String,
    /// What devices show as the application asking for a login (default: the name).
    service_name: Option<String>,
}

/// Creates an application; the response holds its key, shown only this once.
#[utoipa::path(post, path = "/api/v1/applications", tag = "admin", security(("admin_key" = [])),
    request_body = NewApplicationRequest,
    responses((status = 201, body = NewApplication), (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_application(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(request): Json<NewApplicationRequest>,
) -> Result<(StatusCode, axum::Json<NewApplication>), ApiError> {
    let created =
        state.service.create_application(&actor, &request.name, request.service_name.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Lists the applications (never their keys).
#[utoipa::path(get, path = "/api/v1/applications", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = [ApplicationRow])))]
pub async fn list_applications(State(state): State<AppState>, _admin: Admin) -> Reply<Vec<ApplicationRow>> {
    Ok(axum::Json(state.service.applications().await?))
}

/// Revokes an application: its key stops working at once on every replica.
#[utoipa::path(delete, path = "/api/v1/applications/{name}", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_application(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_application(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the admin keys (never the keys themselves; `TESSERA_ADMIN_TOKEN` is not listed).
#[utoipa::path(get, path = "/api/v1/admin-keys", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = [AdminKeyRow])))]
pub async fn list_admin_keys(State(state): State<AppState>, _admin: Admin) -> Reply<Vec<AdminKeyRow>> {
    Ok(axum::Json(state.service.admin_keys().await?))
}

/// Revokes an admin key by its id: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/admin-keys/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_admin_key(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_admin_key(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears a token's failures and lock, and its owner's password lock.
#[utoipa::path(post, path = "/api/v1/tokens/{serial}/unlock", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)), responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn unlock(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
) -> Reply<TokenView> {
    Ok(axum::Json(state.service.unlock(&actor, &serial).await?))
}

/// Disables a token.
#[utoipa::path(post, path = "/api/v1/tokens/{serial}/disable", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)), responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
) -> Reply<TokenView> {
    Ok(axum::Json(state.service.set_enabled(&actor, &serial, false).await?))
}

/// Re-enables a token.
#[utoipa::path(post, path = "/api/v1/tokens/{serial}/enable", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)), responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
) -> Reply<TokenView> {
    Ok(axum::Json(state.service.set_enabled(&actor, &serial, true).await?))
}

/// Two consecutive codes from the token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// A code.
    first_code: String,
    /// The code the token showed next.
    second_code: String,
}

/// Resynchronizes a token (HOTP counter or TOTP clock drift) from two consecutive codes.
#[utoipa::path(post, path = "/api/v1/tokens/{serial}/resync", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)), request_body = ResyncRequest,
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody), (status = 422, description = "The codes were not found", body = ErrorBody)))]
pub async fn resync(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
    Json(codes): Json<ResyncRequest>,
) -> Reply<TokenView> {
    Ok(axum::Json(state.service.resync(&actor, &serial, &codes.first_code, &codes.second_code).await?))
}

/// Deletes a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{serial}", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_token(&actor, &serial).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Audit records, newest first: every admin action and every validation (never a secret).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", security(("admin_key" = [])),
    params(AuditFilter), responses((status = 200, body = [AuditEntry]), (status = 400, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Reply<Vec<AuditEntry>> {
    let Query(filter) = filter.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, tessera_core::error::ErrorCode::InvalidInput, e.body_text())
    })?;
    Ok(axum::Json(state.service.audit(&filter).await?))
}

/// Messages queued and sent (SMS, email), newest first: when, to where, through which gateway and
/// why one failed. No code is stored, so none is shown.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "admin", security(("admin_key" = [])),
    params(DeliveryFilter), responses((status = 200, body = [DeliveryRow]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: Admin,
    filter: Result<Query<DeliveryFilter>, axum::extract::rejection::QueryRejection>,
) -> Reply<Vec<DeliveryRow>> {
    let Query(filter) = filter.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, tessera_core::error::ErrorCode::InvalidInput, e.body_text())
    })?;
    Ok(axum::Json(state.service.deliveries(&filter).await?))
}

/// Where a gateway test message goes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayTestRequest {
    /// A phone number (E.164) for an SMS gateway, an address for `email`.
    pub to: String,
}

/// Sends a test message (no code) through one gateway now (`email` for the mail server) and
/// answers what the gateway said.
#[utoipa::path(post, path = "/api/v1/gateways/{id}/test", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path)), request_body = GatewayTestRequest,
    responses((status = 200, body = GatewayTest), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn test_gateway(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(request): Json<GatewayTestRequest>,
) -> Reply<GatewayTest> {
    Ok(axum::Json(state.service.test_gateway(&actor, &id, &request.to).await?))
}

/// Syncs the users of every `[[directory]]` now: creates the new ones, updates display names,
/// phones and emails, and disables the tokens of users a directory no longer lists.
#[utoipa::path(post, path = "/api/v1/directories/sync", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = [SyncReport]), (status = 503, body = ErrorBody)))]
pub async fn sync_directories(State(state): State<AppState>, Admin(actor): Admin) -> Reply<Vec<SyncReport>> {
    Ok(axum::Json(state.service.sync_directories(&actor).await?))
}

/// Imports hardware tokens from a PSKC file, or tokens from an `otpauth://` list, as
/// `tessera-server admin import-tokens` does: all of them (200), or none (422 with the reason for
/// each refused entry).
#[utoipa::path(post, path = "/api/v1/imports/tokens", tag = "admin", security(("admin_key" = [])),
    request_body = TokenImport,
    responses((status = 200, body = ImportReport), (status = 422, body = ImportReport,
        description = "nothing imported: `rejected` says why for each entry (a file that cannot be read at all answers ErrorBody)")))]
pub async fn import_tokens(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(import): Json<TokenImport>,
) -> Result<(StatusCode, axum::Json<ImportReport>), ApiError> {
    let report = state.service.import_token_file(&actor, &import).await?;
    Ok((all_or_nothing(report.rejected.is_empty()), axum::Json(report)))
}

/// Creates users from CSV, as `tessera-server admin import-users` does: all of them (200), or
/// none (422 with the reason for each refused row).
#[utoipa::path(post, path = "/api/v1/imports/users", tag = "admin", security(("admin_key" = [])),
    request_body = UserImport,
    responses((status = 200, body = UserImportReport), (status = 422, body = UserImportReport,
        description = "nothing imported: `rejected` says why for each row")))]
pub async fn import_users(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(import): Json<UserImport>,
) -> Result<(StatusCode, axum::Json<UserImportReport>), ApiError> {
    let report = state.service.import_users(&actor, &import.csv).await?;
    Ok((all_or_nothing(report.rejected.is_empty()), axum::Json(report)))
}

/// An all-or-nothing import's status: 200 when everything was imported, 422 when nothing was.
fn all_or_nothing(imported: bool) -> StatusCode {
    if imported { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY }
}

/// Sends a pre-loaded or Daycode token's codes now (fresh pre-loaded codes void the unused ones).
#[utoipa::path(post, path = "/api/v1/tokens/{serial}/send", tag = "admin", security(("admin_key" = [])),
    params(("serial" = String, Path)),
    responses((status = 200, body = SentCodes), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_codes(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(serial): Path<String>,
) -> Reply<SentCodes> {
    Ok(axum::Json(state.service.send_codes(&actor, &serial).await?))
}

/// Which call a Twilio-compatible provider's voice webhook is about.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct VoiceWebhook {
    /// The transaction whose call it is.
    pub tx: String,
}

/// A Twilio-compatible provider's webhook for a voice token's call: `answer` (the TwiML that
/// gathers the keys), `gather` (the keys, judged; TwiML to say more or hang up) or `status` (how
/// the call ended). Refused (401) unless `X-Twilio-Signature` is the account's signature.
#[utoipa::path(post, path = "/api/v1/voice/twilio/{step}", tag = "delivery",
    params(("step" = String, Path, description = "answer, gather or status"), VoiceWebhook),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "AccountSid, CallSid, CallStatus, Digits and the provider's other fields"),
    responses((status = 200, description = "TwiML", content_type = "text/xml"), (status = 401, body = ErrorBody)))]
pub async fn twilio_voice(
    State(state): State<AppState>,
    Path(step): Path<VoiceStep>,
    Query(webhook): Query<VoiceWebhook>,
    headers: axum::http::HeaderMap,
    FormPairs(params): FormPairs,
) -> Result<impl IntoResponse, ApiError> {
    let signature = headers.get("x-twilio-signature").and_then(|value| value.to_str().ok());
    let twiml = state.service.twilio_voice(step, &webhook.tx, &params, signature).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")], twiml))
}

/// A Twilio-compatible provider's status callback for a message it accepted: refused (401) unless
/// `X-Twilio-Signature` is the account's signature of the callback.
#[utoipa::path(post, path = "/api/v1/sms/twilio/status", tag = "delivery",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "MessageSid, MessageStatus, AccountSid, ErrorCode and the provider's other fields"),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn twilio_status(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    FormPairs(params): FormPairs,
) -> Result<StatusCode, ApiError> {
    let signature = headers.get("x-twilio-signature").and_then(|value| value.to_str().ok());
    state.service.twilio_status(&params, signature).await?;
    Ok(StatusCode::NO_CONTENT)
}
