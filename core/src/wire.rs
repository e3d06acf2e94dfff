//! What the server and its clients both speak over HTTP: the device authentication headers, the
//! push endpoints' paths, an answer's receipt, a transaction's status, and the error body with its
//! [`ErrorCode`]. The server serializes these types and `tessera-client` reads the same ones, so
//! the two cannot drift apart. The signed messages themselves live in [`crate::push`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// The header naming the device's push token.
pub const SERIAL_HEADER: &str = "tessera-serial";
/// The header with the signed Unix time.
pub const TIMESTAMP_HEADER: &str = "tessera-timestamp";
/// The header with the device's signature (Ed25519, base64url, over
/// [`crate::push::device_auth_message`]).
pub const SIGNATURE_HEADER: &str = "tessera-signature";

/// Where the JSON API lives; the paths below are under it.
pub const API_PREFIX: &str = "/api/v1";
/// Where a device registers from an enrollment link.
pub const PUSH_REGISTER_PATH: &str = "/push/register";
/// Where a device long-polls its pending challenges.
pub const PUSH_PENDING_PATH: &str = "/push/pending";
/// Where a device holds its challenge stream (Server-Sent Events).
pub const PUSH_STREAM_PATH: &str = "/push/stream";
/// Where a device sends its signed answers.
pub const PUSH_ANSWER_PATH: &str = "/push/answer";
/// Where a device reports its wake-up address.
pub const PUSH_WAKE_PATH: &str = "/push/wake";
/// Where a login client waits on a push transaction (`{id}` is the transaction).
pub const TRANSACTION_PATH: &str = "/transactions/{id}";

/// An error response: `{ "code": "...", "message": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable error class: `not_found`, `conflict`, `invalid_input`, `locked`, `internal`, ...
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

/// Where a push transaction stands, as a waiting login client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TransactionState {
    /// Waiting for the device.
    Pending,
    /// Approved on the device: the login client completes the login with it.
    Approved,
    /// Denied on the device.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// It already completed its login.
    Consumed,
}

/// A push transaction's status for a waiting login client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionStatus {
    /// The transaction.
    pub transaction_id: String,
    /// Where it stands.
    pub status: TransactionState,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a device's answer did to its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AnswerStatus {
    /// The login may go through.
    Approved,
    /// It may not.
    Denied,
}

impl AnswerStatus {
    /// `approved` or `denied`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }
}

/// The server's receipt for a device's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerReceipt {
    /// The transaction.
    pub transaction_id: String,
    /// Its status now.
    pub status: AnswerStatus,
    /// Why it was denied: `wrong_number` or `bad_otp` (an approval refused), or the device's own
    /// reason (`cancelled`, `not_me`); older servers leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_forms_are_the_documented_ones() {
        let body = ErrorBody { code: ErrorCode::RateLimited, message: "slow down".into() };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text, r#"{"code":"rate_limited","message":"slow down"}"#);
        assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), body);
        let receipt: AnswerReceipt =
            serde_json::from_str(r#"{"transaction_id":"TX1","status":"denied","reason":"not_me"}"#).unwrap();
        assert_eq!((receipt.status, receipt.reason.as_deref()), (AnswerStatus::Denied, Some("not_me")));
        let older: AnswerReceipt =
            serde_json::from_str(r#"{"transaction_id":"TX1","status":"approved"}"#).unwrap();
        assert_eq!(serde_json::to_string(&older).unwrap(), r#"{"transaction_id":"TX1","status":"approved"}"#);
        let status = TransactionStatus {
            transaction_id: "TX1".into(),
            status: TransactionState::Expired,
            expires_at: 5,
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"transaction_id":"TX1","status":"expired","expires_at":5}"#
        );
    }
}
