//! `tessera-desktop`: the desktop soft token. A Tauri 2 window over the same core and vault as
//! the CLI and the phone apps; the web UI (`ui/`) calls the [`commands`], which are the only
//! bridge to the vault.
//!
//! - [`instance`]: one app per vault.
//! - [`session`]: the vault file and, while unlocked, the vault; auto-lock.
//! - [`sleep`]: locking when the computer goes to sleep.
//! - [`push`]: the push channels in the background, and login requests for the user.
//! - [`tray`]: the tray icon's menu (copy a code, show, lock, quit).
//! - [`commands`]: what the web view may call.
//! - [`clipboard`]: copying codes, cleared after 30 s.
//! - [`camera`]: adding a token with the webcam, with a live preview.
//! - [`error`]: failures as `{kind, message}`.

pub mod camera;
pub mod clipboard;
pub mod commands;
pub mod error;
pub mod instance;
pub mod push;
pub mod session;
pub mod sleep;
pub mod tray;

use std::process::ExitCode;

use tauri::{Emitter, Manager};
use tessera_core::vault::VaultStore;
use tessera_platform::{OsKeyStore, vault_path_from_environment};

use crate::camera::CameraControl;
use crate::push::PushCenter;
use crate::session::Session;

/// Event sent to the web view when the vault locked itself.
pub const LOCKED_EVENT: &str = "vault-locked";

/// Runs the app until it quits (its window closes, or Quit in the tray while the tray keeps it).
pub fn run() -> ExitCode {
    let Some(path) = vault_path_from_environment() else {
        report("Tessera: no home directory to keep the vault in; set TESSERA_VAULT to a file path");
        return ExitCode::FAILURE;
    };
    let claim = match instance::start(&path) {
        Ok(instance::Start::First(claim)) => claim,
        Ok(instance::Start::HandedOver) => return ExitCode::SUCCESS,
        Err(message) => {
            report(&message);
            return ExitCode::FAILURE;
        }
    };
    let session = Session::new(
        VaultStore::new(path),
        OsKeyStore::from_environment(),
        Session::auto_lock_from_environment(),
    );
    let builder = tauri::Builder::default();
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(instance::plugin());
    let result = builder
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_notification::init())
        .manage(session)
        .manage(PushCenter::default())
        .manage(CameraControl::default())
        .manage(commands::PendingEnrollment::default())
        .on_window_event(tray::on_window_event)
        .invoke_handler(tauri::generate_handler![
            commands::vault_status,
            commands::create_vault,
            commands::unlock,
            commands::lock,
            commands::note_activity,
            commands::list_tokens,
            commands::take_code,
            commands::copy_code,
            commands::one_swipe,
            commands::add_uri,
            commands::add_image,
            commands::confirm_enrollment,
            commands::cancel_enrollment,
            commands::sign_in_to_organisation,
            commands::continue_organisation_sign_in,
            commands::add_manual,
            commands::edit_token,
            commands::remove_token,
            commands::push_status,
            commands::answer_push,
            commands::list_cameras,
            commands::scan_camera,
            commands::stop_camera,
            commands::token_qr,
        ])
        .setup(move |app| {
            claim.serve(app.handle());
            render_without_gpu_compositing(app.handle());
            if let Err(error) = tray::install(app.handle()) {
                report(&format!("Tessera: no tray icon ({error})"));
            }
            let handle = app.handle().clone();
            app.state::<Session>().on_idle_lock(move || locked(&handle, "idle"));
            watch_idle(app.handle().clone());
            sleep::watch(app.handle().clone());
            Ok(())
        })
        .run(tauri::generate_context!());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&format!("Tessera could not start: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// Locks the vault once the user has been idle for the auto-lock time (the session tells the
/// web view and the tray).
fn watch_idle(app: tauri::AppHandle) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(session::IDLE_CHECK_EVERY);
            app.state::<Session>().lock_if_idle();
        }
    });
}

/// Has WebKitGTK draw the page without GPU compositing on Linux: this small, mostly static window
/// draws as fast in software, and the compositor costs about 80 MiB in the web process. Set as
/// the app starts, before the page's first paint (set once the page had loaded, it saved only a
/// sixth of that: the compositor's memory stayed). Measured with `tessera-desktopbench` (README).
fn render_without_gpu_compositing<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    #[cfg(target_os = "linux")]
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// Tells the web view and the tray that the vault locked itself (`reason`: `idle`, `sleep`, `tray`).
pub(crate) fn locked<R: tauri::Runtime>(app: &tauri::AppHandle<R>, reason: &str) {
    let _ = app.emit(LOCKED_EVENT, reason);
    tray::show_tokens(app, None);
}

/// Tells the person who started the app (standard error) about a problem outside the window.
#[allow(clippy::print_stderr)]
pub(crate) fn report(message: &str) {
    eprintln!("{message}");
}
