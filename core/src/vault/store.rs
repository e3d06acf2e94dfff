//! The vault file on disk: creation, unlock, and updates that are atomic and serialized.
//!
//! - Every change is a transaction: take an exclusive lock on `<vault>.lock`, read and decrypt the
//!   current file, apply the change, encrypt with a fresh nonce, write a temporary file in the same
//!   directory, fsync it, rename it over the vault, fsync the directory. A crash at any instant
//!   leaves the old file or the new one, never a mix; two processes never interleave.
//! - A file that fails to parse or authenticate is reported and never written over.
//! - Reads take a shared lock, so they never see a writer's half-finished work even on platforms
//!   where rename is not atomic.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::envelope::{Header, KdfParams, MasterKey, Sealed, SlotKind, seal};
use super::keystore::KeyStore;
use super::model::Vault;
use super::{FormatError, VaultError};
use crate::secret::SecretString;

/// Largest vault file read, far above what 10,000 tokens need.
const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// What can unlock a vault.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The platform key store holding the OS key store slot's key.
    KeyStore(&'a dyn KeyStore),
    /// A passphrase for a passphrase slot.
    Passphrase(&'a SecretString),
}

/// The kind of a key slot, as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKindName {
    /// Key kept in the OS key store.
    OsKeystore,
    /// Key derived from a passphrase.
    Passphrase,
}

impl SlotKindName {
    /// `os-keystore` or `passphrase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OsKeystore => "os-keystore",
            Self::Passphrase => "passphrase",
        }
    }

    fn of(kind: &SlotKind) -> Self {
        match kind {
            SlotKind::OsKeystore { .. } => Self::OsKeystore,
            SlotKind::Passphrase { .. } => Self::Passphrase,
        }
    }
}

/// A key slot, without its key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Slot id.
    pub id: String,
    /// Slot kind.
    pub kind: SlotKindName,
}

/// A vault file at a path (which may not exist yet).
#[derive(Debug, Clone)]
pub struct VaultStore {
    path: PathBuf,
}

impl VaultStore {
    /// The vault at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when a file exists at the path.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Creates a new, empty vault with the requested slots. Fails if a file exists at the path.
    ///
    /// With a key store, a fresh slot key is stored in it; if writing the vault then fails,
    /// that key store entry is removed again.
    pub fn create(
        &self,
        keystore: Option<&dyn KeyStore>,
        passphrase: Option<(&SecretString, KdfParams)>,
    ) -> Result<UnlockedVault, VaultError> {
        if keystore.is_none() && passphrase.is_none() {
            return Err(VaultError::NoSlotRequested);
        }
        self.create_parent_dir()?;
        let _lock = self.lock(LockMode::Exclusive)?;
        if self.exists() {
            return Err(VaultError::AlreadyExists(self.path.clone()));
        }
        let master = MasterKey::random()?;
        let mut header = Header::new()?;
        if let Some((passphrase, kdf)) = passphrase {
            header.add_passphrase_slot(&master, passphrase, kdf)?;
        }
        let keystore_account = match keystore {
            Some(keystore) => Some((keystore, header.add_keystore_slot(&master, keystore)?)),
            None => None,
        };
        let written = seal(&header, &Vault::new(), &master).and_then(|bytes| self.write_file(&bytes, false));
        if let (Err(_), Some((keystore, account))) = (&written, &keystore_account) {
            let _ = keystore.delete(account);
        }
        written?;
        Ok(UnlockedVault { store: self.clone(), vault_id: header.vault_id, master })
    }

    /// The vault's key slots, read from its header without unlocking it.
    pub fn slots(&self) -> Result<Vec<SlotInfo>, VaultError> {
        let bytes = self.read_locked()?;
        let sealed = Sealed::parse(&bytes)?;
        Ok(sealed
            .header
            .slots
            .iter()
            .map(|s| SlotInfo { id: s.id.clone(), kind: SlotKindName::of(&s.kind) })
            .collect())
    }

    /// Unlocks the vault with a credential: the slot key unwraps the master key, whose
    /// authentication tag proves it is the right one.
    pub fn unlock(&self, credential: Credential<'_>) -> Result<UnlockedVault, VaultError> {
        let bytes = self.read_locked()?;
        let header = Sealed::parse(&bytes)?.header;
        let master = match credential {
            Credential::KeyStore(keystore) => header.unlock_with_keystore(keystore)?,
            Credential::Passphrase(passphrase) => header.unlock_with_passphrase(passphrase)?,
        };
        Ok(UnlockedVault { store: self.clone(), vault_id: header.vault_id, master })
    }

    /// Proves again, before something sensitive (showing a seed), that the user may open this
    /// vault: by its passphrase when it has a passphrase slot (the OS key store would answer
    /// without the user), else by the OS key store.
    pub fn reauthenticate(
        &self,
        keystore: &dyn KeyStore,
        passphrase: Option<&SecretString>,
    ) -> Result<(), VaultError> {
        let bytes = self.read_locked()?;
        let header = Sealed::parse(&bytes)?.header;
        if header.slots.iter().any(|s| SlotKindName::of(&s.kind) == SlotKindName::Passphrase) {
            let passphrase = passphrase.ok_or(VaultError::PassphraseRequired { keystore_error: None })?;
            header.unlock_with_passphrase(passphrase).map(drop)
        } else {
            header.unlock_with_keystore(keystore).map(drop)
        }
    }

    /// Unlocks with whatever works, in the order people expect: the OS key store first (no
    /// prompt) when the vault has such a slot and a key store is given, then the passphrase,
    /// which `passphrase` is asked for only if it is needed. No lock is held while asking.
    pub fn unlock_any(
        &self,
        keystore: Option<&dyn KeyStore>,
        passphrase: impl FnOnce() -> Option<SecretString>,
    ) -> Result<UnlockedVault, VaultError> {
        let bytes = self.read_locked()?;
        let header = Sealed::parse(&bytes)?.header;
        let has = |kind| header.slots.iter().any(|s| SlotKindName::of(&s.kind) == kind);
        let mut keystore_error = None;
        if let (true, Some(keystore)) = (has(SlotKindName::OsKeystore), keystore) {
            match header.unlock_with_keystore(keystore) {
                Ok(master) => {
                    return Ok(UnlockedVault { store: self.clone(), vault_id: header.vault_id, master });
                }
                Err(e) => keystore_error = Some(e),
            }
        }
        if !has(SlotKindName::Passphrase) {
            return Err(keystore_error.unwrap_or(VaultError::NoSlotOfKind("OS key store")));
        }
        match passphrase() {
            Some(passphrase) => {
                let master = header.unlock_with_passphrase(&passphrase)?;
                Ok(UnlockedVault { store: self.clone(), vault_id: header.vault_id, master })
            }
            None => Err(VaultError::PassphraseRequired { keystore_error: keystore_error.map(Box::new) }),
        }
    }

    /// The whole file, read under a shared lock.
    fn read_locked(&self) -> Result<Vec<u8>, VaultError> {
        self.ensure_exists()?;
        let _lock = self.lock(LockMode::Shared)?;
        self.read_file()
    }

    /// Fails early for a missing vault, so that reading one never leaves a lock file behind.
    fn ensure_exists(&self) -> Result<(), VaultError> {
        if self.exists() { Ok(()) } else { Err(VaultError::NotFound(self.path.clone())) }
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".lock");
        self.path.with_file_name(name)
    }

    fn lock(&self, mode: LockMode) -> Result<File, VaultError> {
        let path = self.lock_path();
        let file =
            private_file_options().read(true).write(true).create(true).truncate(false).open(&path).map_err(
                |source| VaultError::Io { action: "open the lock file", path: path.clone(), source },
            )?;
        match mode {
            LockMode::Shared => file.lock_shared(),
            LockMode::Exclusive => file.lock(),
        }
        .map_err(|source| VaultError::Io { action: "lock", path, source })?;
        Ok(file)
    }

    fn read_file(&self) -> Result<Vec<u8>, VaultError> {
        let file = File::open(&self.path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => VaultError::NotFound(self.path.clone()),
            _ => VaultError::Io { action: "open", path: self.path.clone(), source },
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(|source| VaultError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        })?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(FormatError::TooLarge.into());
        }
        Ok(bytes)
    }

    /// Writes `bytes` to a temporary file beside the vault, syncs it, and renames it into place
    /// (refusing to replace an existing file unless `replace`), then syncs the directory.
    fn write_file(&self, bytes: &[u8], replace: bool) -> Result<(), VaultError> {
        let dir = self.dir();
        let io_error = |action| move |source| VaultError::Io { action, path: self.path.clone(), source };
        let mut temp = tempfile::Builder::new()
            .prefix(".tessera-vault-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_error("create a temporary file beside"))?;
        temp.write_all(bytes).map_err(io_error("write a temporary file beside"))?;
        temp.as_file().sync_all().map_err(io_error("sync a temporary file beside"))?;
        let persisted = if replace { temp.persist(&self.path) } else { temp.persist_noclobber(&self.path) };
        persisted.map_err(|e| match e.error.kind() {
            io::ErrorKind::AlreadyExists => VaultError::AlreadyExists(self.path.clone()),
            _ => VaultError::Io { action: "replace", path: self.path.clone(), source: e.error },
        })?;
        sync_dir(&dir).map_err(io_error("sync the directory of"))
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn create_parent_dir(&self) -> Result<(), VaultError> {
        let dir = self.dir();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|source| VaultError::Io {
            action: "create the directory",
            path: dir,
            source,
        })
    }
}

/// An unlocked vault: holds the master key (wiped on drop) and reads or changes the file.
pub struct UnlockedVault {
    store: VaultStore,
    vault_id: String,
    master: MasterKey,
}

impl std::fmt::Debug for UnlockedVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedVault")
            .field("path", &self.store.path)
            .field("master", &"[REDACTED]")
            .finish()
    }
}

impl UnlockedVault {
    /// The store this vault lives in.
    pub fn store(&self) -> &VaultStore {
        &self.store
    }

    /// Reads and decrypts the current contents.
    pub fn read(&self) -> Result<Vault, VaultError> {
        let _lock = self.store.lock(LockMode::Shared)?;
        let bytes = self.store.read_file()?;
        let sealed = self.parse_own(&bytes)?;
        Ok(sealed.open(&self.master)?)
    }

    /// Applies `change` to the current contents and writes the result, as one transaction.
    /// If `change` fails, nothing is written and its error is returned.
    pub fn update<R, E: From<VaultError>>(
        &self,
        change: impl FnOnce(&mut Vault) -> Result<R, E>,
    ) -> Result<R, E> {
        self.transact(|_, vault| change(vault))
    }

    /// [`UnlockedVault::update`] behind the answer PIN (`pin` may be `None` when the vault has
    /// none): `change` runs only after a right PIN. The attempt is written right or wrong, so the
    /// limit on wrong PINs holds across runs; if `change` fails, the attempt is all that is written.
    pub fn update_behind_pin<R>(
        &self,
        pin: Option<&SecretString>,
        now: u64,
        change: impl FnOnce(&mut Vault) -> Result<R, VaultError>,
    ) -> Result<R, VaultError> {
        self.update(|vault| {
            if let Err(refused) = vault.check_answer_pin(pin, now) {
                return Ok(Err(refused.into()));
            }
            let mut changed = vault.clone();
            let result = change(&mut changed);
            if result.is_ok() {
                *vault = changed;
            }
            Ok::<_, VaultError>(result)
        })?
    }

    /// The vault's key slots.
    pub fn slots(&self) -> Result<Vec<SlotInfo>, VaultError> {
        self.store.slots()
    }

    /// Sets the passphrase: replaces any passphrase slot with a new one.
    pub fn set_passphrase(&self, passphrase: &SecretString, kdf: KdfParams) -> Result<(), VaultError> {
        self.transact(|header, _| {
            header.slots.retain(|s| !matches!(s.kind, SlotKind::Passphrase { .. }));
            header.add_passphrase_slot(&self.master, passphrase, kdf)
        })
    }

    /// Adds an OS key store slot, replacing any existing one. Old key store entries are deleted
    /// once the vault no longer refers to them.
    pub fn set_keystore_slot(&self, keystore: &dyn KeyStore) -> Result<(), VaultError> {
        let mut new_account = None;
        let replaced = self.transact(|header, _| {
            let old = take_keystore_slots(header);
            new_account = Some(header.add_keystore_slot(&self.master, keystore)?);
            Ok(old)
        });
        match replaced {
            Ok(old_accounts) => {
                for account in old_accounts {
                    let _ = keystore.delete(&account);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(account) = new_account {
                    let _ = keystore.delete(&account);
                }
                Err(e)
            }
        }
    }

    /// Removes every slot of `kind`, refusing to remove the last way to unlock the vault. The
    /// key store entries of removed OS key store slots are deleted after the file is written.
    pub fn remove_slots(&self, kind: SlotKindName, keystore: &dyn KeyStore) -> Result<(), VaultError> {
        let removed_accounts = self.transact(|header, _| {
            let before = header.slots.len();
            let accounts = match kind {
                SlotKindName::OsKeystore => take_keystore_slots(header),
                SlotKindName::Passphrase => {
                    header.slots.retain(|s| !matches!(s.kind, SlotKind::Passphrase { .. }));
                    Vec::new()
                }
            };
            if header.slots.len() == before {
                return Err(VaultError::NoSlotOfKind(match kind {
                    SlotKindName::OsKeystore => "OS key store",
                    SlotKindName::Passphrase => "passphrase",
                }));
            }
            if header.slots.is_empty() {
                return Err(VaultError::LastSlot);
            }
            Ok(accounts)
        })?;
        for account in removed_accounts {
            let _ = keystore.delete(&account);
        }
        Ok(())
    }

    fn parse_own<'a>(&self, bytes: &'a [u8]) -> Result<Sealed<'a>, VaultError> {
        let sealed = Sealed::parse(bytes)?;
        if sealed.header.vault_id != self.vault_id {
            return Err(VaultError::Replaced);
        }
        Ok(sealed)
    }

    fn transact<R, E: From<VaultError>>(
        &self,
        change: impl FnOnce(&mut Header, &mut Vault) -> Result<R, E>,
    ) -> Result<R, E> {
        let _lock = self.store.lock(LockMode::Exclusive)?;
        let bytes = self.store.read_file()?;
        let sealed = self.parse_own(&bytes)?;
        let mut vault = sealed.open(&self.master).map_err(VaultError::from)?;
        let mut header = sealed.header;
        let result = change(&mut header, &mut vault)?;
        header.revision = header.revision.saturating_add(1);
        let sealed = seal(&header, &vault, &self.master)?;
        self.store.write_file(&sealed, true)?;
        Ok(result)
    }
}

fn take_keystore_slots(header: &mut Header) -> Vec<String> {
    let mut accounts = Vec::new();
    header.slots.retain(|s| match &s.kind {
        SlotKind::OsKeystore { account } => {
            accounts.push(account.clone());
            false
        }
        SlotKind::Passphrase { .. } => true,
    });
    accounts
}

enum LockMode {
    Shared,
    Exclusive,
}

/// Options that create files readable and writable only by their owner (mode 0600 on Unix; on
/// Windows a new file inherits the ACL of the per-user directory it is created in).
pub fn private_file_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::OtpMethod;
    use crate::otpauth::OtpAuth;
    use crate::secret::SecretBytes;
    use crate::vault::keystore::MemoryKeyStore;
    use crate::vault::model::TokenError;

    const TEST_KDF: KdfParams = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };

    fn otp(name: &str) -> OtpAuth {
        OtpAuth::new(
            Some("Test".into()),
            name.into(),
            SecretBytes::from_slice(name.as_bytes()),
            OtpMethod::default_totp(),
        )
        .unwrap()
    }

    fn passphrase() -> SecretString {
        SecretString::new("a long test passphrase".into())
    }

    #[test]
    fn create_unlock_update_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("nested/vault.tessera"));
        let keystore = MemoryKeyStore::new();
        let pass = passphrase();
        let created = store.create(Some(&keystore), Some((&pass, TEST_KDF))).unwrap();
        created.update(|v| v.add(otp("alice"), None, 1).map(|_| ()).map_err(VaultError::from)).unwrap();

        for credential in [Credential::KeyStore(&keystore), Credential::Passphrase(&pass)] {
            let vault = store.unlock(credential).unwrap().read().unwrap();
            assert_eq!(vault.tokens()[0].label(), "alice");
        }
        let kinds: Vec<_> = store.slots().unwrap().into_iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [SlotKindName::Passphrase, SlotKindName::OsKeystore]);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("d/vault.tessera"));
        store.create(Some(&MemoryKeyStore::new()), None).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&store.lock_path()), 0o600);
        assert_eq!(mode(&dir.path().join("d")), 0o700);
    }

    #[test]
    fn create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.tessera");
        fs::write(&path, b"precious").unwrap();
        let keystore = MemoryKeyStore::new();
        let result = VaultStore::new(&path).create(Some(&keystore), None);
        assert!(matches!(result, Err(VaultError::AlreadyExists(_))));
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        assert!(keystore.is_empty(), "no key store entry is left behind");
    }

    #[test]
    fn failed_changes_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let vault = store.create(Some(&MemoryKeyStore::new()), None).unwrap();
        vault.update(|v| v.add(otp("alice"), None, 1).map(|_| ()).map_err(VaultError::from)).unwrap();
        let before = fs::read(store.path()).unwrap();
        let result = vault.update(|v| v.add(otp("alice"), None, 2).map(|_| ()).map_err(VaultError::from));
        assert!(matches!(result, Err(VaultError::Token(TokenError::Duplicate(_)))));
        assert_eq!(fs::read(store.path()).unwrap(), before);
    }

    #[test]
    fn damaged_files_are_reported_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let keystore = MemoryKeyStore::new();
        let vault = store.create(Some(&keystore), None).unwrap();
        vault.update(|v| v.add(otp("alice"), None, 1).map(|_| ()).map_err(VaultError::from)).unwrap();
        let good = fs::read(store.path()).unwrap();

        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let truncated = good[..good.len() - 20].to_vec();
        for (bad, expected) in [(tampered, FormatError::Tampered), (truncated, FormatError::Tampered)] {
            fs::write(store.path(), &bad).unwrap();
            let result = vault.update(|v| v.add(otp("bob"), None, 2).map(|_| ()).map_err(VaultError::from));
            assert!(matches!(&result, Err(VaultError::Format(e)) if *e == expected), "{result:?}");
            assert_eq!(fs::read(store.path()).unwrap(), bad, "a damaged file is never rewritten");
        }
        fs::write(store.path(), b"not a vault at all").unwrap();
        assert!(matches!(
            store.unlock(Credential::KeyStore(&keystore)),
            Err(VaultError::Format(FormatError::NotAVault))
        ));
    }

    #[test]
    fn a_different_vault_at_the_path_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let first = VaultStore::new(dir.path().join("a.tessera"));
        let second = VaultStore::new(dir.path().join("b.tessera"));
        let keystore = MemoryKeyStore::new();
        let unlocked = first.create(Some(&keystore), None).unwrap();
        second.create(Some(&keystore), None).unwrap();
        fs::copy(second.path(), first.path()).unwrap();
        assert!(matches!(unlocked.read(), Err(VaultError::Replaced)));
    }

    #[test]
    fn slot_management() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let keystore = MemoryKeyStore::new();
        let vault = store.create(Some(&keystore), None).unwrap();
        assert!(matches!(vault.remove_slots(SlotKindName::OsKeystore, &keystore), Err(VaultError::LastSlot)));
        assert!(matches!(
            vault.remove_slots(SlotKindName::Passphrase, &keystore),
            Err(VaultError::NoSlotOfKind("passphrase"))
        ));

        let pass = passphrase();
        vault.set_passphrase(&pass, TEST_KDF).unwrap();
        vault.remove_slots(SlotKindName::OsKeystore, &keystore).unwrap();
        assert!(keystore.is_empty(), "the removed slot's key is deleted");
        assert!(matches!(store.unlock(Credential::KeyStore(&keystore)), Err(VaultError::NoSlotOfKind(_))));
        let reopened = store.unlock(Credential::Passphrase(&pass)).unwrap();

        let new_pass = SecretString::new("another long passphrase".into());
        reopened.set_passphrase(&new_pass, TEST_KDF).unwrap();
        assert!(matches!(store.unlock(Credential::Passphrase(&pass)), Err(VaultError::WrongPassphrase)));
        reopened.set_keystore_slot(&keystore).unwrap();
        reopened.set_keystore_slot(&keystore).unwrap();
        assert_eq!(keystore.len(), 1, "replacing the key store slot deletes the old entry");
        store.unlock(Credential::KeyStore(&keystore)).unwrap();
        store.unlock(Credential::Passphrase(&new_pass)).unwrap();
    }

    #[test]
    fn concurrent_writers_in_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let keystore = MemoryKeyStore::new();
        store.create(Some(&keystore), None).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = store.clone();
                let keystore = &keystore;
                scope.spawn(move || {
                    let vault = store.unlock(Credential::KeyStore(keystore)).unwrap();
                    for i in 0..10 {
                        vault
                            .update(|v| {
                                v.add(otp(&format!("t{t}-{i}")), None, 0)
                                    .map(|_| ())
                                    .map_err(VaultError::from)
                            })
                            .unwrap();
                    }
                });
            }
        });
        let vault = store.unlock(Credential::KeyStore(&keystore)).unwrap().read().unwrap();
        assert_eq!(vault.len(), 40);
    }

    #[test]
    fn unlock_any_prefers_the_keystore_and_asks_for_the_passphrase_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let keystore = MemoryKeyStore::new();
        let pass = passphrase();
        store.create(Some(&keystore), Some((&pass, TEST_KDF))).unwrap();

        let asked = std::cell::Cell::new(0);
        let ask = || {
            asked.set(asked.get() + 1);
            Some(pass.clone())
        };
        store.unlock_any(Some(&keystore), ask).unwrap();
        assert_eq!(asked.get(), 0, "the key store opened it without a prompt");

        let empty = MemoryKeyStore::new();
        store.unlock_any(Some(&empty), ask).unwrap();
        assert_eq!(asked.get(), 1);
        store.unlock_any(None, ask).unwrap();
        assert_eq!(asked.get(), 2);

        match store.unlock_any(Some(&empty), || None) {
            Err(VaultError::PassphraseRequired { keystore_error: Some(e) }) => {
                assert!(matches!(*e, VaultError::KeyStoreKeyMissing))
            }
            other => panic!("{other:?}"),
        }
        let wrong = || Some(SecretString::new("not the passphrase".into()));
        assert!(matches!(store.unlock_any(Some(&empty), wrong), Err(VaultError::WrongPassphrase)));
    }

    #[test]
    fn reauthentication_needs_the_passphrase_when_there_is_one_and_the_key_store_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let keystore = MemoryKeyStore::new();
        let both = VaultStore::new(dir.path().join("both.tessera"));
        both.create(Some(&keystore), Some((&passphrase(), TEST_KDF))).unwrap();
        assert!(
            matches!(both.reauthenticate(&keystore, None), Err(VaultError::PassphraseRequired { .. })),
            "the key store alone is not enough when there is a passphrase"
        );
        let wrong = SecretString::new("not the passphrase".into());
        assert!(matches!(both.reauthenticate(&keystore, Some(&wrong)), Err(VaultError::WrongPassphrase)));
        both.reauthenticate(&MemoryKeyStore::new(), Some(&passphrase())).unwrap();

        let keystore_only = VaultStore::new(dir.path().join("keystore.tessera"));
        keystore_only.create(Some(&keystore), None).unwrap();
        keystore_only.reauthenticate(&keystore, None).unwrap();
        assert!(matches!(
            keystore_only.reauthenticate(&MemoryKeyStore::new(), None),
            Err(VaultError::KeyStoreKeyMissing)
        ));
    }

    #[test]
    fn a_change_behind_the_pin_runs_after_a_right_pin_and_every_attempt_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let vault = store.create(Some(&MemoryKeyStore::new()), None).unwrap();
        let pin = SecretString::new("2468".into());
        vault.update(|v| v.set_answer_pin(None, &pin, 0).map_err(VaultError::from)).unwrap();
        let wrong = SecretString::new("1357".into());
        let before = vault.read().unwrap();
        let refused = vault.update_behind_pin(Some(&wrong), 0, |v| {
            v.add(otp("never"), None, 0).map(drop).map_err(VaultError::from)
        });
        assert!(matches!(refused, Err(VaultError::Pin(crate::vault::PinError::Wrong { .. }))));
        assert!(vault.read().unwrap().tokens().is_empty(), "a wrong PIN runs nothing");
        assert_ne!(vault.read().unwrap(), before, "the wrong attempt is written");
        let failed = vault.update_behind_pin(Some(&pin), 0, |v| {
            v.add(otp("half"), None, 0)?;
            Err::<(), _>(VaultError::Internal("fails after a change"))
        });
        assert!(matches!(failed, Err(VaultError::Internal(_))));
        assert!(vault.read().unwrap().tokens().is_empty(), "a failed change is not written");
        vault
            .update_behind_pin(Some(&pin), 0, |v| {
                v.add(otp("kept"), None, 0).map(drop).map_err(VaultError::from)
            })
            .unwrap();
        assert_eq!(vault.read().unwrap().tokens().len(), 1);
    }

    #[test]
    fn missing_vault_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("none.tessera"));
        assert!(matches!(
            store.unlock(Credential::KeyStore(&MemoryKeyStore::new())),
            Err(VaultError::NotFound(_))
        ));
        assert!(matches!(store.slots(), Err(VaultError::NotFound(_))));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is created by a failed open");
    }
}
