//! Locks the vault when the computer goes to sleep, so a stolen laptop wakes up locked. On Linux,
//! systemd-logind announces sleep with the `PrepareForSleep(true)` signal on the system bus; on
//! other systems the idle auto-lock is the only automatic lock for now.

use tauri::AppHandle;

/// Environment variable naming the bus to watch instead of the system bus: `session` (tests
/// send the logind signal on a private session bus, since they cannot be logind).
pub const SLEEP_BUS_ENV: &str = "TESSERA_SLEEP_SIGNAL_BUS";

/// Watches for sleep in the background; when it comes, locks and tells the web view.
#[cfg(target_os = "linux")]
pub fn watch(app: AppHandle) {
    use std::time::Duration;

    use dbus::blocking::Connection;
    use dbus::message::MatchRule;
    use tauri::Manager;

    std::thread::spawn(move || {
        let connection = match std::env::var(SLEEP_BUS_ENV).as_deref() {
            Ok("session") => Connection::new_session(),
            _ => Connection::new_system(),
        };
        let Ok(connection) = connection else {
            crate::report("Tessera: no system bus; the vault will not lock itself on sleep (only when idle)");
            return;
        };
        let rule = MatchRule::new_signal("org.freedesktop.login1.Manager", "PrepareForSleep");
        let handler = move |(going_to_sleep,): (bool,), _: &Connection, _: &dbus::Message| {
            if going_to_sleep && app.state::<crate::session::Session>().lock() {
                crate::locked(&app, "sleep");
            }
            true
        };
        if connection.add_match(rule, handler).is_err() {
            crate::report("Tessera: cannot watch for sleep; the vault will lock only when idle");
            return;
        }
        while connection.process(Duration::from_secs(3600)).is_ok() {}
    });
}

/// Watches for sleep in the background (not yet on this system).
#[cfg(not(target_os = "linux"))]
pub fn watch(_app: AppHandle) {}
