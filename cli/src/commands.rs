//! One function per command: parse what the command line gave, call the core, print the result.

use std::path::{Path, PathBuf};

use tessera_core::otp::{Algorithm, OtpMethod, unix_now};
use tessera_core::otpauth::{self, ManualEntry, OtpAuth, ParsedUri};
use tessera_core::qr;
use tessera_core::secret::SecretString;
use tessera_core::transfer;
use tessera_core::vault::{
    KdfParams, SlotKindName, Token, TokenEdit, TokenError, TokenInfo, UnlockedVault, Vault, VaultError,
    VaultStore,
};
use tessera_platform::{OsKeyStore, default_vault_path};

use crate::terminal::{self, Failure, NEW_PASSPHRASE_ENV, PIN_ENV, note, output, short_id, warn};
use crate::{AddArgs, Cli, Command, PinCommand, PushCommand, SlotsCommand};

/// Largest import file read.
const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let path = match cli.vault {
        Some(path) => path,
        None => default_vault_path().ok_or_else(|| {
            Failure::Usage("no home directory to keep the vault in; pass --vault PATH".into())
        })?,
    };
    let store = VaultStore::new(path);
    match cli.command {
        Command::Init { passphrase, no_keystore } => init(&store, passphrase, no_keystore),
        Command::Slots(SlotsCommand::List) => list_slots(&store),
        Command::Scan { list: true, .. } => crate::scan::list_cameras(),
        Command::Scan { index, frames, kind, timeout, list: false, .. } => {
            let source = match &frames {
                Some(dir) => crate::scan::Source::Frames(dir),
                None => crate::scan::Source::Camera(index),
            };
            let timeout = timeout.map(std::time::Duration::from_secs);
            crate::scan::scan(source, crate::scan::Kind::parse(&kind), timeout)
        }
        command => {
            let vault = unlock(&store)?;
            match command {
                Command::Add(args) => add(&vault, args),
                Command::List { json } => list(&vault, json),
                Command::Code { query, at } => code(&vault, &query, at),
                Command::Remove { query, yes } => remove(&vault, &query, yes),
                Command::Rename { query, label, issuer, group } => {
                    rename(&vault, &query, label, issuer, group)
                }
                Command::ShowQr { query, png, svg } => show_qr(&vault, &query, png, svg),
                Command::Export { output, .. } => export(&vault, output),
                Command::Import { otpauth } => import(&vault, &otpauth),
                Command::Slots(command) => slots(&vault, command),
                Command::Enroll { link, name, yes, insecure_http } => {
                    crate::push::enroll(&vault, &link, name, yes, insecure_http)
                }
                Command::Signin { url, username, name, insecure_http } => {
                    crate::signin::signin(&vault, &url, username, name, insecure_http)
                }
                Command::Push(PushCommand::Listen { json, auto_deny, count }) => {
                    crate::push::listen(&vault, json, auto_deny, count)
                }
                Command::Push(PushCommand::Approve { transaction_id, number }) => {
                    crate::push::approve(&vault, &transaction_id, number)
                }
                Command::Push(PushCommand::Deny { transaction_id, reason }) => {
                    crate::push::deny(&vault, &transaction_id, &reason)
                }
                Command::Push(PushCommand::Pin(PinCommand::Set)) => crate::push::set_pin(&vault),
                Command::Push(PushCommand::Pin(PinCommand::Clear)) => crate::push::clear_pin(&vault),
                Command::Oneswipe { query, png, text, valid_for } => {
                    let output = match (png, text) {
                        (Some(path), _) => crate::oneswipe::Output::Png(path),
                        (None, true) => crate::oneswipe::Output::Text,
                        (None, false) => crate::oneswipe::Output::Terminal,
                    };
                    crate::oneswipe::oneswipe(&vault, query.as_deref(), output, valid_for)
                }
                Command::Init { .. } | Command::Scan { .. } => {
                    Err(Failure::Usage("this command does not open the vault".into()))
                }
            }
        }
    }
}

/// The answer PIN, asked for only when `contents` has one and is not making attempts wait.
pub(crate) fn pin_if_set(contents: &Vault) -> Result<Option<SecretString>, Failure> {
    if !contents.answer_pin_needed(unix_now())? {
        return Ok(None);
    }
    terminal::pin().map(Some).ok_or_else(|| {
        Failure::Usage(format!(
            "this vault asks for its PIN before answering login requests; run in a terminal or set {PIN_ENV}"
        ))
    })
}

/// Asks for and checks the answer PIN when the vault has one. Every attempt is saved, wrong
/// ones included, so the limit on wrong PINs holds across runs.
pub(crate) fn check_pin(vault: &UnlockedVault, contents: &Vault) -> Result<(), Failure> {
    let Some(pin) = pin_if_set(contents)? else {
        return Ok(());
    };
    Ok(vault.update_behind_pin(Some(&pin), unix_now(), |_| Ok(()))?)
}

fn unlock(store: &VaultStore) -> Result<UnlockedVault, Failure> {
    let keystore = OsKeyStore::from_environment();
    Ok(store.unlock_any(Some(&keystore), terminal::passphrase)?)
}

fn init(store: &VaultStore, with_passphrase: bool, no_keystore: bool) -> Result<(), Failure> {
    if store.exists() {
        return Err(VaultError::AlreadyExists(store.path().to_path_buf()).into());
    }
    let passphrase = if with_passphrase {
        Some(terminal::new_secret(terminal::PASSPHRASE_ENV, "passphrase")?)
    } else {
        None
    };
    let keystore = OsKeyStore::from_environment();
    store
        .create((!no_keystore).then_some(&keystore as _), passphrase.as_ref().map(|p| (p, KdfParams::DEFAULT)))
        .map_err(|error| match error {
            VaultError::KeyStore(error) => Failure::Usage(format!(
                "{error} (to protect the vault with a passphrase only: tessera init --passphrase --no-keystore)"
            )),
            other => other.into(),
        })?;
    let slots = match (no_keystore, with_passphrase) {
        (false, true) => "the OS key store and a passphrase",
        (false, false) => "the OS key store",
        (true, _) => "a passphrase",
    };
    note(format!("Created a vault at {}, unlocked by {slots}.", store.path().display()));
    Ok(())
}

fn add(vault: &UnlockedVault, args: AddArgs) -> Result<(), Failure> {
    let tokens: Vec<OtpAuth> = if let Some(uri) = &args.uri {
        let uri = terminal::argument_or_stdin(uri)?;
        vec![parsed_with_warnings(uri.expose())?]
    } else if let Some(image) = &args.qr {
        tokens_from_qr(image)?
    } else if let Some(secret) = &args.secret {
        vec![token_by_hand(&args, secret)?]
    } else {
        return Err(Failure::Usage("give an otpauth:// URI, --qr IMAGE, or --secret with --label".into()));
    };
    let added_at = unix_now();
    let added = vault.update(|v| {
        tokens
            .into_iter()
            .map(|otp| {
                v.add(otp, args.group.clone(), added_at)
                    .map(|t| (t.id().clone(), t.display_name(), kind_of(t)))
            })
            .collect::<Result<Vec<_>, TokenError>>()
            .map_err(Failure::from)
    })?;
    for (id, name, kind) in added {
        note(format!("Added {name} ({kind}, id {})", short_id(id.as_str())));
    }
    Ok(())
}

fn parsed_with_warnings(uri: &str) -> Result<OtpAuth, Failure> {
    Ok(with_warnings(OtpAuth::parse(uri)?))
}

fn tokens_from_qr(image: &Path) -> Result<Vec<OtpAuth>, Failure> {
    let texts = qr::decode_image_file(image)?;
    let parsed = otpauth::tokens_from_qr_texts(&texts).map_err(|error| match error {
        otpauth::UriError::NoQrCode => Failure::Usage(format!("no QR code found in {}", image.display())),
        error => Failure::Usage(format!("the QR code in {} is not a token: {error}", image.display())),
    })?;
    Ok(parsed.into_iter().map(with_warnings).collect())
}

fn with_warnings(parsed: ParsedUri) -> OtpAuth {
    parsed.warnings.iter().for_each(warn);
    parsed.otp
}

fn token_by_hand(args: &AddArgs, secret: &str) -> Result<OtpAuth, Failure> {
    let kind = match (args.steam, args.hotp) {
        (true, _) => "steam",
        (false, true) => "hotp",
        (false, false) => "totp",
    };
    let entry = ManualEntry {
        issuer: args.issuer.clone(),
        label: args.label.clone().unwrap_or_default(),
        secret: terminal::argument_or_stdin(secret)?,
        kind: kind.into(),
        algorithm: args.algorithm.clone(),
        digits: args.digits,
        period: args.period,
        counter: args.counter,
    };
    Ok(with_warnings(entry.into_token()?))
}

pub(crate) fn kind_of(token: &Token) -> String {
    if let Some(push) = token.push() {
        return format!("push ({})", push.serial);
    }
    match token.method() {
        OtpMethod::Totp { algorithm, digits, period } => {
            format!("totp {}s {} digits{}", period.get(), digits.get(), non_default_algorithm(*algorithm))
        }
        OtpMethod::Hotp { algorithm, digits, .. } => {
            format!("hotp {} digits{}", digits.get(), non_default_algorithm(*algorithm))
        }
        OtpMethod::Steam { .. } => "steam".into(),
    }
}

fn non_default_algorithm(algorithm: Algorithm) -> String {
    if algorithm == Algorithm::Sha1 { String::new() } else { format!(" {algorithm}") }
}

fn list(vault: &UnlockedVault, json: bool) -> Result<(), Failure> {
    let contents = vault.read()?;
    if json {
        let listing: Vec<_> = contents.tokens().iter().map(TokenInfo::of).collect();
        output(serde_json::to_string_pretty(&listing).map_err(|e| Failure::Usage(e.to_string()))?);
        return Ok(());
    }
    if contents.is_empty() {
        note("The vault is empty. Add a token with `tessera add`.");
        return Ok(());
    }
    let rows: Vec<[String; 5]> = contents
        .tokens()
        .iter()
        .map(|t| {
            [
                short_id(t.id().as_str()).to_owned(),
                t.issuer().unwrap_or("-").to_owned(),
                t.label().to_owned(),
                kind_of(t),
                t.group().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    let header = ["ID", "ISSUER", "LABEL", "KIND", "GROUP"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> =
            row.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        output(line.join("  ").trim_end());
    }
    Ok(())
}

fn code(vault: &UnlockedVault, query: &str, at: Option<u64>) -> Result<(), Failure> {
    let contents = vault.read()?;
    if contents.pin_guards(contents.resolve(query)?) {
        check_pin(vault, &contents)?;
    }
    if let Some(time) = at {
        let token = contents.resolve(query)?;
        if token.method().period().is_none() {
            return Err(Failure::Usage(
                "--at applies to time-based tokens; HOTP codes follow the counter".into(),
            ));
        }
        output(token.peek_code(time).expose());
        return Ok(());
    }
    let time = unix_now();
    let (code, remaining) = vault.update(|v| {
        let token = v.resolve(query)?;
        let (id, remaining) =
            (token.id().clone(), token.method().period().map(|p| p.seconds_remaining(time)));
        Ok::<_, Failure>((v.take_code(&id, time)?, remaining))
    })?;
    output(code.expose());
    if let (Some(seconds), true) = (remaining, std::io::IsTerminal::is_terminal(&std::io::stderr())) {
        note(format!("valid for {seconds} more second{}", if seconds == 1 { "" } else { "s" }));
    }
    Ok(())
}

fn remove(vault: &UnlockedVault, query: &str, yes: bool) -> Result<(), Failure> {
    let contents = vault.read()?;
    let token = contents.resolve(query)?;
    let (id, name) = (token.id().clone(), token.display_name());
    if !yes
        && !terminal::confirm(&format!(
            "Remove {name}? Its codes cannot be recovered without the original QR code."
        ))?
    {
        note("Nothing removed.");
        return Ok(());
    }
    vault.update(|v| v.remove(&id).map_err(Failure::from))?;
    note(format!("Removed {name}."));
    Ok(())
}

fn rename(
    vault: &UnlockedVault,
    query: &str,
    label: Option<String>,
    issuer: Option<String>,
    group: Option<String>,
) -> Result<(), Failure> {
    if label.is_none() && issuer.is_none() && group.is_none() {
        return Err(Failure::Usage("give a new label, --issuer or --group".into()));
    }
    let edit = TokenEdit { issuer: issuer.map(Some), label, group: group.map(Some), icon: None };
    let name = vault.update(|v| {
        let id = v.resolve(query)?.id().clone();
        Ok::<_, Failure>(v.edit(&id, edit)?.display_name())
    })?;
    note(format!("Renamed to {name}."));
    Ok(())
}

fn show_qr(
    vault: &UnlockedVault,
    query: &str,
    png: Option<PathBuf>,
    svg: Option<PathBuf>,
) -> Result<(), Failure> {
    let contents = vault.read()?;
    let token = contents.resolve(query)?;
    if contents.pin_guards(token) {
        check_pin(vault, &contents)?;
    }
    let uri = token.otp().to_uri();
    warn("this QR code contains the token's secret: anyone who sees it can make your codes");
    if png.is_none() && svg.is_none() {
        output(qr::render_terminal(uri.expose())?);
        output(token.display_name());
    }
    if let Some(path) = png {
        terminal::write_private_file(&path, &qr::render_png(uri.expose(), 8)?)?;
        note(format!("Wrote {}", path.display()));
    }
    if let Some(path) = svg {
        terminal::write_private_file(&path, qr::render_svg(uri.expose())?.as_bytes())?;
        note(format!("Wrote {}", path.display()));
    }
    Ok(())
}

fn export(vault: &UnlockedVault, path: Option<PathBuf>) -> Result<(), Failure> {
    let contents = vault.read()?;
    if contents.tokens().iter().any(|token| contents.pin_guards(token)) {
        check_pin(vault, &contents)?;
    }
    let text = transfer::export_otpauth(&contents);
    warn("the export contains every token's secret in clear text; keep it safe and delete it after use");
    match path {
        Some(path) => {
            terminal::write_private_file(&path, text.expose().as_bytes())?;
            note(format!("Exported {} tokens to {}", contents.len(), path.display()));
        }
        None => terminal::output_raw(text.expose()),
    }
    Ok(())
}

fn import(vault: &UnlockedVault, path: &Path) -> Result<(), Failure> {
    let text = terminal::read_text(path, MAX_IMPORT_BYTES)?;
    let lines = transfer::parse_otpauth_lines(text.expose())?;
    for line in &lines {
        for warning in &line.warnings {
            warn(format!("line {}: {warning}", line.line));
        }
    }
    let imported_at = unix_now();
    let report = vault.update(|v| transfer::import_into(v, lines, imported_at).map_err(Failure::from))?;
    for line in &report.duplicates {
        note(format!("line {line}: already in the vault, skipped"));
    }
    note(format!(
        "Imported {} token{} ({} duplicate{} skipped).",
        report.added.len(),
        if report.added.len() == 1 { "" } else { "s" },
        report.duplicates.len(),
        if report.duplicates.len() == 1 { "" } else { "s" },
    ));
    Ok(())
}

fn list_slots(store: &VaultStore) -> Result<(), Failure> {
    for slot in store.slots()? {
        output(format!("{}  {}", slot.id, slot.kind.as_str()));
    }
    Ok(())
}

fn slots(vault: &UnlockedVault, command: SlotsCommand) -> Result<(), Failure> {
    let keystore = OsKeyStore::from_environment();
    match command {
        SlotsCommand::List => return list_slots(vault.store()),
        SlotsCommand::SetPassphrase => {
            let passphrase = terminal::new_secret(NEW_PASSPHRASE_ENV, "passphrase")?;
            vault.set_passphrase(&passphrase, KdfParams::DEFAULT)?;
            note("The vault's passphrase is set.");
        }
        SlotsCommand::AddKeystore => {
            vault.set_keystore_slot(&keystore)?;
            note("The vault now opens with the OS key store.");
        }
        SlotsCommand::Remove { kind } => {
            let kind = if kind == "passphrase" { SlotKindName::Passphrase } else { SlotKindName::OsKeystore };
            vault.remove_slots(kind, &keystore)?;
            note(format!("Removed the {} slot.", kind.as_str()));
        }
    }
    Ok(())
}
