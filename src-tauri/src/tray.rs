//! The tray icon: quick access without the window. Its menu copies any token's code (while the
//! vault is unlocked), shows the window, locks the vault, and quits. The menu is rebuilt only when
//! the tokens' names or the lock state change, which the token list and the lock paths report.
//!
//! Where the desktop shows tray icons, closing the window leaves Tessera running there, so login
//! requests still reach the user (push needs the app running); where it shows none (GNOME without
//! its AppIndicator extension), closing quits, since nothing would be left to quit from.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tauri::menu::{Menu, MenuBuilder, MenuEvent, SubmenuBuilder};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};
use tauri_plugin_notification::NotificationExt;
use tessera_core::vault::TokenId;

use crate::session::Session;

const SHOW: &str = "show";
const LOCK: &str = "lock";
const QUIT: &str = "quit";
const COPY_PREFIX: &str = "copy:";

/// What the menu shows: `None` while locked, else each token's id and name.
type Shown = Option<Vec<(String, String)>>;

/// The tray icon and what its menu currently shows.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    shown: Mutex<Shown>,
    told_about_hiding: AtomicBool,
}

/// Puts the icon in the tray, with the menu for a locked vault.
pub fn install<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let mut builder = TrayIconBuilder::with_id("tessera")
        .tooltip("Tessera")
        .menu(&menu(app, &None)?)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    app.manage(Tray { icon, shown: Mutex::new(None), told_about_hiding: AtomicBool::new(false) });
    Ok(())
}

/// Shows `tokens` (`None`: locked) in the menu, if that differs from what it shows. The menu is
/// built and set without holding the lock: from a background thread, Tauri runs that on the main
/// thread and waits, and the main thread may be here too (the lock command, the tray's Lock).
pub fn show_tokens<R: Runtime>(app: &AppHandle<R>, tokens: Shown) {
    let Some(tray) = app.try_state::<Tray<R>>() else { return };
    {
        let mut shown = tray.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *shown == tokens {
            return;
        }
        shown.clone_from(&tokens);
    }
    if let Ok(menu) = menu(app, &tokens) {
        let _ = tray.icon.set_menu(Some(menu));
    }
}

fn menu<R: Runtime>(app: &AppHandle<R>, tokens: &Shown) -> tauri::Result<Menu<R>> {
    let mut copy = SubmenuBuilder::new(app, "Copy a code");
    match tokens {
        None => copy = copy.text("locked", "Unlock Tessera to copy codes"),
        Some(tokens) if tokens.is_empty() => copy = copy.text("empty", "No tokens yet"),
        Some(tokens) => {
            for (id, name) in tokens {
                copy = copy.text(format!("{COPY_PREFIX}{id}"), name);
            }
        }
    }
    let copy = copy.enabled(tokens.as_ref().is_some_and(|t| !t.is_empty())).build()?;
    MenuBuilder::new(app)
        .text(SHOW, "Show Tessera")
        .item(&copy)
        .text(LOCK, "Lock")
        .separator()
        .text(QUIT, "Quit Tessera")
        .build()
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    match event.id.as_ref() {
        SHOW => show_window(app),
        LOCK => {
            if app.state::<Session>().lock() {
                crate::locked(app, "tray");
            }
        }
        QUIT => app.exit(0),
        id => {
            let Some(token) = id.strip_prefix(COPY_PREFIX).and_then(|id| TokenId::parse(id).ok()) else {
                return;
            };
            if crate::commands::copy_to_clipboard(app, &app.state::<Session>(), &token).is_err() {
                show_window(app);
            }
        }
    }
}

/// Closing the main window: hides it instead, while the tray shows Tessera's icon (the first
/// time, a notification says so and how to quit). Elsewhere the window closes and the app quits.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else { return };
    let app = window.app_handle();
    let Some(tray) = app.try_state::<Tray<R>>() else { return };
    if !desktop_shows_tray_icons() {
        return;
    }
    api.prevent_close();
    let _ = window.hide();
    if !tray.told_about_hiding.swap(true, Ordering::Relaxed) {
        let _ = app
            .notification()
            .builder()
            .title("Tessera is still running")
            .body("Login requests will reach you here. To quit, use Quit Tessera in its tray menu.")
            .show();
    }
}

/// Whether the desktop shows tray icons: on Linux, a panel owns the StatusNotifierWatcher on
/// the session bus (KDE, Xfce, Cinnamon, GNOME with its AppIndicator extension); macOS and
/// Windows always do.
fn desktop_shows_tray_icons() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::time::Duration;
        let Ok(bus) = dbus::blocking::Connection::new_session() else { return false };
        let proxy = bus.with_proxy("org.freedesktop.DBus", "/org/freedesktop/DBus", Duration::from_secs(2));
        let owned: Result<(bool,), _> =
            proxy.method_call("org.freedesktop.DBus", "NameHasOwner", ("org.kde.StatusNotifierWatcher",));
        owned.is_ok_and(|(owned,)| owned)
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// Brings the main window to the front.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}
