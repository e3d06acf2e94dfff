//! `tessera`: the terminal soft token. Parses the command line, calls one core operation per
//! command, and prints the result; the rules live in `tessera-core`.

mod commands;
mod oneswipe;
mod push;
mod scan;
mod signin;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Tessera soft token: TOTP/HOTP codes from an encrypted vault.
#[derive(Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
pub struct Cli {
    /// Vault file [default: the platform data directory's vault.tessera]
    #[arg(long, global = true, env = tessera_platform::VAULT_ENV, value_name = "PATH")]
    vault: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Create a new vault (OS key store slot by default)
    Init {
        /// Also protect the vault with a passphrase (read from TESSERA_PASSPHRASE or prompted)
        #[arg(long)]
        passphrase: bool,
        /// Do not use the OS key store (requires --passphrase)
        #[arg(long, requires = "passphrase")]
        no_keystore: bool,
    },
    /// Add a token from an otpauth:// URI, a QR code image, or by hand
    Add(AddArgs),
    /// List tokens (never their secrets)
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Print a token's current code (HOTP: the next code, advancing the counter)
    Code {
        /// Issuer, label, issuer:label, or id prefix
        query: String,
        /// Compute the code at this Unix time instead of now (time-based tokens)
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
    },
    /// Remove a token
    Remove {
        /// Issuer, label, issuer:label, or id prefix
        query: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Change a token's label, issuer or group
    Rename {
        /// Issuer, label, issuer:label, or id prefix
        query: String,
        /// New label (account name)
        label: Option<String>,
        /// New issuer ("" removes it)
        #[arg(long)]
        issuer: Option<String>,
        /// New group ("" removes it)
        #[arg(long)]
        group: Option<String>,
    },
    /// Show a token's QR code to move it to another device (reveals the secret)
    ShowQr {
        /// Issuer, label, issuer:label, or id prefix
        query: String,
        /// Write a PNG image instead of printing to the terminal
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Write an SVG image instead of printing to the terminal
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Export every token as otpauth:// URIs, one per line (reveals every secret)
    Export {
        /// Export format (otpauth URIs, one per line)
        #[arg(long, required = true)]
        otpauth: bool,
        /// Write to FILE (created with owner-only permissions) instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Import otpauth:// URIs, one per line ("-" reads standard input)
    Import {
        /// The file holds otpauth URIs, one per line
        #[arg(long, value_name = "FILE", required = true)]
        otpauth: PathBuf,
    },
    /// Manage the ways to unlock the vault
    #[command(subcommand)]
    Slots(SlotsCommand),
    /// Enroll this vault as a push device from an enrollment link or a QR image of one (shows the
    /// server, issuer and account, and asks before sending anything)
    Enroll {
        /// A tessera://enroll?... link, a QR code image file with one, or - to read the link from stdin
        link: String,
        /// A name for this device, shown to administrators
        #[arg(long)]
        name: Option<String>,
        /// Enroll without asking (for scripts: check the server yourself)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Enroll even though the server is reached by plain HTTP on another computer, where anyone
        /// on the network can read the enrollment and take over this push device
        #[arg(long)]
        insecure_http: bool,
    },
    /// Sign in to your organisation's Tessera server with your password and a second factor (or
    /// the registration code from your help desk): this vault becomes your push device, with no
    /// QR code to scan
    Signin {
        /// The server's address, as https://auth.example.com (https:// when left out)
        url: String,
        /// Your user name (asked when left out)
        #[arg(long)]
        username: Option<String>,
        /// A name for this device, shown to you and administrators
        #[arg(long)]
        name: Option<String>,
        /// Sign in even though the server is reached by plain HTTP on another computer, where
        /// anyone on the network can read your password and take over this push device
        #[arg(long)]
        insecure_http: bool,
    },
    /// Answer push login requests
    #[command(subcommand)]
    Push(PushCommand),
    /// Read a QR code from a webcam (or replayed frames) and print its text
    Scan {
        /// Read from a webcam
        #[arg(long, conflicts_with_all = ["frames", "list"])]
        camera: bool,
        /// Which webcam (see --list)
        #[arg(long, value_name = "N", default_value_t = 0, requires = "camera")]
        index: u32,
        /// Replay the image files of DIR (PNG, JPEG, WebP, GIF, BMP, PGM), in name order, instead of a
        /// webcam; a file that cannot be decoded is reported and skipped
        #[arg(long, value_name = "DIR", required_unless_present_any = ["camera", "list"], conflicts_with = "list")]
        frames: Option<PathBuf>,
        /// Stop only at codes of this kind
        #[arg(long, default_value = "any", value_parser = ["any", "oneswipe", "enrollment"])]
        kind: String,
        /// Give up after this many seconds [default for cameras: 60]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// List the webcams and exit
        #[arg(long)]
        list: bool,
    },
    /// Show a One Swipe code: a single-use QR that logs you in when a login screen's camera reads it
    Oneswipe {
        /// The push device (issuer, label, or id prefix); optional with only one
        query: Option<String>,
        /// Write one code as a PNG image and exit
        #[arg(long, value_name = "FILE", conflicts_with = "text")]
        png: Option<PathBuf>,
        /// Print one code's text (what the QR holds) and exit
        #[arg(long)]
        text: bool,
        /// Seconds each code stays valid (1 to 120)
        #[arg(long, value_name = "SECONDS", default_value_t = tessera_core::oneswipe::DEFAULT_LIFETIME_SECS,
              value_parser = clap::value_parser!(u8).range(1..=i64::from(tessera_core::oneswipe::MAX_LIFETIME_SECS)))]
        valid_for: u8,
    },
}

/// `tessera push` subcommands.
#[derive(Subcommand)]
pub enum PushCommand {
    /// Wait for login requests and show each one (and, in a terminal, ask approve or deny)
    Listen {
        /// One JSON object per request on standard output
        #[arg(long)]
        json: bool,
        /// Deny every request (as "cancelled"), for testing
        #[arg(long)]
        auto_deny: bool,
        /// Stop after this many requests
        #[arg(long, value_name = "N")]
        count: Option<u32>,
    },
    /// Approve a pending login request
    Approve {
        /// The transaction id shown by `tessera push listen` (or the login screen)
        transaction_id: String,
        /// The number shown on the login screen
        #[arg(long)]
        number: Option<u8>,
    },
    /// Deny a pending login request
    Deny {
        /// The transaction id
        transaction_id: String,
        /// not-me (mutes further requests and alerts the administrators) or cancelled
        #[arg(long, default_value = "cancelled", value_parser = ["not-me", "cancelled"])]
        reason: String,
    },
    /// Ask for a PIN before answering login requests and before showing push tokens' codes
    #[command(subcommand)]
    Pin(PinCommand),
}

/// `tessera push pin` subcommands.
#[derive(Subcommand)]
pub enum PinCommand {
    /// Set the PIN, or change it (asks for the current one; TESSERA_PIN and TESSERA_NEW_PIN for scripts)
    Set,
    /// Stop asking for a PIN (asks for the current one)
    Clear,
}

/// `tessera add` arguments.
#[derive(Args)]
pub struct AddArgs {
    /// An otpauth:// URI ("-" reads it from standard input)
    #[arg(conflicts_with_all = ["qr", "secret"])]
    uri: Option<String>,
    /// An image file (PNG, JPEG, WebP, GIF, BMP, PGM) with a QR code
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    qr: Option<PathBuf>,
    /// Base32 secret, for adding by hand ("-" reads it from standard input)
    #[arg(long, requires = "label")]
    secret: Option<String>,
    /// Issuer (service name), when adding by hand
    #[arg(long, requires = "secret")]
    issuer: Option<String>,
    /// Label (account name), when adding by hand
    #[arg(long, requires = "secret")]
    label: Option<String>,
    /// Counter-based (HOTP) instead of time-based
    #[arg(long, requires = "secret", conflicts_with_all = ["steam", "period"])]
    hotp: bool,
    /// Steam Guard token
    #[arg(long, requires = "secret", conflicts_with_all = ["algorithm", "digits"])]
    steam: bool,
    /// HMAC algorithm: SHA1, SHA256 or SHA512
    #[arg(long, requires = "secret", default_value = "SHA1")]
    algorithm: String,
    /// Code length, 6 to 10
    #[arg(long, requires = "secret", default_value_t = 6)]
    digits: u8,
    /// TOTP period in seconds
    #[arg(long, requires = "secret", default_value_t = 30)]
    period: u32,
    /// HOTP initial counter
    #[arg(long, requires = "hotp", default_value_t = 0)]
    counter: u64,
    /// Put the token in a group
    #[arg(long)]
    group: Option<String>,
}

/// `tessera slots` subcommands.
#[derive(Subcommand)]
pub enum SlotsCommand {
    /// List the vault's key slots
    List,
    /// Add a passphrase slot, or change the passphrase
    SetPassphrase,
    /// Add an OS key store slot, or replace its key
    AddKeystore,
    /// Remove the slots of one kind (never the last way in)
    Remove {
        /// passphrase or os-keystore
        #[arg(value_parser = ["passphrase", "os-keystore"])]
        kind: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            terminal::report(&failure);
            ExitCode::from(terminal::exit_status(&failure))
        }
    }
}
