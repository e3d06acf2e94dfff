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

#[test]
fn removing_the_keystore_slot_deletes_its_secret_service_entry() {
    let dir = tempfile::tempdir().unwrap();
    let vault = VaultStore::new(dir.path().join("vault.tessera"));
    let passphrase = SecretString::new("a passphrase for this test".into());
    let cheap = KdfParams {
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };
    let unlocked = vault
        .create(Some(&keystore()), Some((&passphrase, cheap)))
        .unwrap();
    unlocked
        .remove_slots(tessera_core::vault::SlotKindName::OsKeystore, Some(&keystore()))
        .unwrap();
    unlocked.set_keystore_slot(&keystore()).unwrap();
    vault.unlock(Credential::KeyStore(&keystore())).unwrap();
}
