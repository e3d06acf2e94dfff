//! The vault file format: a versioned, self-describing AES-256-GCM envelope with key slots.
//!
//! ```text
//! magic  "\x89TSV\r\n\x1a\n"   8 bytes   (PNG-style: catches text-mode copies and truncation)
//! format version                u16 LE
//! header length                 u32 LE
//! header                        JSON: vault id, revision, key slots (no secrets in the clear)
//! nonce                         12 bytes, fresh for every write
//! ciphertext + tag              AES-256-GCM of the JSON contents, 16-byte tag
//! ```
//!
//! Everything before the ciphertext is the AEAD's associated data, so any change to the header
//! (a removed slot, an edited revision, a different KDF) makes the file fail to open. Replacing the
//! whole file with an older genuine copy is not detected: that needs state kept outside the file.
//!
//! Changing or removing a slot re-wraps the same master key, as LUKS and Aegis do: someone holding
//! an old copy of the file and the old passphrase can still derive the master key. To revoke a
//! leaked passphrase completely, export the tokens into a new vault.
//!
//! The contents are encrypted with a random 256-bit master key. Each key slot holds that master
//! key wrapped (AES-256-GCM) under its own slot key: the OS key store slot's key lives in the
//! platform key store, the passphrase slot's key is derived with Argon2id. This is the LUKS /
//! Aegis design: adding or removing a way to unlock never re-encrypts the tokens under a new key.

use std::io::Write;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keystore::KeyStore;
use super::model::Vault;
use super::{FormatError, VaultError};
use crate::secret::{SecretBytes, SecretString, fill_random};

/// First eight bytes of every vault file.
pub const MAGIC: [u8; 8] = *b"\x89TSV\r\n\x1a\n";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Shortest passphrase accepted for a passphrase slot, in characters (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

const PREFIX_LEN: usize = 8 + 2 + 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const MAX_HEADER_LEN: usize = 64 * 1024;
const MAX_SLOTS: usize = 16;
const MAX_PASSPHRASE_SLOTS_TRIED: usize = 2;
const SLOT_AAD_PREFIX: &[u8] = b"tessera/vault/slot/v1";

/// The vault's 256-bit content key. Never stored anywhere except wrapped in slots.
pub(crate) struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    pub(crate) fn random() -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut())?;
        Ok(Self(key))
    }
}

/// Argon2id cost parameters of a passphrase slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: above OWASP's Argon2id minimums (19 MiB × 2, 46 MiB × 1) and
    /// RFC 9106's second recommendation's memory, about 0.2 s on one core of a 2-vCPU machine.
    pub const DEFAULT: Self = Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 };

    /// Bounds accepted when reading a file, so a tampered header cannot ask for unbounded work.
    fn check(self) -> Result<argon2::Params, FormatError> {
        let in_range = (8 * 1024..=1024 * 1024).contains(&self.memory_kib)
            && (1..=10).contains(&self.iterations)
            && (1..=8).contains(&self.parallelism);
        if !in_range {
            return Err(FormatError::CorruptHeader("passphrase slot parameters are out of range".into()));
        }
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(KEY_LEN))
            .map_err(|e| FormatError::CorruptHeader(format!("passphrase slot parameters: {e}")))
    }
}

/// How a slot's key is obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotKind {
    /// The slot key is kept in the platform key store under `account`.
    OsKeystore {
        /// Key store account name (unique per vault and slot).
        account: String,
    },
    /// The slot key is derived from a passphrase with Argon2id.
    Passphrase {
        /// Argon2id costs.
        kdf: KdfParams,
        /// Random 16-byte salt.
        #[serde(with = "hex_bytes")]
        salt: Vec<u8>,
    },
}

/// A way to unlock the vault: the master key wrapped under one slot key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Random slot id.
    pub id: String,
    /// How the slot key is obtained.
    #[serde(flatten)]
    pub kind: SlotKind,
    #[serde(with = "hex_bytes")]
    nonce: Vec<u8>,
    #[serde(with = "hex_bytes")]
    wrapped_key: Vec<u8>,
}

/// The unencrypted (but authenticated) part of a vault file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Random id of this vault; names its key store entries.
    pub vault_id: String,
    /// Incremented on every write.
    pub revision: u64,
    /// Ways to unlock.
    pub slots: Vec<Slot>,
}

impl Header {
    pub(crate) fn new() -> Result<Self, VaultError> {
        Ok(Self { vault_id: random_hex(16)?, revision: 0, slots: Vec::new() })
    }

    /// Adds a passphrase slot for `master`.
    pub(crate) fn add_passphrase_slot(
        &mut self,
        master: &MasterKey,
        passphrase: &SecretString,
        kdf: KdfParams,
    ) -> Result<(), VaultError> {
        if passphrase.char_count() < MIN_PASSPHRASE_CHARS {
            return Err(VaultError::WeakPassphrase { min_chars: MIN_PASSPHRASE_CHARS });
        }
        let mut salt = vec![0u8; 16];
        fill_random(&mut salt)?;
        let kind = SlotKind::Passphrase { kdf, salt };
        let slot_key = derive_passphrase_key(&kind, passphrase)?;
        self.push_slot(master, kind, &slot_key)
    }

    /// Adds an OS key store slot for `master`, storing a fresh slot key in `keystore`.
    pub(crate) fn add_keystore_slot(
        &mut self,
        master: &MasterKey,
        keystore: &dyn KeyStore,
    ) -> Result<String, VaultError> {
        let slot_id = random_hex(4)?;
        let account = format!("vault-{}-{slot_id}", self.vault_id);
        let slot_key = SecretBytes::random(KEY_LEN)?;
        keystore.store(&account, &slot_key)?;
        self.push_slot_with_id(
            slot_id,
            master,
            SlotKind::OsKeystore { account: account.clone() },
            &slot_key,
        )?;
        Ok(account)
    }

    /// The master key, through the first passphrase slot the passphrase opens.
    pub(crate) fn unlock_with_passphrase(&self, passphrase: &SecretString) -> Result<MasterKey, VaultError> {
        let mut any = false;
        // Tessera writes one passphrase slot; trying a couple bounds the work a forged header can ask for.
        let passphrase_slots = self.slots.iter().filter(|s| matches!(s.kind, SlotKind::Passphrase { .. }));
        for slot in passphrase_slots.take(MAX_PASSPHRASE_SLOTS_TRIED) {
            any = true;
            let slot_key = derive_passphrase_key(&slot.kind, passphrase)?;
            if let Some(master) = self.unwrap_slot(slot, &slot_key) {
                return Ok(master);
            }
        }
        Err(if any { VaultError::WrongPassphrase } else { VaultError::NoSlotOfKind("passphrase") })
    }

    /// The master key, through an OS key store slot whose key is in `keystore`.
    pub(crate) fn unlock_with_keystore(&self, keystore: &dyn KeyStore) -> Result<MasterKey, VaultError> {
        let mut outcome = VaultError::NoSlotOfKind("OS key store");
        for slot in &self.slots {
            if let SlotKind::OsKeystore { account } = &slot.kind {
                match keystore.load(account)? {
                    None => outcome = VaultError::KeyStoreKeyMissing,
                    Some(slot_key) => match self.unwrap_slot(slot, &slot_key) {
                        Some(master) => return Ok(master),
                        None => outcome = VaultError::KeyStoreKeyMismatch,
                    },
                }
            }
        }
        Err(outcome)
    }

    fn push_slot(
        &mut self,
        master: &MasterKey,
        kind: SlotKind,
        slot_key: &SecretBytes,
    ) -> Result<(), VaultError> {
        let id = random_hex(4)?;
        self.push_slot_with_id(id, master, kind, slot_key)
    }

    fn push_slot_with_id(
        &mut self,
        id: String,
        master: &MasterKey,
        kind: SlotKind,
        slot_key: &SecretBytes,
    ) -> Result<(), VaultError> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(VaultError::TooManySlots(MAX_SLOTS));
        }
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let aad = slot_aad(&self.vault_id, &id, &kind);
        let mut wrapped = master.0.to_vec();
        let tag = cipher(slot_key.expose())?
            .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), &aad, wrapped.as_mut_slice().into())
            .map_err(|_| VaultError::Internal("slot encryption failed"))?;
        wrapped.extend_from_slice(&tag);
        self.slots.push(Slot { id, kind, nonce: nonce.to_vec(), wrapped_key: wrapped });
        Ok(())
    }

    fn unwrap_slot(&self, slot: &Slot, slot_key: &SecretBytes) -> Option<MasterKey> {
        let nonce: [u8; NONCE_LEN] = slot.nonce.as_slice().try_into().ok()?;
        if slot.wrapped_key.len() != KEY_LEN + TAG_LEN {
            return None;
        }
        let (wrapped, tag) = slot.wrapped_key.split_at(KEY_LEN);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(wrapped);
        let tag = Tag::<Aes256Gcm>::try_from(tag).ok()?;
        let aad = slot_aad(&self.vault_id, &slot.id, &slot.kind);
        cipher(slot_key.expose())
            .ok()?
            .decrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), &aad, key.as_mut_slice().into(), &tag)
            .ok()?;
        Some(MasterKey(key))
    }
}

/// A parsed but not yet decrypted vault file.
pub(crate) struct Sealed<'a> {
    pub(crate) header: Header,
    authenticated: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: [u8; TAG_LEN],
}

impl<'a> Sealed<'a> {
    /// Splits a file into its parts, checking structure only.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                FormatError::Truncated
            } else {
                FormatError::NotAVault
            });
        }
        let (magic, rest) = bytes.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(FormatError::NotAVault);
        }
        let (version, rest) = split_array::<2>(rest)?;
        let version = u16::from_le_bytes(version);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let (header_len, rest) = split_array::<4>(rest)?;
        let header_len = usize::try_from(u32::from_le_bytes(header_len)).unwrap_or(usize::MAX);
        if header_len > MAX_HEADER_LEN {
            return Err(FormatError::CorruptHeader("the header length is implausible".into()));
        }
        if rest.len() < header_len {
            return Err(FormatError::Truncated);
        }
        let (header_bytes, rest) = rest.split_at(header_len);
        let header: Header =
            serde_json::from_slice(header_bytes).map_err(|e| FormatError::CorruptHeader(e.to_string()))?;
        if header.slots.len() > MAX_SLOTS {
            return Err(FormatError::CorruptHeader("too many key slots".into()));
        }
        let (nonce, rest) = split_array::<NONCE_LEN>(rest)?;
        if rest.len() < TAG_LEN {
            return Err(FormatError::Truncated);
        }
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| FormatError::Truncated)?;
        let authenticated = bytes.get(..PREFIX_LEN + header_len + NONCE_LEN).ok_or(FormatError::Truncated)?;
        Ok(Self { header, authenticated, nonce, ciphertext, tag })
    }

    /// Decrypts and parses the contents. A failure here, with a key a slot vouched for, means
    /// the file was modified or damaged after it was written.
    pub(crate) fn open(&self, master: &MasterKey) -> Result<Vault, FormatError> {
        let mut plaintext = Zeroizing::new(self.ciphertext.to_vec());
        cipher(master.0.as_ref())
            .map_err(|_| FormatError::Tampered)?
            .decrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(self.nonce),
                self.authenticated,
                plaintext.as_mut_slice().into(),
                &Tag::<Aes256Gcm>::from(self.tag),
            )
            .map_err(|_| FormatError::Tampered)?;
        serde_json::from_slice(&plaintext).map_err(|e| FormatError::CorruptContents(e.to_string()))
    }
}

/// Serializes and encrypts `vault` under `master` with a fresh nonce, producing a whole file.
pub(crate) fn seal(header: &Header, vault: &Vault, master: &MasterKey) -> Result<Vec<u8>, VaultError> {
    let header_json =
        serde_json::to_vec(header).map_err(|_| VaultError::Internal("header serialization failed"))?;
    let header_len =
        u32::try_from(header_json.len()).map_err(|_| VaultError::Internal("header too large"))?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;

    // Size the plaintext buffer exactly so it never reallocates and leaves unwiped copies behind.
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, vault)
        .map_err(|_| VaultError::Internal("vault serialization failed"))?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *plaintext, vault)
        .map_err(|_| VaultError::Internal("vault serialization failed"))?;

    let mut file = Vec::with_capacity(PREFIX_LEN + header_json.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&header_len.to_le_bytes());
    file.extend_from_slice(&header_json);
    file.extend_from_slice(&nonce);
    let authenticated_len = file.len();
    file.extend_from_slice(&plaintext);
    let (authenticated, body) = file.split_at_mut(authenticated_len);
    let tag = cipher(master.0.as_ref())?
        .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), authenticated, body.into())
        .map_err(|_| VaultError::Internal("vault encryption failed"))?;
    file.extend_from_slice(&tag);
    Ok(file)
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, VaultError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::Internal("bad key length"))
}

fn derive_passphrase_key(kind: &SlotKind, passphrase: &SecretString) -> Result<SecretBytes, VaultError> {
    let SlotKind::Passphrase { kdf, salt } = kind else {
        return Err(VaultError::Internal("not a passphrase slot"));
    };
    let params = kdf.check()?;
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(normalized(passphrase).as_bytes(), salt, &mut key)
        .map_err(|e| FormatError::CorruptHeader(format!("passphrase slot: {e}")))?;
    Ok(SecretBytes::new(std::mem::take(&mut *key)))
}

/// The passphrase in Unicode NFC, so the same passphrase typed on macOS (which tends to produce
/// decomposed NFD text) and on Linux, Windows or Android derives the same key (NIST SP 800-63B §5.1.1.2).
pub(crate) fn normalized(passphrase: &SecretString) -> Zeroizing<String> {
    use unicode_normalization::UnicodeNormalization;
    let mut text = Zeroizing::new(String::with_capacity(passphrase.expose().len() * 3));
    text.extend(passphrase.expose().nfc());
    text
}

/// Binds a wrapped key to its vault and slot, so slots cannot be moved between vaults or kinds.
fn slot_aad(vault_id: &str, slot_id: &str, kind: &SlotKind) -> Vec<u8> {
    let kind = match kind {
        SlotKind::OsKeystore { account } => format!("os_keystore:{account}"),
        SlotKind::Passphrase { kdf, salt } => format!(
            "passphrase:{}:{}:{}:{}",
            kdf.memory_kib,
            kdf.iterations,
            kdf.parallelism,
            data_encoding::HEXLOWER.encode(salt)
        ),
    };
    [SLOT_AAD_PREFIX, b"|", vault_id.as_bytes(), b"|", slot_id.as_bytes(), b"|", kind.as_bytes()].concat()
}

fn random_hex(bytes: usize) -> Result<String, VaultError> {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(data_encoding::HEXLOWER.encode(&buf))
}

fn split_array<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), FormatError> {
    let (head, rest) = bytes.split_at_checked(N).ok_or(FormatError::Truncated)?;
    let head: [u8; N] = head.try_into().map_err(|_| FormatError::Truncated)?;
    Ok((head, rest))
}

struct ByteCounter(usize);

impl Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::OtpMethod;
    use crate::otpauth::OtpAuth;
    use crate::vault::keystore::MemoryKeyStore;

    /// Cheap Argon2 costs so tests stay fast; the format is the same.
    pub(crate) const TEST_KDF: KdfParams = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };

    fn sample_vault() -> Vault {
        let mut vault = Vault::new();
        let otp = OtpAuth::new(
            Some("Issuer".into()),
            "secret-account-name".into(),
            SecretBytes::from_slice(b"0123456789abcdefghij"),
            OtpMethod::default_totp(),
        )
        .unwrap();
        vault.add(otp, Some("group".into()), 7).unwrap();
        vault
    }

    fn sealed_file() -> (Vec<u8>, SecretString) {
        let master = MasterKey::random().unwrap();
        let passphrase = SecretString::new("correct horse battery".into());
        let mut header = Header::new().unwrap();
        header.add_passphrase_slot(&master, &passphrase, TEST_KDF).unwrap();
        (seal(&header, &sample_vault(), &master).unwrap(), passphrase)
    }

    fn open(bytes: &[u8], passphrase: &SecretString) -> Result<Vault, VaultError> {
        let sealed = Sealed::parse(bytes)?;
        let master = sealed.header.unlock_with_passphrase(passphrase)?;
        Ok(sealed.open(&master)?)
    }

    #[test]
    fn round_trip_with_passphrase() {
        let master = MasterKey::random().unwrap();
        let passphrase = SecretString::new("correct horse battery".into());
        let mut header = Header::new().unwrap();
        header.add_passphrase_slot(&master, &passphrase, TEST_KDF).unwrap();
        let vault = sample_vault();
        let bytes = seal(&header, &vault, &master).unwrap();
        assert_eq!(open(&bytes, &passphrase).unwrap(), vault);
    }

    #[test]
    fn every_field_is_encrypted() {
        let (bytes, _) = sealed_file();
        let haystack = String::from_utf8_lossy(&bytes);
        for needle in ["Issuer", "secret-account-name", "group", "GAYTEMZUGU", "totp"] {
            assert!(!haystack.contains(needle), "{needle} is visible in the file");
        }
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let (bytes, _) = sealed_file();
        let wrong = SecretString::new("incorrect horse".into());
        assert!(matches!(open(&bytes, &wrong), Err(VaultError::WrongPassphrase)));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let (bytes, passphrase) = sealed_file();
        let sealed = Sealed::parse(&bytes).unwrap();
        let master = sealed.header.unlock_with_passphrase(&passphrase).unwrap();
        let header_len = bytes.len() - sealed.ciphertext.len() - TAG_LEN - NONCE_LEN - PREFIX_LEN;
        let header_end = PREFIX_LEN + header_len;
        // Flip one bit in every byte outside the header JSON (whose edits may fail to parse instead).
        for index in (0..PREFIX_LEN).chain(header_end..bytes.len()) {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            let result = Sealed::parse(&damaged).map_err(VaultError::from).and_then(|s| Ok(s.open(&master)?));
            assert!(result.is_err(), "flipping byte {index} went unnoticed");
        }
    }

    #[test]
    fn header_edits_are_detected() {
        let (bytes, passphrase) = sealed_file();
        let needle = b"\"revision\":0";
        let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len() - 1;
        let mut edited = bytes.clone();
        edited[at] = b'9';
        assert!(matches!(open(&edited, &passphrase), Err(VaultError::Format(FormatError::Tampered))));
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let (bytes, passphrase) = sealed_file();
        for len in 0..bytes.len() {
            assert!(open(&bytes[..len], &passphrase).is_err(), "truncated to {len} bytes opened");
        }
    }

    #[test]
    fn foreign_files_are_not_vaults() {
        let passphrase = SecretString::new("whatever-it-is".into());
        for foreign in [&b"{\"tokens\":[]}"[..], b"\x89PNG\r\n\x1a\n0000000000", b"hello world, this is text"]
        {
            assert!(matches!(open(foreign, &passphrase), Err(VaultError::Format(FormatError::NotAVault))));
        }
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(&2u16.to_le_bytes());
        future.extend_from_slice(&[0; 40]);
        assert!(matches!(
            open(&future, &passphrase),
            Err(VaultError::Format(FormatError::UnsupportedVersion(2)))
        ));
    }

    #[test]
    fn keystore_slot_round_trip_and_failures() {
        let store = MemoryKeyStore::new();
        let master = MasterKey::random().unwrap();
        let mut header = Header::new().unwrap();
        let account = header.add_keystore_slot(&master, &store).unwrap();
        let bytes = seal(&header, &sample_vault(), &master).unwrap();
        let sealed = Sealed::parse(&bytes).unwrap();
        let unlocked = sealed.header.unlock_with_keystore(&store).unwrap();
        assert_eq!(sealed.open(&unlocked).unwrap().len(), 1);

        store.store(&account, &SecretBytes::random(32).unwrap()).unwrap();
        assert!(matches!(sealed.header.unlock_with_keystore(&store), Err(VaultError::KeyStoreKeyMismatch)));
        store.delete(&account).unwrap();
        assert!(matches!(sealed.header.unlock_with_keystore(&store), Err(VaultError::KeyStoreKeyMissing)));
        assert!(matches!(
            sealed.header.unlock_with_passphrase(&SecretString::new("abcdefghij".into())),
            Err(VaultError::NoSlotOfKind("passphrase"))
        ));
    }

    #[test]
    fn slots_cannot_be_moved_between_vaults() {
        let store = MemoryKeyStore::new();
        let master = MasterKey::random().unwrap();
        let mut first = Header::new().unwrap();
        first.add_keystore_slot(&master, &store).unwrap();
        let mut second = Header::new().unwrap();
        second.slots = first.slots.clone();
        assert!(matches!(second.unlock_with_keystore(&store), Err(VaultError::KeyStoreKeyMismatch)));
    }

    #[test]
    fn passphrases_are_compared_after_unicode_normalization() {
        let master = MasterKey::random().unwrap();
        let composed = SecretString::new("caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e".into());
        let decomposed = SecretString::new("cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e".into());
        assert_ne!(composed.expose(), decomposed.expose());
        let mut header = Header::new().unwrap();
        header.add_passphrase_slot(&master, &composed, TEST_KDF).unwrap();
        assert!(header.unlock_with_passphrase(&decomposed).is_ok());
    }

    #[test]
    fn short_passphrases_are_refused() {
        let master = MasterKey::random().unwrap();
        let mut header = Header::new().unwrap();
        let short = SecretString::new("seven77".into());
        assert!(matches!(
            header.add_passphrase_slot(&master, &short, TEST_KDF),
            Err(VaultError::WeakPassphrase { min_chars: 8 })
        ));
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_any_work() {
        let kind = SlotKind::Passphrase {
            kdf: KdfParams { memory_kib: u32::MAX, iterations: 1, parallelism: 1 },
            salt: vec![0; 16],
        };
        let result = derive_passphrase_key(&kind, &SecretString::new("passphrase".into()));
        assert!(matches!(result, Err(VaultError::Format(FormatError::CorruptHeader(_)))));
    }
}
