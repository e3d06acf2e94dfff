//! Talking to the person at the terminal: error reports, passphrase prompts, confirmations, and
//! files written with owner-only permissions.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use tessera_core::error::{Classify, ErrorCode};
use tessera_core::otpauth::UriError;
use tessera_core::qr::QrError;
use tessera_core::secret::SecretString;
use tessera_core::transfer::ImportError;
use tessera_core::vault::{PinError, TokenError, VaultError, private_file_options};

/// Environment variable holding the vault passphrase, for scripts.
pub const PASSPHRASE_ENV: &str = "TESSERA_PASSPHRASE";
/// Environment variable holding a new passphrase (`slots set-passphrase`), for scripts.
pub const NEW_PASSPHRASE_ENV: &str = "TESSERA_NEW_PASSPHRASE";
/// Environment variable holding the answer PIN, for scripts.
pub const PIN_ENV: &str = "TESSERA_PIN";
/// Environment variable holding a new answer PIN (`push pin set`), for scripts.
pub const NEW_PIN_ENV: &str = "TESSERA_NEW_PIN";

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// A vault operation failed.
    Vault(VaultError),
    /// A URI was refused.
    Uri(UriError),
    /// A QR code could not be rendered or read.
    Qr(QrError),
    /// An import file was refused.
    Import(ImportError),
    /// A file of the user's could not be read or written.
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Frames could not be had from a camera or a replay.
    Camera(tessera_camera::CameraError),
    /// The command line asks for something that cannot be done.
    Usage(String),
    /// Another part (the push server, the push protocol) refused, with its error class.
    Refused {
        /// The class, which decides the exit status.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
}

impl Classify for Failure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Vault(error) => error.code(),
            Self::Uri(error) => error.code(),
            Self::Qr(error) => error.code(),
            Self::Import(error) => error.code(),
            Self::Camera(error) => error.code(),
            Self::File { .. } => ErrorCode::Storage,
            Self::Usage(_) => ErrorCode::InvalidInput,
            Self::Refused { code, .. } => *code,
        }
    }
}

/// The exit status of a failure: one per [`ErrorCode`], so a script can tell a locked vault from
/// a wrong code or an unreachable server (the table is in `docs/cli.md`). 2 stays clap's: a
/// command line that could not be parsed.
pub fn exit_status(failure: &Failure) -> u8 {
    match failure.code() {
        ErrorCode::Internal => 1,
        ErrorCode::InvalidInput => 3,
        ErrorCode::Locked => 4,
        ErrorCode::NotFound => 5,
        ErrorCode::Conflict => 6,
        ErrorCode::InvalidCode => 7,
        ErrorCode::Expired => 8,
        ErrorCode::AlreadyUsed => 9,
        ErrorCode::Denied => 10,
        ErrorCode::RateLimited => 11,
        ErrorCode::Crypto => 12,
        ErrorCode::Storage => 13,
        ErrorCode::Network => 14,
    }
}

impl From<tessera_camera::CameraError> for Failure {
    fn from(error: tessera_camera::CameraError) -> Self {
        Self::Camera(error)
    }
}

impl From<VaultError> for Failure {
    fn from(error: VaultError) -> Self {
        Self::Vault(error)
    }
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        Self::Vault(VaultError::Token(error))
    }
}

impl From<PinError> for Failure {
    fn from(error: PinError) -> Self {
        Self::Vault(VaultError::Pin(error))
    }
}

impl From<UriError> for Failure {
    fn from(error: UriError) -> Self {
        Self::Uri(error)
    }
}

impl From<QrError> for Failure {
    fn from(error: QrError) -> Self {
        Self::Qr(error)
    }
}

impl From<ImportError> for Failure {
    fn from(error: ImportError) -> Self {
        Self::Import(error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault(VaultError::NotFound(path)) => {
                write!(f, "no vault at {}; create one with `tessera init`", path.display())
            }
            Self::Vault(error @ VaultError::PassphraseRequired { .. }) => {
                write!(f, "{error}; set {PASSPHRASE_ENV} or run tessera in a terminal")
            }
            Self::Vault(error) => error.fmt(f),
            Self::Uri(error) => error.fmt(f),
            Self::Qr(error) => error.fmt(f),
            Self::Import(error) => error.fmt(f),
            Self::Camera(error) => error.fmt(f),
            Self::File { action, path, source } => {
                write!(f, "could not {action} {}: {source}", path.display())
            }
            Self::Usage(message) | Self::Refused { message, .. } => f.write_str(message),
        }
    }
}

/// Prints a failure on standard error: one line, plus the candidates of an ambiguous query.
pub fn report(failure: &Failure) {
    eprintln!("tessera: error: {}", single_line(&failure.to_string()));
    if let Failure::Vault(VaultError::Token(TokenError::Ambiguous { matches, .. })) = failure {
        for candidate in matches {
            eprintln!("  {}  {}  ({})", short_id(candidate.id.as_str()), candidate.name, candidate.kind);
        }
    }
}

/// Prints a warning on standard error.
pub fn warn(message: impl fmt::Display) {
    eprintln!("tessera: warning: {}", single_line(&message.to_string()));
}

/// Prints an informational line on standard error (standard output is kept for results).
pub fn note(message: impl fmt::Display) {
    eprintln!("{message}");
}

/// Prints a result on standard output.
pub fn output(text: impl fmt::Display) {
    println!("{text}");
}

/// Prints text on standard output as it is (no newline added).
pub fn output_raw(text: &str) {
    print!("{text}");
}

/// The first 8 characters of a token id: enough to pick it in a query.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn single_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The vault passphrase: from the environment, else prompted on the terminal, else none.
pub fn passphrase() -> Option<SecretString> {
    secret(PASSPHRASE_ENV, "Vault passphrase: ")
}

/// The answer PIN: from the environment, else prompted on the terminal, else none.
pub fn pin() -> Option<SecretString> {
    secret(PIN_ENV, "PIN: ")
}

fn secret(env: &str, prompt: &str) -> Option<SecretString> {
    if let Ok(value) = std::env::var(env) {
        return Some(SecretString::new(value));
    }
    if !io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(prompt).ok().map(SecretString::new)
}

/// A secret line: typed without echo on a terminal, else read from standard input (scripts).
pub fn hidden_line(prompt: &str) -> Result<Option<SecretString>, Failure> {
    if io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).map(|text| Some(SecretString::new(text))).map_err(
            |source| Failure::File { action: "read the secret from", path: "/dev/tty".into(), source },
        );
    }
    let line = read_line(prompt)?;
    Ok(Some(SecretString::new(line.trim_end_matches(['\r', '\n']).to_owned())))
}

/// A new secret (`what`: "passphrase", "PIN"): from `env`, else prompted twice on the terminal.
pub fn new_secret(env: &str, what: &str) -> Result<SecretString, Failure> {
    if let Ok(value) = std::env::var(env) {
        return Ok(SecretString::new(value));
    }
    if !io::stdin().is_terminal() {
        return Err(Failure::Usage(format!("no terminal to ask for the new {what}; set {env}")));
    }
    let read = |prompt: String| {
        rpassword::prompt_password(prompt).map(SecretString::new).map_err(|source| Failure::File {
            action: "read the new secret from",
            path: "/dev/tty".into(),
            source,
        })
    };
    let first = read(format!("New {what}: "))?;
    let second = read(format!("Repeat the {what}: "))?;
    if first != second {
        return Err(Failure::Usage(format!("the {what}s do not match")));
    }
    Ok(first)
}

/// Asks a yes/no question at the terminal. Without a terminal there is nobody to ask, so the
/// answer is an error telling the caller to pass `--yes`.
pub fn confirm(question: &str) -> Result<bool, Failure> {
    if !io::stdin().is_terminal() {
        return Err(Failure::Usage("no terminal to confirm on; pass --yes to confirm from a script".into()));
    }
    let answer = read_line(&format!("{question} [y/N] "))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Shows `prompt` on standard error (on a terminal only: a script's input needs none) and reads
/// one line of standard input.
pub fn read_line(prompt: &str) -> Result<String, Failure> {
    if io::stdin().is_terminal() {
        eprint!("{prompt}");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).map_err(|source| Failure::File {
        action: "read the answer from",
        path: "stdin".into(),
        source,
    })?;
    Ok(line)
}

/// Reads a secret value given as an argument, or standard input's first line when it is `-`.
/// An argument gets a warning: other users' `ps` and the shell history can see it.
pub fn argument_or_stdin(value: &str) -> Result<SecretString, Failure> {
    if value != "-" {
        warn(
            "the secret was given on the command line, where `ps` and shell history can see it; pass - to read it from standard input",
        );
        return Ok(SecretString::new(value.to_owned()));
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).map_err(|source| Failure::File {
        action: "read",
        path: "standard input".into(),
        source,
    })?;
    let trimmed = SecretString::new(line.trim().to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    Ok(trimmed)
}

/// Reads a whole text file (or standard input for `-`), at most `limit` bytes. The buffer grows
/// by copying into a fresh allocation and wiping the old one, since import files carry seeds.
pub fn read_text(path: &Path, limit: u64) -> Result<SecretString, Failure> {
    let failure = |source| Failure::File { action: "read", path: path.to_path_buf(), source };
    let bytes = if path == Path::new("-") {
        read_wiping(io::stdin().lock(), limit).map_err(failure)?
    } else {
        read_wiping(std::fs::File::open(path).map_err(failure)?, limit).map_err(failure)?
    };
    let Some(bytes) = bytes else {
        return Err(Failure::Usage(format!("{} is larger than {limit} bytes", path.display())));
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(SecretString::new(text.to_owned())),
        Err(_) => Err(Failure::Usage(format!("{} is not UTF-8 text", path.display()))),
    }
}

/// Reads everything from `reader` into zeroizing memory; `None` when it exceeds `limit` bytes.
fn read_wiping(mut reader: impl Read, limit: u64) -> io::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let mut buffer = zeroize::Zeroizing::new(Vec::with_capacity(64 * 1024));
    let mut chunk = zeroize::Zeroizing::new([0u8; 8192]);
    loop {
        let read = reader.read(chunk.as_mut())?;
        if read == 0 {
            return Ok(Some(buffer));
        }
        if (buffer.len() + read) as u64 > limit {
            return Ok(None);
        }
        if buffer.len() + read > buffer.capacity() {
            let mut larger = zeroize::Zeroizing::new(Vec::with_capacity(buffer.capacity() * 2 + read));
            larger.extend_from_slice(&buffer);
            buffer = larger;
        }
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
    }
}

/// Writes a new file readable only by its owner. Refuses to replace an existing file.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    let failure = |source| Failure::File { action: "write", path: path.to_path_buf(), source };
    let mut file = private_file_options().write(true).create_new(true).open(path).map_err(failure)?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(failure)
}
