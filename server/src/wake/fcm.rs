//! Firebase Cloud Messaging, HTTP v1 API: an OAuth 2.0 access token obtained with a service
//! account's signed JWT (RS256, RFC 7523), cached until shortly before it expires, then
//! `POST /v1/projects/{project}/messages:send` with a high-priority data message.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;
use tessera_core::secret::SecretString;
use tokio::sync::Mutex;

use super::{WakeError, WakeOutcome, WakeUp, read_file, retryable, time_to_live};
use crate::config::FcmConfig;

/// The OAuth scope FCM's send API needs.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// RFC 7523's grant type for a JWT bearer assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A cached access token is renewed this long before it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(120);

/// The fields of a service account key file that FCM needs.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key_id: String,
    private_key: SecretString,
    client_email: String,
    token_uri: String,
}

struct AccessToken {
    value: SecretString,
    renew_at: Instant,
}

/// An FCM sender for one Firebase project.
pub(super) struct Fcm {
    http: reqwest::Client,
    send_url: String,
    token_uri: String,
    client_email: String,
    key_id: String,
    key: EncodingKey,
    access: Mutex<Option<AccessToken>>,
}

impl Fcm {
    pub(super) fn new(config: &FcmConfig, http: reqwest::Client) -> Result<Self, WakeError> {
        let path = config.service_account_file.display();
        let text = read_file(&config.service_account_file)?;
        let account: ServiceAccount = serde_json::from_str(text.expose())
            .map_err(|e| WakeError::Invalid(format!("{path} is not a service account key file: {e}")))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.expose().as_bytes()).map_err(|_| {
            WakeError::Invalid(format!("{path}: private_key is not an RSA private key in PEM form"))
        })?;
        if !account.token_uri.starts_with("https://") {
            return Err(WakeError::Invalid(format!("{path}: token_uri must start with https://")));
        }
        Ok(Self {
            http,
            send_url: format!("{}/v1/projects/{}/messages:send", config.endpoint, account.project_id),
            token_uri: account.token_uri,
            client_email: account.client_email,
            key_id: account.private_key_id,
            key,
            access: Mutex::new(None),
        })
    }

    /// Sends one wake-up; the flag says whether a retry may help.
    pub(super) async fn send(&self, device_token: &str, wake: &WakeUp<'_>) -> (WakeOutcome, bool) {
        let access = match self.access_token().await {
            Ok(access) => access,
            Err(reason) => return (WakeOutcome::Failed(reason), true),
        };
        let message = json!({
            "message": {
                "token": device_token,
                "data": {
                    "tessera": "push",
                    "serial": wake.serial,
                },
                "android": {
                    "priority": "HIGH",
                    "ttl": format!("{}s", time_to_live(wake)),
                    "collapse_key": wake.serial,
                },
            }
        });
        let response =
            match self.http.post(&self.send_url).bearer_auth(access.expose()).json(&message).send().await {
                Ok(response) => response,
                Err(error) => return (WakeOutcome::Failed(format!("FCM unreachable: {error}")), true),
            };
        let status = response.status();
        if status.is_success() {
            return (WakeOutcome::Sent, false);
        }
        let code = response.json::<FcmError>().await.ok().and_then(FcmError::code).unwrap_or_default();
        if status == reqwest::StatusCode::NOT_FOUND || code == "UNREGISTERED" {
            return (WakeOutcome::Unregistered, false);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            *self.access.lock().await = None;
        }
        let retry = retryable(status) || status == reqwest::StatusCode::UNAUTHORIZED;
        (WakeOutcome::Failed(format!("FCM answered {status} {code}")), retry)
    }

    /// The cached access token, or a new one from the token endpoint.
    async fn access_token(&self) -> Result<SecretString, String> {
        let mut cached = self.access.lock().await;
        if let Some(token) = cached.as_ref().filter(|token| Instant::now() < token.renew_at) {
            return Ok(token.value.clone());
        }
        let now = tessera_core::otp::unix_now();
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let header = Header { kid: Some(self.key_id.clone()), ..Header::new(Algorithm::RS256) };
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("could not sign the FCM token request: {e}"))?;
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[("grant_type", JWT_BEARER), ("assertion", assertion.as_str())])
            .send()
            .await
            .map_err(|e| format!("the OAuth token endpoint is unreachable: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let error = response.json::<OAuthError>().await.map(|e| e.error).unwrap_or_default();
            return Err(format!("the OAuth token endpoint answered {status} {error}"));
        }
        let granted: Granted =
            response.json().await.map_err(|e| format!("unexpected OAuth token response: {e}"))?;
        let lifetime = Duration::from_secs(granted.expires_in).saturating_sub(RENEW_MARGIN);
        *cached =
            Some(AccessToken { value: granted.access_token.clone(), renew_at: Instant::now() + lifetime });
        Ok(granted.access_token)
    }
}

#[derive(Deserialize)]
struct Granted {
    access_token: SecretString,
    expires_in: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

/// FCM's error body: `{"error": {"status": "...", "details": [{"errorCode": "UNREGISTERED"}]}}`.
#[derive(Deserialize)]
struct FcmError {
    error: FcmErrorBody,
}

#[derive(Deserialize)]
struct FcmErrorBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<FcmErrorDetail>,
}

#[derive(Deserialize)]
struct FcmErrorDetail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

impl FcmError {
    fn code(self) -> Option<String> {
        let detail = self.error.details.into_iter().find_map(|detail| detail.error_code);
        detail.or(Some(self.error.status).filter(|status| !status.is_empty()))
    }
}
