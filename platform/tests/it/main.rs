//! The OS key store against the real Secret Service (gnome-keyring in a private D-Bus session,
//! started by the README's test command). Without a session these tests fail; they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tessera_core::secret::{SecretBytes, SecretString};
use tessera_core::vault::{Credential, KdfParams, KeyStore, VaultError, VaultStore};
use tessera_platform::OsKeyStore;

fn keystore() -> OsKeyStore {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run inside dbus-run-session with an unlocked gnome-keyring (the README's test command does)"
    );
    OsKeyStore::with_service(format!("dev.tessera.test.{}", std::process::id()))
}

#[test]
fn store_load_delete_round_trip() {
    let store = keystore();
    let account = "round-trip";
    assert_eq!(store.load(account).unwrap(), None);
    let secret = SecretBytes::new(vec![0, 1, 2, 255, 0, 128, 7]);
    store.store(account, &secret).unwrap();
    assert_eq!(store.load(account).unwrap(), Some(secret.clone()));
    let replacement = SecretBytes::random(32).unwrap();
    store.store(account, &replacement).unwrap();
    assert_eq!(store.load(account).unwrap(), Some(replacement));
    store.delete(account).unwrap();
    assert_eq!(store.load(account).unwrap(), None);
    store.delete(account).unwrap();
}

#[test]
fn a_vault_opens_from_the_secret_service_in_a_new_handle() {
    let dir = tempfile::tempdir().unwrap();
    let vault = VaultStore::new(dir.path().join("vault.tessera"));
    vault.create(Some(&keystore()), None).unwrap();
    let reopened = vault.unlock(Credential::KeyStore(&keystore())).unwrap();
    assert!(reopened.read().unwrap().is_empty());

    let other_service = OsKeyStore::with_service("dev.tessera.test.elsewhere");
    assert!(matches!(
        vault.unlock(Credential::KeyStore(&other_service)),
        Err(VaultError::KeyStoreKeyMissing)
    ));
}

/// Records the accounts a key store is asked to store, around the real Secret Service.
struct Recording {
    inner: OsKeyStore,
    stored: std::sync::Mutex<Vec<String>>,
}

impl KeyStore for Recording {
    fn load(&self, account: &str) -> Result<Option<SecretBytes>, tessera_core::vault::KeyStoreError> {
        self.inner.load(account)
    }
    fn store(&self, account: &str, secret: &SecretBytes) -> Result<(), tessera_core::vault::KeyStoreError> {
        self.stored.lock().unwrap().push(account.to_owned());
        self.inner.store(account, secret)
    }
    fn delete(&self, account: &str) -> Result<(), tessera_core::vault::KeyStoreError> {
        self.inner.delete(account)
    }
}

#[test]
fn removing_or_replacing_the_keystore_slot_deletes_its_secret_service_entry() {
    let dir = tempfile::tempdir().unwrap();
    let vault = VaultStore::new(dir.path().join("vault.tessera"));
    let passphrase = SecretString::new("a passphrase for this test".into());
    let cheap = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };
    let recording = Recording { inner: keystore(), stored: Default::default() };
    let unlocked = vault.create(Some(&recording), Some((&passphrase, cheap))).unwrap();
    let first = recording.stored.lock().unwrap()[0].clone();
    assert!(keystore().load(&first).unwrap().is_some(), "the slot key is in the Secret Service");

    unlocked.set_keystore_slot(&recording).unwrap();
    let second = recording.stored.lock().unwrap()[1].clone();
    assert_ne!(first, second);
    assert_eq!(keystore().load(&first).unwrap(), None, "the replaced slot's entry is deleted");

    unlocked.remove_slots(tessera_core::vault::SlotKindName::OsKeystore, &recording).unwrap();
    assert_eq!(keystore().load(&second).unwrap(), None, "the removed slot's entry is deleted");
    assert!(matches!(vault.unlock(Credential::KeyStore(&keystore())), Err(VaultError::NoSlotOfKind(_))));
    vault.unlock(Credential::Passphrase(&passphrase)).unwrap();
}
