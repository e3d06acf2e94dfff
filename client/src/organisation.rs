//! Signing in to an organisation ("sign in to your organisation"): an app sends the user's
//! password and second factor to the server's `/api/v1/signin`, waits out a push or asks for the
//! code that was sent, and, once accepted, registers itself as a push device with the enrollment
//! link in the answer — no QR code, nothing to copy. A server reached by plain HTTP on another
//! computer is refused before anything is sent unless the person accepted it, as for links.

use std::time::{Duration, Instant};

use tessera_core::push::{Cleartext, EnrollmentLink, check_server_transport};
use tessera_core::secret::SecretString;
use tessera_core::wire::{
    API_PREFIX, SIGN_IN_PATH, SignInAnswer, SignInRequest, SignInResult, TRANSACTION_PATH, TransactionState,
    TransactionStatus,
};

use crate::{ClientError, checked, http_client, json};

/// The server's base URL as a person may type it: `https://` when no scheme is given, without a
/// trailing `/` or the portal's path.
pub fn server_url(typed: &str) -> String {
    let typed = typed.trim();
    let url = if typed.contains("://") { typed.to_owned() } else { format!("https://{typed}") };
    let url = url.trim_end_matches('/');
    url.strip_suffix("/portal").unwrap_or(url).to_owned()
}

/// Whether a typed second factor is a registration code (20 characters once dashes and spaces
/// are dropped) rather than a passcode (at most 10).
pub fn is_registration_code(typed: &str) -> bool {
    typed.chars().filter(|c| !matches!(c, '-' | ' ')).count() == 20
}

/// The first request: the user's password and what they typed as their second factor (a
/// passcode, a registration code, or nothing to approve on a device they have or get a code).
pub fn first_request(
    username: &str,
    password: Option<SecretString>,
    typed: Option<SecretString>,
) -> SignInRequest {
    let typed =
        typed.map(|t| SecretString::new(t.expose().trim().to_owned())).filter(|t| !t.expose().is_empty());
    let (passcode, registration_code) = match typed {
        Some(code) if is_registration_code(code.expose()) => (None, Some(code)),
        other => (other, None),
    };
    SignInRequest {
        username: username.trim().to_owned(),
        password: password.filter(|p| !p.expose().is_empty()),
        passcode,
        transaction_id: None,
        registration_code,
    }
}

/// What the app does after a sign-in step.
#[derive(Debug)]
pub enum NextStep {
    /// Signed in: register with this link (it works once).
    Register(EnrollmentLink),
    /// Approve on a device the user already has (choosing `number` when given), then send
    /// [`approved`].
    Approve {
        /// What to tell the user.
        message: String,
        /// The number to choose on the device.
        number: Option<u8>,
        /// The transaction to wait on and complete.
        transaction_id: String,
    },
    /// Type the code just sent, then send [`sent_code`].
    EnterSentCode {
        /// What to tell the user (where the code went).
        message: String,
        /// The challenge the code completes.
        transaction_id: String,
    },
    /// Type a passcode (after `-nopush`), then send the first request again with it.
    EnterPasscode {
        /// What to tell the user.
        message: String,
    },
    /// Refused.
    Refused {
        /// What the user may learn.
        message: String,
    },
}

/// The request that completes an approved push.
pub fn approved(username: &str, transaction_id: String) -> SignInRequest {
    SignInRequest {
        username: username.to_owned(),
        password: None,
        passcode: None,
        transaction_id: Some(transaction_id),
        registration_code: None,
    }
}

/// The request that completes a sent code's challenge with `code`.
pub fn sent_code(username: &str, transaction_id: String, code: SecretString) -> SignInRequest {
    SignInRequest { passcode: Some(code), ..approved(username, transaction_id) }
}

/// Sends one sign-in step and says what comes next.
pub async fn next_step(
    server: &str,
    request: &SignInRequest,
    cleartext: Cleartext,
) -> Result<NextStep, ClientError> {
    let answer = sign_in(server, request, cleartext).await?;
    Ok(match answer {
        SignInAnswer { result: SignInResult::Accept, enrollment_uri: Some(uri), .. } => {
            NextStep::Register(EnrollmentLink::parse(uri.expose())?)
        }
        SignInAnswer { result: SignInResult::Accept, .. } => {
            return Err(ClientError::Malformed(
                "the server accepted the sign-in but sent no enrollment link".into(),
            ));
        }
        SignInAnswer {
            result: SignInResult::Challenge,
            transaction_id: Some(transaction_id),
            code_sent: true,
            message,
            ..
        } => NextStep::EnterSentCode { message, transaction_id },
        SignInAnswer {
            result: SignInResult::Challenge,
            transaction_id: Some(transaction_id),
            number,
            message,
            ..
        } => NextStep::Approve { message, number, transaction_id },
        SignInAnswer { result: SignInResult::Challenge, message, .. } => NextStep::EnterPasscode { message },
        SignInAnswer { result: SignInResult::Reject, message, .. } => NextStep::Refused { message },
    })
}

/// How long an approval on the user's other device is waited for.
pub const APPROVAL_WAIT: Duration = Duration::from_secs(180);

/// Goes on after a challenge: waits (at most [`APPROVAL_WAIT`]) for the approval on the user's
/// other device when there is no `code`, or sends the code that was sent to them; then says what
/// comes next.
pub async fn continue_step(
    server: &str,
    username: &str,
    transaction_id: String,
    code: Option<SecretString>,
    cleartext: Cleartext,
) -> Result<NextStep, ClientError> {
    let request = match code {
        Some(code) => sent_code(username, transaction_id, code),
        None => match await_answer(server, &transaction_id, APPROVAL_WAIT).await? {
            TransactionState::Approved => approved(username, transaction_id),
            other => {
                let outcome = match other {
                    TransactionState::Denied => "denied on your other device",
                    TransactionState::Consumed => "used already",
                    TransactionState::Pending | TransactionState::Expired | TransactionState::Approved => {
                        "not approved in time"
                    }
                };
                return Ok(NextStep::Refused { message: format!("the sign-in was {outcome}") });
            }
        },
    };
    next_step(server, &request, cleartext).await
}

/// One sign-in step at `server`.
pub async fn sign_in(
    server: &str,
    request: &SignInRequest,
    cleartext: Cleartext,
) -> Result<SignInAnswer, ClientError> {
    check_server_transport(server, cleartext)?;
    let http = http_client()?;
    let response =
        checked(http.post(format!("{server}{API_PREFIX}{SIGN_IN_PATH}")).json(request).send().await).await?;
    json(response).await
}

/// Waits until push transaction `transaction_id` is answered (or expires), at most `within`.
pub async fn await_answer(
    server: &str,
    transaction_id: &str,
    within: Duration,
) -> Result<TransactionState, ClientError> {
    let http = http_client()?;
    let path = TRANSACTION_PATH.replace("{id}", transaction_id);
    let deadline = Instant::now() + within;
    loop {
        let response = checked(http.get(format!("{server}{API_PREFIX}{path}?wait=25")).send().await).await?;
        let status: TransactionStatus = json(response).await?;
        if status.status != TransactionState::Pending || Instant::now() >= deadline {
            return Ok(status.status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_servers_and_codes_are_read_as_meant() {
        assert_eq!(server_url("auth.example.com"), "https://auth.example.com");
        assert_eq!(server_url(" https://auth.example.com/portal/ "), "https://auth.example.com");
        assert_eq!(server_url("http://127.0.0.1:8480"), "http://127.0.0.1:8480");
        assert!(is_registration_code("k7qm-2xrt-abcd-efgh-0123"));
        assert!(is_registration_code("K7QM 2XRT ABCD EFGH 0123"));
        assert!(!is_registration_code("123456"));
        assert!(!is_registration_code("12345678901234567890123"));
    }
}
