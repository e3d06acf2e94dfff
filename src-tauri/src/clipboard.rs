//! Copying codes: the code goes to the system clipboard and is cleared again after
//! [`CLEAR_AFTER`], unless the user has copied something else meanwhile.

use std::time::Duration;

use tauri::{AppHandle, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tessera_core::error::ErrorCode;
use zeroize::Zeroizing;

use crate::error::{CommandError, CommandResult};

/// How long a copied code stays on the clipboard.
pub const CLEAR_AFTER: Duration = Duration::from_secs(30);

/// Puts `code` on the clipboard and clears it after `clear_after` if it is still there.
pub fn copy_then_clear<R: Runtime>(
    app: &AppHandle<R>,
    code: String,
    clear_after: Duration,
) -> CommandResult<()> {
    let code = Zeroizing::new(code);
    app.clipboard()
        .write_text(code.as_str())
        .map_err(|e| CommandError::new(ErrorCode::Internal, format!("could not use the clipboard: {e}")))?;
    let app = app.clone();
    std::thread::spawn(move || {
        std::thread::sleep(clear_after);
        let still_ours =
            app.clipboard().read_text().is_ok_and(|text| Zeroizing::new(text).as_str() == code.as_str());
        if still_ours {
            let _ = app.clipboard().clear();
        }
    });
    Ok(())
}
