//! The HTTP edge: JSON under `/api/v1`, described by `/api/v1/openapi.json`, plus `/healthz` and
//! `/metrics`. Handlers parse, call one [`Service`] function, and convert; errors leave as
//! `{ "code": ErrorCode, "message": ... }` with a matching status, and 5xx hide their detail
//! (which goes to the log).

mod admin;
mod extract;
pub mod login;
mod oneswipe;
mod portal;
mod push;
mod signin;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use tessera_core::error::{Classify, ErrorCode};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use tessera_core::wire::ErrorBody;
use tessera_core::wire::{
    API_PREFIX, PUSH_ANSWER_PATH, PUSH_PENDING_PATH, PUSH_REGISTER_PATH, PUSH_STREAM_PATH, PUSH_WAKE_PATH,
    SIGN_IN_PATH, TRANSACTION_PATH,
};

use crate::service::{Service, ServiceError};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest body an import may send (a PSKC file of some 8,000 keys), when it carries
/// credentials; larger files go through `tessera-server admin import-tokens`.
pub const MAX_IMPORT_BODY_BYTES: usize = 8 * 1024 * 1024;

const USER_IMPORT_PATH: &str = "/imports/users";
const TOKEN_IMPORT_PATH: &str = "/imports/tokens";

/// The most a request to `path` may send: imports with an `Authorization` header may send more
/// (the key is checked once the body is in, so without one a large body is refused at once).
fn body_limit(path: &str, authorized: bool) -> usize {
    let import = path
        .strip_prefix(API_PREFIX)
        .is_some_and(|rest| rest == USER_IMPORT_PATH || rest == TOKEN_IMPORT_PATH);
    if import && authorized { MAX_IMPORT_BODY_BYTES } else { MAX_BODY_BYTES }
}
/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The service.
    pub service: Arc<Service>,
    /// Whether `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
    /// The login page's One Swipe decoder, when installed.
    pub web_decoder: Option<Arc<login::WebDecoder>>,
}

/// The whole HTTP application.
///
/// Each kind of work has its own pool, so none can starve another: requests (validations, One
/// Swipe, answers, administration, the login page) share `limits.max_in_flight` places,
/// long-polls `limits.max_long_polls`, device streams `limits.max_device_streams` (held for the
/// stream's life, not just until its headers); health checks and metrics take none. A request's
/// body is read in full, within `limits.body_read_timeout_secs`, before it takes a place, so
/// slow senders hold connections but no place.
pub fn router(state: AppState) -> Router {
    let limits = state.service.limits();
    let requests = Router::new()
        .route("/validate", post(validate::validate))
        .route("/oneswipe", post(oneswipe::redeem))
        .route(SIGN_IN_PATH, post(signin::sign_in))
        .route("/users", post(admin::create_user).get(admin::list_users))
        .route(USER_IMPORT_PATH, post(admin::import_users))
        .route(TOKEN_IMPORT_PATH, post(admin::import_tokens))
        .route("/users/{username}", get(admin::get_user).patch(admin::update_user).delete(admin::delete_user))
        .route("/users/{username}/tokens", post(admin::enroll).get(admin::list_tokens))
        .route("/users/{username}/unlock", post(admin::unlock_user))
        .route("/users/{username}/temporary-passcode", post(admin::temporary_passcode))
        .route("/users/{username}/registration-code", post(admin::registration_code))
        .route("/tokens/{serial}/unlock", post(admin::unlock))
        .route("/tokens/{serial}/disable", post(admin::disable))
        .route("/tokens/{serial}/enable", post(admin::enable))
        .route("/tokens/{serial}/resync", post(admin::resync))
        .route("/tokens/{serial}", delete(admin::delete_token))
        .route("/applications", post(admin::create_application).get(admin::list_applications))
        .route("/applications/{name}", delete(admin::revoke_application))
        .route("/admin-keys", get(admin::list_admin_keys))
        .route("/admin-keys/{id}", delete(admin::revoke_admin_key))
        .route("/audit", get(admin::audit))
        .route("/deliveries", get(admin::deliveries))
        .route("/gateways/{id}/test", post(admin::test_gateway))
        .route("/directories/sync", post(admin::sync_directories))
        .route("/tokens/{serial}/send", post(admin::send_codes))
        .route("/sms/twilio/status", post(admin::twilio_status))
        .route("/voice/twilio/{step}", post(admin::twilio_voice))
        .route(PUSH_REGISTER_PATH, post(push::register))
        .route(PUSH_ANSWER_PATH, post(push::answer))
        .route(PUSH_WAKE_PATH, post(push::wake))
        .route("/openapi.json", get(openapi));
    let long_polls = Router::new()
        .route(PUSH_PENDING_PATH, get(push::pending))
        .route(TRANSACTION_PATH, get(push::transaction));
    let api = pool(requests, limits.max_in_flight)
        .merge(pool(long_polls, limits.max_long_polls))
        .route(PUSH_STREAM_PATH, get(push::stream));
    Router::new()
        .nest(API_PREFIX, api)
        .merge(pool(login::routes(), limits.max_in_flight))
        .merge(
            pool(portal::routes(), limits.max_in_flight).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                portal::only_from_allowed_networks,
            )),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler failed").into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::config::REQUEST_TIMEOUT,
        ))
        .layer(ReadBodyFirstLayer(Duration::from_secs(limits.body_read_timeout_secs)))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// `router`'s routes sharing one pool of `places`: a request finding none free is answered 503 at
/// once rather than queued.
fn pool(router: Router<AppState>, places: usize) -> Router<AppState> {
    router.layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::RateLimited,
                    "the server is busy; try again",
                )
            }))
            .layer(tower::load_shed::LoadShedLayer::new())
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(places)),
    )
}

/// Reads every request body in full (see [`read_body`]) before the inner service sees it.
#[derive(Clone, Copy)]
struct ReadBodyFirstLayer(Duration);

impl<S> tower::Layer<S> for ReadBodyFirstLayer {
    type Service = ReadBodyFirst<S>;

    fn layer(&self, inner: S) -> ReadBodyFirst<S> {
        ReadBodyFirst { inner, timeout: self.0 }
    }
}

#[derive(Clone)]
struct ReadBodyFirst<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<Request> for ReadBodyFirst<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = self.timeout;
        Box::pin(async move {
            if axum::body::HttpBody::is_end_stream(request.body()) {
                return inner.call(request).await;
            }
            match read_body(request, timeout).await {
                Ok(request) => inner.call(request).await,
                Err(refused) => Ok(refused.into_response()),
            }
        })
    }
}

/// Reads the whole request body (at most [`body_limit`]) within `timeout`, before the request
/// reaches a pool: a client that sends its body slowly is cut off (408) without having held a
/// place that validations need. The body goes on as an extension that [`extract::Json`] parses.
async fn read_body(request: Request, timeout: Duration) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let limit = body_limit(parts.uri.path(), parts.headers.contains_key("authorization"));
    let read = tokio::time::timeout(
        timeout,
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)),
    );
    let refused = |status, message: String| Err(ApiError::new(status, ErrorCode::InvalidInput, message));
    match read.await {
        Ok(Ok(collected)) => {
            parts.extensions.insert(extract::ReadBody(collected.to_bytes()));
            Ok(Request::from_parts(parts, Body::empty()))
        }
        Ok(Err(error)) if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            refused(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes"))
        }
        Ok(Err(_)) => refused(StatusCode::BAD_REQUEST, "the request body was cut short".into()),
        Err(_) => refused(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {} s", timeout.as_secs()),
        ),
    }
}

/// An error response: `{ "code": "...", "message": "..." }`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// A client error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn internal(detail: &str) -> Self {
        tracing::error!(detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; see the server log",
        )
    }
}

/// The HTTP status of each error class: the one table every service error goes through.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::AlreadyUsed => StatusCode::CONFLICT,
        ErrorCode::InvalidInput | ErrorCode::InvalidCode => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Denied | ErrorCode::Crypto => StatusCode::UNAUTHORIZED,
        ErrorCode::Locked => StatusCode::LOCKED,
        ErrorCode::Expired => StatusCode::GONE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Storage | ErrorCode::Network | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        match status_of(code) {
            // A directory that cannot be reached: the administrator should read why.
            _ if matches!(error, ServiceError::Unavailable(_)) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string())
            }
            status if status.is_server_error() => Self::internal(&error.to_string()),
            // A full pool is "try again later" like a rate limit, but the server's, not the client's.
            _ if matches!(error, ServiceError::Busy(_)) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string())
            }
            status => Self::new(status, code, error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(ErrorBody { code: self.code, message: self.message })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such endpoint; see /api/v1/openapi.json")
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok` or `degraded`.
    status: &'static str,
    /// `ok` or `unreachable`.
    database: &'static str,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "Serving", body = Health),
    (status = 503, description = "The database is unreachable", body = Health),
))]
async fn healthz(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    if state.service.store().ping().await {
        (StatusCode::OK, axum::Json(Health { status: "ok", database: "ok" }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "degraded", database: "unreachable" }))
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.service.metrics().hub_channels(state.service.push().hub().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.service.metrics().render())
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "application_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "Application key (tak_...): optional unless require_application_key is set",
                        ))
                        .build(),
                ),
            );
            components.add_security_scheme(
                "admin_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("Admin API key (tsk_...)"))
                        .build(),
                ),
            );
        }
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera verification server", description = "Enrollment, OTP validation, administration and audit."),
    paths(
        validate::validate, oneswipe::redeem, signin::sign_in,
        admin::create_user, admin::list_users, admin::get_user, admin::update_user, admin::delete_user,
        admin::enroll, admin::list_tokens, admin::unlock, admin::disable, admin::enable, admin::resync,
        admin::delete_token, admin::unlock_user, admin::temporary_passcode, admin::registration_code, admin::create_application, admin::list_applications,
        admin::revoke_application, admin::list_admin_keys, admin::revoke_admin_key, admin::audit, admin::deliveries, admin::test_gateway, admin::sync_directories, admin::import_tokens, admin::import_users, admin::send_codes, admin::twilio_status, admin::twilio_voice, healthz, metrics, openapi,
        push::register, push::stream, push::pending, push::answer, push::wake, push::transaction,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "validate", description = "Checking passcodes, push logins, One Swipe codes"),
        (name = "admin", description = "Users, tokens, applications, admin keys, audit (bearer admin key)"),
        (name = "push", description = "Push devices: registration, challenge channel, answers (device-signed)"),
    ),
)]
pub struct ApiDoc;
