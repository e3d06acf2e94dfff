//! `tessera oneswipe`: shows a push device's One Swipe code, a signed single-use QR that a login
//! screen's webcam reads instead of a typed passcode. In a terminal the code is redrawn with its
//! countdown and replaced before it expires; otherwise (or with `--png`/`--text`) one code is
//! written and the command ends.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use tessera_core::oneswipe::OneSwipe;
use tessera_core::otp::unix_now;
use tessera_core::qr;
use tessera_core::vault::{TokenId, UnlockedVault, VaultError};

use crate::commands::check_pin;
use crate::terminal::{self, Failure, note, output, output_raw};

/// Seconds before expiry at which the terminal display switches to a fresh code.
const REFRESH_BEFORE_EXPIRY_SECS: u64 = 5;
/// Pixels per QR module in PNG output: about 400 px for the version-6 code.
const PNG_MODULE_PX: u32 = 8;

/// Where the code goes.
pub enum Output {
    /// Redrawn in the terminal until interrupted.
    Terminal,
    /// One PNG image.
    Png(PathBuf),
    /// The payload text on standard output.
    Text,
}

/// Makes One Swipe codes from the push device `query` names (or the only one).
pub fn oneswipe(
    vault: &UnlockedVault,
    query: Option<&str>,
    output_to: Output,
    valid_for: u8,
) -> Result<(), Failure> {
    let contents = vault.read()?;
    let token = contents.resolve_push(query)?;
    let (id, name) = (token.id().clone(), token.display_name());
    check_pin(vault, &contents)?;
    match output_to {
        Output::Png(path) => {
            let code = take(vault, &id, valid_for)?;
            terminal::write_private_file(&path, &qr::render_png(code.to_text().expose(), PNG_MODULE_PX)?)?;
            note(format!("Wrote {}: One Swipe code for {name}, valid for {valid_for} s", path.display()));
        }
        Output::Text => output(take(vault, &id, valid_for)?.to_text().expose()),
        Output::Terminal if !std::io::stdout().is_terminal() => {
            output(qr::render_terminal(take(vault, &id, valid_for)?.to_text().expose())?);
        }
        Output::Terminal => loop {
            let code = take(vault, &id, valid_for)?;
            let picture = qr::render_terminal(code.to_text().expose())?;
            let refresh_at = code.expires_at().saturating_sub(REFRESH_BEFORE_EXPIRY_SECS).max(unix_now() + 1);
            while unix_now() < refresh_at {
                let left = code.expires_at().saturating_sub(unix_now());
                output_raw("\x1b[2J\x1b[H");
                output(&picture);
                output(format!(
                    "One Swipe for {name}: hold this to the login screen's camera ({left} s left; Ctrl-C to stop)"
                ));
                std::thread::sleep(Duration::from_secs(1));
            }
        },
    }
    Ok(())
}

fn take(vault: &UnlockedVault, id: &TokenId, valid_for: u8) -> Result<OneSwipe, Failure> {
    Ok(vault.update(|v| v.take_one_swipe(id, unix_now(), valid_for).map_err(VaultError::from))?)
}
