//! Key slots from the command line: OS key store, passphrase, both, and changes between them.

use crate::support::{Sandbox, require_secret_service};

const PASS: &str = "correct horse battery staple";
const TOKEN: &str = "otpauth://totp/GitHub:octocat?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=GitHub";

#[test]
fn passphrase_only_vault() {
    let sandbox = Sandbox::new();
    let env = [("TESSERA_PASSPHRASE", PASS)];
    sandbox.run_env(&["init", "--passphrase", "--no-keystore"], &env).ok();
    sandbox.run_env(&["add", TOKEN], &env).ok();
    assert_eq!(
        sandbox.run_env(&["slots", "list"], &env).ok().lines().filter(|l| l.ends_with("passphrase")).count(),
        1
    );

    let before = sandbox.vault_bytes();
    sandbox
        .run(&["list"])
        .fails_with("the vault is locked: its passphrase is needed; set TESSERA_PASSPHRASE");
    sandbox.run_env(&["list"], &[("TESSERA_PASSPHRASE", "wrong passphrase")]).fails_with("wrong passphrase");
    assert_eq!(sandbox.vault_bytes(), before);
    assert!(sandbox.run_env(&["list"], &env).ok().contains("octocat"));
}

#[test]
fn weak_passphrases_create_nothing() {
    let sandbox = Sandbox::new();
    sandbox
        .run_env(&["init", "--passphrase", "--no-keystore"], &[("TESSERA_PASSPHRASE", "short")])
        .fails_with("at least 8 characters");
    assert!(!sandbox.vault.exists());
    sandbox.run(&["init", "--passphrase", "--no-keystore"]).fails_with("set TESSERA_PASSPHRASE");
    sandbox.run(&["init", "--no-keystore"]).usage_error("--passphrase");
    assert!(!sandbox.vault.exists());
}

#[test]
fn both_slots_and_switching_between_them() {
    require_secret_service();
    let sandbox = Sandbox::new();
    let env = [("TESSERA_PASSPHRASE", PASS)];
    let created = sandbox.run_env(&["init", "--passphrase"], &env);
    assert!(created.stderr.contains("the OS key store and a passphrase"), "{}", created.stderr);
    sandbox.run(&["add", TOKEN]).ok();
    let slots = sandbox.run(&["slots", "list"]).ok();
    assert!(slots.contains("os-keystore") && slots.contains("passphrase"), "{slots}");

    sandbox.run(&["slots", "remove", "os-keystore"]).ok();
    sandbox.run(&["list"]).fails_with("its passphrase is needed");
    sandbox.run_env(&["slots", "add-keystore"], &env).ok();
    assert!(
        sandbox.run(&["list"]).ok().contains("octocat"),
        "the key store opens it again without a passphrase"
    );

    sandbox.run(&["slots", "set-passphrase"]).fails_with("set TESSERA_NEW_PASSPHRASE");
    sandbox
        .run_env(&["slots", "set-passphrase"], &[("TESSERA_NEW_PASSPHRASE", "a brand new passphrase")])
        .ok();
    sandbox.run(&["slots", "remove", "os-keystore"]).ok();
    sandbox.run_env(&["list"], &env).fails_with("wrong passphrase");
    sandbox.run_env(&["list"], &[("TESSERA_PASSPHRASE", "a brand new passphrase")]).ok();
    sandbox
        .run_env(&["slots", "remove", "passphrase"], &[("TESSERA_PASSPHRASE", "a brand new passphrase")])
        .fails_with("last key slot");
}

#[test]
fn an_unreachable_key_store_is_an_error_not_a_silent_fallback() {
    let sandbox = Sandbox::new();
    let nowhere = format!("unix:path={}", sandbox.path("no-bus").display());
    let run = sandbox.run_env(&["init"], &[("DBUS_SESSION_BUS_ADDRESS", &nowhere)]);
    run.fails_with("OS key store");
    assert!(!sandbox.vault.exists(), "no vault is created without a place for its key");
}
