//! One app per vault: starting Tessera again while it runs (from the menu, or while it sits in the
//! tray) shows the running app's window instead of opening the vault a second time.
//!
//! On Linux the running app owns a session bus name made from the vault's path (apps on other
//! vaults, other users' or the tests', run side by side) and answers `Show` on it; a second start
//! calls that and ends. It uses the `dbus` crate the app already links for the sleep signal:
//! tauri-plugin-single-instance, tried first, opens its own zbus connection, which added about
//! 250 ms to the start (debug build, `tessera-desktopbench`, 7 runs: median 790 → 1,034 ms) and
//! 1.4 MB to the release binary. Elsewhere that plugin does the job.

use std::path::Path;

/// What starting the app found.
pub enum Start {
    /// This is the vault's only app: serve [`Claim::serve`] once the app runs.
    First(Claim),
    /// Another app had the vault and was asked to show its window: end now.
    HandedOver,
}

/// The claim on the vault's bus name (none without a session bus).
pub struct Claim {
    #[cfg(target_os = "linux")]
    bus: Option<dbus::blocking::Connection>,
}

/// The `Show` method's interface on the bus name.
#[cfg(target_os = "linux")]
const INTERFACE: &str = "dev.tessera.Desktop";

/// Claims the vault at `vault` for this app, or hands over to the app that has it.
#[cfg(target_os = "linux")]
pub fn start(vault: &Path) -> Result<Start, String> {
    use std::time::Duration;

    use dbus::blocking::Connection;
    use dbus::blocking::stdintf::org_freedesktop_dbus::RequestNameReply;

    let Ok(bus) = Connection::new_session() else {
        crate::report("Tessera: no session bus; a second start will open a second window");
        return Ok(Start::First(Claim { bus: None }));
    };
    let name = bus_name(vault);
    match bus.request_name(name.as_str(), false, false, true) {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {
            Ok(Start::First(Claim { bus: Some(bus) }))
        }
        Ok(_) => {
            let running = bus.with_proxy(name.as_str(), "/", Duration::from_secs(5));
            running
                .method_call::<(), _, _, _>(INTERFACE, "Show", ())
                .map(|()| Start::HandedOver)
                .map_err(|error| format!("Tessera is running on this vault but did not answer ({error})"))
        }
        Err(error) => {
            crate::report(&format!("Tessera: cannot claim the vault on the session bus ({error})"));
            Ok(Start::First(Claim { bus: None }))
        }
    }
}

/// Claims the vault for this app (elsewhere than Linux, tauri-plugin-single-instance does).
#[cfg(not(target_os = "linux"))]
pub fn start(_vault: &Path) -> Result<Start, String> {
    Ok(Start::First(Claim {}))
}

/// The bus name for the vault at `vault` (bus names allow letters, digits and `_` per element).
#[cfg(target_os = "linux")]
fn bus_name(vault: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    vault.hash(&mut hasher);
    format!("dev.tessera.desktop.vault_{:016x}", hasher.finish())
}

impl Claim {
    /// Answers later starts' `Show` calls by showing the window, in the background.
    pub fn serve<R: tauri::Runtime>(self, app: &tauri::AppHandle<R>) {
        #[cfg(target_os = "linux")]
        if let Some(bus) = self.bus {
            use dbus::channel::{MatchingReceiver, Sender};
            use dbus::message::MatchRule;

            let app = app.clone();
            std::thread::spawn(move || {
                bus.start_receive(
                    MatchRule::new_method_call(),
                    Box::new(move |call, bus| {
                        let reply = if call.interface().as_deref() == Some(INTERFACE)
                            && call.member().as_deref() == Some("Show")
                        {
                            crate::tray::show_window(&app);
                            call.method_return()
                        } else {
                            dbus::Message::error(
                                &call,
                                &"org.freedesktop.DBus.Error.UnknownMethod".into(),
                                c"Tessera answers only Show",
                            )
                        };
                        let _ = bus.send(reply);
                        true
                    }),
                );
                while bus.process(std::time::Duration::from_secs(3600)).is_ok() {}
            });
        }
        #[cfg(not(target_os = "linux"))]
        let _ = app;
    }
}

/// The plugin that keeps one app running where the bus name above is not used.
#[cfg(not(target_os = "linux"))]
pub fn plugin<R: tauri::Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_single_instance::init(|app, _arguments, _directory| crate::tray::show_window(app))
}
