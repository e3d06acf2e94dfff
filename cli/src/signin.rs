//! `tessera signin URL`: signs in to an organisation's Tessera server with the user's password and
//! a second factor (a passcode, an approval on a device they already have, the code sent to
//! them, or the help desk's registration code for a first device), and makes this vault a push
//! device for them with no QR code. The protocol is `tessera-client`'s; this module asks and prints.

use std::time::Duration;

use tessera_client::devices;
use tessera_client::organisation::{self, is_registration_code, server_url};
use tessera_core::otp::unix_now;
use tessera_core::push::{Cleartext, EnrollmentLink, check_server_transport};
use tessera_core::secret::SecretString;
use tessera_core::vault::UnlockedVault;
use tessera_core::wire::{SignInAnswer, SignInRequest, SignInResult, TransactionState};

use crate::push::runtime;
use crate::terminal::{self, Failure, note, read_line, warn};

/// How long an approval on another device is waited for.
const APPROVAL_WAIT: Duration = Duration::from_secs(180);

/// Signs in at `url` and enrols this vault as the user's push device.
pub fn signin(
    vault: &UnlockedVault,
    url: &str,
    username: Option<String>,
    name: Option<String>,
    insecure_http: bool,
) -> Result<(), Failure> {
    let server = server_url(url);
    let cleartext = if insecure_http { Cleartext::AcceptedByUser } else { Cleartext::Refuse };
    check_server_transport(&server, cleartext).map_err(|refused| {
        Failure::Usage(format!("{refused}; your password would travel in the clear too (--insecure-http)"))
    })?;
    let username = match username {
        Some(name) => name,
        None => read_line("Username: ")?.trim().to_owned(),
    };
    let password = terminal::hidden_line("Password (empty if you have none): ")?;
    let factor = read_line(
        "Passcode, or the registration code from your help desk (empty: approve on a device you have, or get a code by text): ",
    )?;
    let factor = factor.trim();
    let (passcode, registration_code) = if is_registration_code(factor) {
        (None, Some(SecretString::new(factor.to_owned())))
    } else {
        (Some(SecretString::new(factor.to_owned())).filter(|_| !factor.is_empty()), None)
    };
    let runtime = runtime()?;
    let mut request = SignInRequest {
        username: username.clone(),
        password: password.filter(|p| !p.expose().is_empty()),
        passcode,
        transaction_id: None,
        registration_code,
    };
    let mut answer = runtime.block_on(organisation::sign_in(&server, &request, cleartext))?;
    for _ in 0..3 {
        if answer.result != SignInResult::Challenge {
            break;
        }
        request = next_step(&runtime, &server, request, &answer)?;
        answer = runtime.block_on(organisation::sign_in(&server, &request, cleartext))?;
    }
    let link = match answer {
        SignInAnswer { result: SignInResult::Accept, enrollment_uri: Some(uri), .. } => {
            EnrollmentLink::parse(uri.expose())?
        }
        SignInAnswer { message, .. } => {
            return Err(Failure::Refused {
                code: tessera_core::error::ErrorCode::Denied,
                message: format!("{server} refused the sign-in: {message}"),
            });
        }
    };
    if let Some(warning) = link.cleartext_warning() {
        warn(warning);
    }
    let name = name.or_else(|| std::env::var("HOSTNAME").ok()).map(|n| n.chars().take(64).collect());
    let (_, registered) = runtime.block_on(devices::enroll(vault, &link, name, cleartext, unix_now()))?;
    note(format!(
        "Signed in to {} as {}: this vault is now your push device ({}). `tessera code {}` shows its codes; `tessera push listen` receives login requests.",
        registered.issuer, registered.username, registered.serial, registered.username
    ));
    Ok(())
}

/// What to send after a challenge: the approval's outcome, the code that was sent, or (after
/// `-nopush`) a passcode with the password again.
fn next_step(
    runtime: &tokio::runtime::Runtime,
    server: &str,
    request: SignInRequest,
    answer: &SignInAnswer,
) -> Result<SignInRequest, Failure> {
    note(sentence(&answer.message));
    let Some(transaction_id) = answer.transaction_id.clone() else {
        let passcode = read_line("Passcode: ")?;
        return Ok(SignInRequest {
            passcode: Some(SecretString::new(passcode.trim().to_owned())),
            ..request
        });
    };
    if answer.code_sent {
        let code = read_line("Code: ")?;
        return Ok(SignInRequest {
            password: None,
            passcode: Some(SecretString::new(code.trim().to_owned())),
            transaction_id: Some(transaction_id),
            registration_code: None,
            ..request
        });
    }
    if let Some(number) = answer.number {
        note(format!("Choose {number} on your device."));
    }
    let state = runtime.block_on(organisation::await_answer(server, &transaction_id, APPROVAL_WAIT))?;
    if state != TransactionState::Approved {
        return Err(Failure::Refused {
            code: tessera_core::error::ErrorCode::Denied,
            message: format!("the sign-in was not approved ({state:?})").to_lowercase(),
        });
    }
    Ok(SignInRequest {
        password: None,
        passcode: None,
        transaction_id: Some(transaction_id),
        registration_code: None,
        ..request
    })
}

fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
