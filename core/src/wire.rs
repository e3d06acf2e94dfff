//! What the server and its clients both speak over HTTP: the device authentication headers, the
//! push endpoints' paths, an answer's receipt, a transaction's status, and the error body with its
//! [`ErrorCode`]. The server serializes these types and `tessera-client` reads the same ones, so
//! the two cannot drift apart. The signed messages themselves live in [`crate::push`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::secret::SecretString;

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
/// Where an app signs in to an organisation and gets its push token.
pub const SIGN_IN_PATH: &str = "/signin";

/// `POST /api/v1/signin`: an app signing in to an organisation ("sign in to your organisation"):
/// the user's password and a second factor (a passcode, an approval completed with
/// `transaction_id`, or the help desk's registration code for a first device).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignInRequest {
    /// The user.
    pub username: String,
    /// Their password, when they have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Option<SecretString>,
    /// A code from any of their tokens; empty or absent asks for a push or a sent code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub passcode: Option<SecretString>,
    /// Completes a push approval or a sent code that a `challenge` answer named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The help desk's registration code, for a user without any token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub registration_code: Option<SecretString>,
}

/// How a sign-in step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignInResult {
    /// Signed in: `enrollment_uri` is this app's new push token, pending until it registers.
    Accept,
    /// Approve on a device, or enter the code sent: then call again with `transaction_id`.
    Challenge,
    /// Refused; `message` says what the user may learn.
    Reject,
}

/// The answer to [`SignInRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignInAnswer {
    /// How it ended.
    pub result: SignInResult,
    /// Text for the user.
    pub message: String,
    /// A challenge: wait on `/api/v1/transactions/{id}` (push), or send the code with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// A push with number matching: the number to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// A challenge by a sent code (rather than a push): its code is to be typed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code_sent: bool,
    /// A voice token's call: the code to show, for the user to key into the call (then wait on
    /// the transaction as for a push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub display_code: Option<SecretString>,
    /// When the code shown stops working (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Accepted: the `tessera://enroll` link the app registers with at once (it works once,
    /// within the server's enrollment time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub enrollment_uri: Option<SecretString>,
}

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
    /// Why a voice token's call denied it, for the login screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CallDenial>,
}

/// Why a voice token's call denied its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallDenial {
    /// Nobody answered while it rang.
    NotAnswered,
    /// The line was busy, or the callee declined.
    Busy,
    /// The callee hung up before keying the code.
    HungUp,
    /// Answered, but no code was keyed in.
    NoKeys,
    /// Three wrong codes.
    WrongCode,
    /// `9`: the user did not ask for this login.
    Fraud,
    /// The call could not be placed, or ended in an error.
    Failed,
}

impl CallDenial {
    const ALL: [Self; 7] = [
        Self::NotAnswered,
        Self::Busy,
        Self::HungUp,
        Self::NoKeys,
        Self::WrongCode,
        Self::Fraud,
        Self::Failed,
    ];

    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnswered => "not_answered",
            Self::Busy => "busy",
            Self::HungUp => "hung_up",
            Self::NoKeys => "no_keys",
            Self::WrongCode => "wrong_code",
            Self::Fraud => "fraud",
            Self::Failed => "failed",
        }
    }

    /// The denial a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|denial| denial.as_str() == name)
    }
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
    fn a_sign_in_travels_without_empty_fields_and_refuses_unknown_ones() {
        let request = SignInRequest {
            username: "kim".into(),
            password: Some(SecretString::new("2580".into())),
            passcode: None,
            transaction_id: None,
            registration_code: None,
        };
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"username":"kim","password":"2580"}"#);
        assert!(serde_json::from_str::<SignInRequest>(r#"{"username":"kim","pin":"1"}"#).is_err());
        let answer: SignInAnswer =
            serde_json::from_str(r#"{"result":"challenge","message":"m","transaction_id":"TX","number":42}"#)
                .unwrap();
        assert_eq!(
            (answer.result, answer.number, answer.code_sent),
            (SignInResult::Challenge, Some(42), false)
        );
        assert!(!format!("{request:?}").contains("2580"), "secrets stay out of Debug");
    }

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
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"transaction_id":"TX1","status":"expired","expires_at":5}"#
        );
        let denied: TransactionStatus = serde_json::from_str(
            r#"{"transaction_id":"TX1","status":"denied","expires_at":5,"reason":"not_answered"}"#,
        )
        .unwrap();
        assert_eq!(denied.reason, Some(CallDenial::NotAnswered));
        for denial in CallDenial::ALL {
            let json = serde_json::to_string(&denial).unwrap();
            assert_eq!(json, format!("\"{}\"", denial.as_str()));
            assert_eq!(CallDenial::parse(denial.as_str()), Some(denial));
        }
    }
}
