//! The `tessera-desktop` executable: starts the app.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    tessera_desktop::run()
}
