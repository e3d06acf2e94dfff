//! `tessera signin URL`: signs in to an organisation's Tessera server with the user's password and
//! a second factor (a passcode, an approval on a device they already have, the code sent to
//! them, or the help desk's registration code for a first device), and makes this vault a push
//! device for them with no QR code. The protocol is `tessera-client`'s; this module asks and prints.

use tessera_client::devices;
use tessera_client::organisation::{self, NextStep, server_url};
use tessera_core::error::ErrorCode;
use tessera_core::otp::unix_now;
use tessera_core::push::{Cleartext, check_server_transport};
use tessera_core::secret::SecretString;
use tessera_core::vault::UnlockedVault;
use tessera_core::wire::SignInRequest;

use crate::push::runtime;
use crate::terminal::{self, Failure, note, read_line, warn};

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
    let typed = read_line(
        "Passcode, or the registration code from your help desk (empty: approve on a device you have, or get a code by text): ",
    )?;
    let first = organisation::first_request(&username, password, Some(SecretString::new(typed)));
    let runtime = runtime()?;
    let mut step = runtime.block_on(organisation::next_step(&server, &first, cleartext))?;
    for _ in 0..3 {
        let next = match step {
            NextStep::Register(_) | NextStep::Refused { .. } => break,
            NextStep::Approve { message, number, transaction_id } => {
                note(sentence(&message));
                if let Some(number) = number {
                    note(format!("Choose {number} on your device."));
                }
                organisation::continue_step(&server, &username, transaction_id, None, cleartext)
            }
            NextStep::EnterSentCode { message, transaction_id } => {
                note(sentence(&message));
                let code = SecretString::new(read_line("Code: ")?.trim().to_owned());
                organisation::continue_step(&server, &username, transaction_id, Some(code), cleartext)
            }
            NextStep::EnterPasscode { message } => {
                note(sentence(&message));
                let passcode = Some(SecretString::new(read_line("Passcode: ")?.trim().to_owned()));
                let again = SignInRequest { passcode, ..first.clone() };
                step = runtime.block_on(organisation::next_step(&server, &again, cleartext))?;
                continue;
            }
        };
        step = runtime.block_on(next)?;
    }
    let link = match step {
        NextStep::Register(link) => link,
        NextStep::Refused { message } => return Err(refused(&server, &message)),
        _ => return Err(refused(&server, "too many steps")),
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

fn refused(server: &str, message: &str) -> Failure {
    Failure::Refused { code: ErrorCode::Denied, message: format!("{server} refused the sign-in: {message}") }
}

fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
