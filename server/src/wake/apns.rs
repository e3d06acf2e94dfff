//! Apple Push Notification service over HTTP/2 with token-based authentication: a provider
//! token (an ES256 JWT naming the key and team) reused for up to 50 minutes, as Apple asks
//! (renewed at least hourly, at most every 20 minutes), and `POST /3/device/{token}` with a
//! time-sensitive alert that brings the app forward to fetch the challenge.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;
use tessera_core::secret::SecretString;

use super::{WakeError, WakeOutcome, WakeUp, read_file, retryable};
use crate::config::ApnsConfig;

/// A provider token is replaced after this long.
const PROVIDER_TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

struct ProviderToken {
    value: SecretString,
    renew_at: Instant,
}

/// An APNs sender for one app (topic) and signing key.
pub(super) struct Apns {
    http: reqwest::Client,
    endpoint: String,
    topic: String,
    key_id: String,
    team_id: String,
    key: EncodingKey,
    token: std::sync::Mutex<Option<ProviderToken>>,
}

impl Apns {
    pub(super) fn new(config: &ApnsConfig, http: reqwest::Client) -> Result<Self, WakeError> {
        let pem = read_file(&config.key_file)?;
        let key = EncodingKey::from_ec_pem(pem.expose().as_bytes()).map_err(|_| {
            WakeError::Invalid(format!(
                "{} is not an APNs signing key (a P-256 private key in PEM form, as Apple's .p8 files are)",
                config.key_file.display()
            ))
        })?;
        Ok(Self {
            http,
            endpoint: config.endpoint.clone(),
            topic: config.topic.clone(),
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            key,
            token: std::sync::Mutex::new(None),
        })
    }

    /// Sends one wake-up; the flag says whether a retry may help.
    pub(super) async fn send(&self, device_token: &str, wake: &WakeUp<'_>) -> (WakeOutcome, bool) {
        let provider_token = match self.provider_token() {
            Ok(token) => token,
            Err(reason) => return (WakeOutcome::Failed(reason), false),
        };
        let payload = json!({
            "aps": {
                "alert": {
                    "title": "Login request",
                    "body": "Open Tessera to review it.",
                },
                "sound": "default",
                "interruption-level": "time-sensitive",
                "mutable-content": 1,
            },
            "tessera": {
                "serial": wake.serial,
            },
        });
        let response = self
            .http
            .post(format!("{}/3/device/{device_token}", self.endpoint))
            .header("authorization", format!("bearer {}", provider_token.expose()))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", wake.expires_at.to_string())
            .header("apns-collapse-id", wake.serial)
            .json(&payload)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return (WakeOutcome::Failed(format!("APNs unreachable: {error}")), true),
        };
        let status = response.status();
        if status.is_success() {
            return (WakeOutcome::Sent, false);
        }
        let reason = response.json::<ApnsError>().await.map(|e| e.reason).unwrap_or_default();
        match (status.as_u16(), reason.as_str()) {
            (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
                (WakeOutcome::Unregistered, false)
            }
            (403, "ExpiredProviderToken" | "InvalidProviderToken") => {
                self.forget_provider_token();
                (WakeOutcome::Failed(format!("APNs answered {status} {reason}")), true)
            }
            _ => (WakeOutcome::Failed(format!("APNs answered {status} {reason}")), retryable(status)),
        }
    }

    fn provider_token(&self) -> Result<SecretString, String> {
        let mut cached = self.token.lock().map_err(|_| "the APNs token cache is unusable".to_owned())?;
        if let Some(token) = cached.as_ref().filter(|token| Instant::now() < token.renew_at) {
            return Ok(token.value.clone());
        }
        let header = Header { kid: Some(self.key_id.clone()), ..Header::new(Algorithm::ES256) };
        let claims = json!({ "iss": self.team_id, "iat": tessera_core::otp::unix_now() });
        let value = SecretString::new(
            jsonwebtoken::encode(&header, &claims, &self.key)
                .map_err(|e| format!("could not sign the APNs provider token: {e}"))?,
        );
        *cached =
            Some(ProviderToken { value: value.clone(), renew_at: Instant::now() + PROVIDER_TOKEN_LIFETIME });
        Ok(value)
    }

    fn forget_provider_token(&self) {
        if let Ok(mut cached) = self.token.lock() {
            *cached = None;
        }
    }
}

/// APNs's error body: `{"reason": "BadDeviceToken"}`.
#[derive(Deserialize)]
struct ApnsError {
    reason: String,
}
