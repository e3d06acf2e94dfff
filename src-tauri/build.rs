//! Embeds the web UI and the app's configuration, and opts in to Tauri's command ACL: only the
//! commands listed here exist for the web view, and each must be allowed in `capabilities/`.

/// Every command the web view may call (each needs `allow-<name>` in a capability).
const COMMANDS: &[&str] = &[
    "vault_status",
    "create_vault",
    "unlock",
    "lock",
    "note_activity",
    "list_tokens",
    "take_code",
    "copy_code",
    "one_swipe",
    "add_uri",
    "add_image",
    "confirm_enrollment",
    "cancel_enrollment",
    "sign_in_to_organisation",
    "continue_organisation_sign_in",
    "add_manual",
    "edit_token",
    "remove_token",
    "push_status",
    "answer_push",
    "list_cameras",
    "scan_camera",
    "stop_camera",
    "token_qr",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))?;
    Ok(())
}
