//! End-to-end tests: Tessera's binaries run as a user runs them, against real services (the
//! Secret Service from gnome-keyring, Debian's `oathtool` as the reference OTP generator).
//!
//! Run them through the README's test command, which builds the binaries first and starts a
//! private D-Bus session with an unlocked gnome-keyring; without one, the key store tests fail
//! with instructions rather than skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[macro_use]
mod server_support;
mod bench_programs;
mod cli_add_and_codes;
mod cli_bad_input;
mod cli_concurrency;
mod cli_slots;
mod delivery;
mod desktop;
mod directory;
mod ffi;
mod freeradius_proxy;
mod imports;
mod kannel_gateway;
mod layering;
mod ldap_directory;
mod login_page;
mod oneswipe;
mod portal;
mod push;
mod radius;
mod review;
mod server;
mod smpp_smsc;
mod smtp_server;
mod support;
mod terminal;
mod twilio_standin;
mod voice;
mod wake;
