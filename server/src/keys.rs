//! The server's secrets and how they are kept.
//!
//! - **Server key**: 256 bits from which two keys are derived with HKDF-SHA256 under distinct
//!   labels: the key that encrypts every token seed in the database (AES-256-GCM, the token serial
//!   bound as associated data, so a seed cannot be moved to another token's row) and the Ed25519
//!   key that signs push challenges. The server key lives outside the database, in
//!   `TESSERA_SERVER_KEY` or a `server.key` file (mode 0600) created on first run: a stolen
//!   database alone reveals no seed. Replicas sharing one PostgreSQL must share the key; the
//!   database stores a check value so a wrong key is refused at startup instead of failing every
//!   validation. Databases from before the derivation (seeds sealed with the server key itself)
//!   are re-sealed once at startup ([`crate::service::Service::new`]).
//! - **Admin API keys**: 256-bit random bearer tokens; the database keeps only their SHA-256.
//! - **User passwords/PINs**: Argon2id PHC strings (OWASP parameters: 19 MiB, 2 passes).

use std::io::Write;
use std::path::Path;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tessera_core::secret::{SecretBytes, SecretString, fill_random};
use zeroize::Zeroizing;

/// Environment variable holding the server key (64 hex digits).
pub const SERVER_KEY_ENV: &str = "TESSERA_SERVER_KEY";
/// File name of the server key in the data directory.
pub const SERVER_KEY_FILE: &str = "server.key";
/// Prefix of admin API keys, so they are recognizable in secret scanners.
pub const ADMIN_KEY_PREFIX: &str = "tsk_";

const SEED_AAD: &[u8] = b"tessera/server/seed/v1|";
const SEED_KEY_LABEL: &[u8] = b"tessera/seed-sealing-key/v1";
const PUSH_KEY_LABEL: &[u8] = b"tessera/push-signing-key/v1";
const CODE_MAC_LABEL: &[u8] = b"tessera/code-mac-key/v1";
const CHECK_AAD: &[u8] = b"tessera/server/key-check/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A failure with key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file or variable is malformed.
    #[error("the server key in {0} is not 64 hex digits")]
    Malformed(String),
    /// The key file can be read by other users.
    #[error("the server key file {0} can be read by other users; run `chmod 600 {0}`")]
    NotPrivate(String),
    /// The key file cannot be read or written.
    #[error("cannot {action} the server key file {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored seed does not decrypt with this key (wrong key or tampered row).
    #[error("a token seed does not decrypt with the server key")]
    Undecryptable,
    /// The random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The server key and the seed-sealing key derived from it.
pub struct ServerKey {
    root: Zeroizing<[u8; 32]>,
    seeds: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey([REDACTED])")
    }
}

impl ServerKey {
    /// The key from `TESSERA_SERVER_KEY`, else from `data_dir/server.key`, created (0600) if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        if let Ok(hex) = std::env::var(SERVER_KEY_ENV) {
            return Self::from_hex(hex.trim(), SERVER_KEY_ENV);
        }
        let path = data_dir.join(SERVER_KEY_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path, &shown)?;
                Self::from_hex(text.trim(), &shown)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                fill_random(key.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
                let hex = Zeroizing::new(data_encoding::HEXLOWER.encode(key.as_ref()));
                write_private_file(&path, hex.as_bytes()).map_err(|source| KeyError::Io {
                    action: "create",
                    path: shown,
                    source,
                })?;
                Self::from_root(key)
            }
            Err(source) => Err(KeyError::Io { action: "read", path: shown, source }),
        }
    }

    /// A key from 64 hex digits.
    pub fn from_hex(hex: &str, source: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .map_err(|_| KeyError::Malformed(source.into()))?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(KeyError::Malformed(source.into()));
        }
        key.copy_from_slice(&bytes);
        Self::from_root(key)
    }

    fn from_root(root: Zeroizing<[u8; 32]>) -> Result<Self, KeyError> {
        let seeds = derive(&root, SEED_KEY_LABEL)?;
        Ok(Self { root, seeds })
    }

    /// Encrypts a seed for the token `serial`: `nonce | ciphertext | tag`.
    pub fn seal_seed(&self, serial: &str, seed: &SecretBytes) -> Result<Vec<u8>, KeyError> {
        seal(&self.seeds, &[SEED_AAD, serial.as_bytes()].concat(), seed.expose())
    }

    /// Decrypts the seed of the token `serial`.
    pub fn open_seed(&self, serial: &str, sealed: &[u8]) -> Result<SecretBytes, KeyError> {
        open(&self.seeds, &[SEED_AAD, serial.as_bytes()].concat(), sealed)
            .map(|plain| SecretBytes::new(plain.to_vec()))
    }

    /// Decrypts a seed sealed before the sealing key was derived (with the server key itself).
    pub fn open_legacy_seed(&self, serial: &str, sealed: &[u8]) -> Result<SecretBytes, KeyError> {
        open(&self.root, &[SEED_AAD, serial.as_bytes()].concat(), sealed)
            .map(|plain| SecretBytes::new(plain.to_vec()))
    }

    /// The Ed25519 key that signs push challenges, derived from the server key (HKDF-SHA256), so
    /// replicas sharing the server key sign alike and there is no second secret to distribute.
    pub fn push_signing_key(&self) -> Result<tessera_core::push::KeyPair, KeyError> {
        let seed = derive(&self.root, PUSH_KEY_LABEL)?;
        tessera_core::push::KeyPair::from_seed(&SecretBytes::from_slice(seed.as_ref()))
            .map_err(|_| KeyError::Hashing("push key".into()))
    }

    /// A code shown on a login screen, keyed for storage (HMAC-SHA256 with a key derived from the
    /// server key, bound to the transaction `id`): replicas sharing the server key check it alike,
    /// and a database alone does not give the code away.
    pub fn code_mac(&self, id: &str, code: &str) -> Result<String, KeyError> {
        use hmac::{KeyInit, Mac};
        let key = derive(&self.root, CODE_MAC_LABEL)?;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| KeyError::Hashing("code MAC key".into()))?;
        mac.update(id.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        Ok(data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
    }

    /// True when `code` is the one [`ServerKey::code_mac`] keyed as `stored` for `id` (compared in
    /// constant time).
    pub fn code_matches(&self, id: &str, code: &str, stored: &str) -> bool {
        self.code_mac(id, code).is_ok_and(|mac| bool::from(mac.as_bytes().ct_eq(stored.as_bytes())))
    }

    /// A value stored in the database proving which key encrypted its seeds.
    pub fn check_value(&self) -> Result<Vec<u8>, KeyError> {
        seal(&self.seeds, CHECK_AAD, b"tessera")
    }

    /// True when `check` was made by this key.
    pub fn matches_check_value(&self, check: &[u8]) -> bool {
        open(&self.seeds, CHECK_AAD, check).is_ok()
    }

    /// A seed and check value as servers sealed them before the sealing key was derived.
    #[cfg(test)]
    pub(crate) fn legacy_seal(&self, serial: &str, seed: &SecretBytes) -> (Vec<u8>, Vec<u8>) {
        let sealed = seal(&self.root, &[SEED_AAD, serial.as_bytes()].concat(), seed.expose());
        (sealed.unwrap_or_default(), seal(&self.root, CHECK_AAD, b"tessera").unwrap_or_default())
    }

    /// True when `check` was made by this key before the sealing key was derived.
    pub fn matches_legacy_check_value(&self, check: &[u8]) -> bool {
        open(&self.root, CHECK_AAD, check).is_ok()
    }
}

fn derive(root: &[u8; 32], label: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(None, root)
        .expand(label, key.as_mut())
        .map_err(|_| KeyError::Hashing("HKDF output length".into()))?;
    Ok(key)
}

fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(NONCE_LEN..).unwrap_or_default();
    let tag = Aes256Gcm::new(key.into())
        .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), aad, body.into())
        .map_err(|_| KeyError::Undecryptable)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(KeyError::Undecryptable);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::Undecryptable)?;
    let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| KeyError::Undecryptable)?;
    let mut plain = Zeroizing::new(body.to_vec());
    Aes256Gcm::new(key.into())
        .decrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), aad, plain.as_mut_slice().into(), &tag)
        .map_err(|_| KeyError::Undecryptable)?;
    Ok(plain)
}

/// Refuses a key file that group or others can read (as ssh does with private keys).
fn check_private(path: &Path, shown: &str) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| KeyError::Io { action: "inspect", path: shown.to_owned(), source })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::NotPrivate(shown.to_owned()));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, shown);
    Ok(())
}

/// A new API key (admin or application): `prefix` and 64 hex digits (256 bits). Show it once;
/// store only [`credential_hash`].
pub fn new_key(prefix: &str) -> Result<SecretString, KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SecretString::new(format!("{prefix}{}", data_encoding::HEXLOWER.encode(bytes.as_ref()))))
}

/// A random id: 128 bits, base32, with a prefix (transaction ids, enrollment credentials).
pub fn random_id(prefix: &str) -> Result<String, KeyError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", data_encoding::BASE32_NOPAD.encode(&bytes)))
}

/// The stored form of a random credential (admin key, enrollment code): SHA-256, hex. A fast hash
/// suffices for credentials with 128 bits of entropy or more.
pub fn credential_hash(key: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(key.as_bytes()))
}

/// Compares a presented secret (a key, a form token) with the expected one in constant time,
/// whatever their lengths.
pub fn secrets_match(presented: &str, configured: &str) -> bool {
    Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(configured.as_bytes())).into()
}

fn password_hasher() -> Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a user's password/PIN as an Argon2id PHC string.
pub fn hash_password(password: &SecretString) -> Result<String, KeyError> {
    password_hasher()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| KeyError::Hashing(e.to_string()))
}

/// Checks a password/PIN against a stored PHC string (constant time inside Argon2).
pub fn verify_password(password: &str, stored: &str) -> bool {
    password_hasher().verify_password(password.as_bytes(), stored).is_ok()
}

/// A PHC string no password matches, hashed once so that checks for unknown users cost as much
/// as checks for real ones (no user enumeration by timing).
pub fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hash_password(&SecretString::new("tessera-dummy-password".into())).unwrap_or_default()
    })
}

/// Creates a directory and its missing parents, accessible only by its owner (0700 on Unix).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Writes a new file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = tessera_core::vault::private_file_options().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        ServerKey::from_hex(&"ab".repeat(32), "test").unwrap()
    }

    #[test]
    fn seeds_round_trip_and_are_bound_to_their_serial() {
        let seed = SecretBytes::from_slice(b"12345678901234567890");
        let sealed = key().seal_seed("TOTP-1", &seed).unwrap();
        assert!(!sealed.windows(20).any(|w| w == b"12345678901234567890"));
        assert_eq!(key().open_seed("TOTP-1", &sealed).unwrap(), seed);
        assert!(matches!(key().open_seed("TOTP-2", &sealed), Err(KeyError::Undecryptable)));
        let other = ServerKey::from_hex(&"cd".repeat(32), "test").unwrap();
        assert!(matches!(other.open_seed("TOTP-1", &sealed), Err(KeyError::Undecryptable)));
        assert!(matches!(key().open_seed("TOTP-1", &sealed[..10]), Err(KeyError::Undecryptable)));
    }

    #[test]
    fn seeds_are_sealed_with_a_derived_key_not_the_server_key() {
        let seed = SecretBytes::from_slice(b"12345678901234567890");
        let sealed = key().seal_seed("TOTP-1", &seed).unwrap();
        assert!(key().open_legacy_seed("TOTP-1", &sealed).is_err(), "the server key itself does not open it");
        let legacy = seal(&key().root, &[SEED_AAD, b"TOTP-1"].concat(), seed.expose()).unwrap();
        assert_eq!(key().open_legacy_seed("TOTP-1", &legacy).unwrap(), seed);
        assert!(key().open_seed("TOTP-1", &legacy).is_err());
        let legacy_check = seal(&key().root, CHECK_AAD, b"tessera").unwrap();
        assert!(key().matches_legacy_check_value(&legacy_check) && !key().matches_check_value(&legacy_check));
    }

    #[test]
    fn push_signing_keys_follow_the_server_key() {
        let first = key().push_signing_key().unwrap().public();
        assert_eq!(first, key().push_signing_key().unwrap().public(), "replicas with one key sign alike");
        let other = ServerKey::from_hex(&"cd".repeat(32), "t").unwrap().push_signing_key().unwrap().public();
        assert_ne!(first, other);
    }

    #[test]
    fn check_values_identify_the_key() {
        let check = key().check_value().unwrap();
        assert!(key().matches_check_value(&check));
        assert!(!ServerKey::from_hex(&"cd".repeat(32), "t").unwrap().matches_check_value(&check));
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(ServerKey::from_hex("abc", "x").is_err());
        assert!(ServerKey::from_hex(&"zz".repeat(32), "x").is_err());
        assert!(ServerKey::from_hex(&"ab".repeat(31), "x").is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password(&SecretString::new("1234".into())).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("1234", &hash));
        assert!(!verify_password("1235", &hash));
        assert!(!verify_password("1234", dummy_password_hash()));
        assert!(!verify_password("1234", "not a phc string"));
    }

    #[test]
    fn admin_keys() {
        let key = new_key(ADMIN_KEY_PREFIX).unwrap();
        assert!(key.expose().starts_with(ADMIN_KEY_PREFIX) && key.expose().len() == 68);
        assert_eq!(credential_hash(key.expose()).len(), 64);
        assert!(secrets_match(key.expose(), key.expose()));
        assert!(!secrets_match("tsk_x", key.expose()));
    }
}
