//! The server key check at startup, and the one-time re-sealing of the seeds of a database from
//! before the sealing key was derived from the server key.

use super::{MAX_ATTEMPTS, ServiceError};
use crate::keys::{KeyError, ServerKey};
use crate::store::Store;

/// The meta entry saying seeds are sealed with the key derived from the server key.
const SEED_SEALING_MARKER: &str = "seed_sealing";
const SEED_SEALING_VERSION: &[u8] = b"hkdf-sha256/v1";
/// The meta entry holding the server key's check value.
const KEY_CHECK: &str = "server_key_check";

pub(super) async fn check_key_and_reseal(store: &Store, key: &ServerKey) -> Result<(), ServiceError> {
    let wrong_key = || {
        ServiceError::InvalidInput(
            "the server key does not match this database (every replica needs the same TESSERA_SERVER_KEY or server.key)"
                .into(),
        )
    };
    for _ in 0..MAX_ATTEMPTS {
        let resealed = store.meta(SEED_SEALING_MARKER).await?.is_some();
        let check = store.meta(KEY_CHECK).await?;
        let seeds = match (&check, resealed) {
            (Some(check), true) => {
                return if key.matches_check_value(check) { Ok(()) } else { Err(wrong_key()) };
            }
            (Some(check), false) if !key.matches_legacy_check_value(check) => return Err(wrong_key()),
            (Some(_), false) => store.sealed_seeds().await?,
            (None, _) => Vec::new(),
        };
        let resealed_seeds = seeds
            .into_iter()
            .map(|old| {
                let seed = key.open_legacy_seed(&old.serial, &old.sealed)?;
                let new = key.seal_seed(&old.serial, &seed)?;
                Ok((old, new))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let count = resealed_seeds.len();
        let meta = [(KEY_CHECK, key.check_value()?)];
        if store.reseal(&resealed_seeds, &meta, (SEED_SEALING_MARKER, SEED_SEALING_VERSION)).await? {
            if check.is_some() {
                tracing::info!(
                    tokens = count,
                    "token seeds re-sealed with the key derived from the server key"
                );
            }
            return Ok(());
        }
    }
    Err(ServiceError::Conflict(
        "the database's seeds changed while they were being re-sealed; start again".into(),
    ))
}

#[cfg(test)]
mod tests {
    use tessera_core::secret::SecretBytes;

    use super::*;
    use crate::config::{Config, ConfigArgs};
    use crate::store::{AuditResult, NewAudit, NewToken, TokenKind};

    #[tokio::test]
    async fn seeds_sealed_with_the_server_key_itself_are_resealed_once_with_a_derived_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::keys::create_private_dir(&data).unwrap();
        let key = ServerKey::load_or_create(&data).unwrap();
        let seed = SecretBytes::from_slice(b"12345678901234567890");
        let (sealed, check) = key.legacy_seal("TOTP-LEGACY", &seed);
        {
            let store =
                Store::open(&format!("sqlite://{}", data.join("tessera.db").display())).await.unwrap();
            let audit = NewAudit {
                at_ms: 0,
                actor: "test",
                action: "setup",
                username: None,
                serial: None,
                client_ip: None,
                result: AuditResult::Ok,
                reason: None,
            };
            store.reseal(&[], &[(KEY_CHECK, check)], ("unrelated", b"x")).await.unwrap();
            let user = store.create_user("old", None, None, None, 0, &audit).await.unwrap();
            let token = NewToken {
                serial: "TOTP-LEGACY",
                user_id: user.id,
                kind: TokenKind::Totp,
                algorithm: "SHA1",
                digits: 6,
                period: 30,
                seed: &sealed,
                counter: 0,
                description: None,
                created_at: 0,
                enrollment_code_hash: None,
                enrollment_expires_at: None,
                delivery: None,
                temporary: None,
                pending: None,
            };
            store.create_token(token, &audit).await.unwrap();
            store.close().await;
        }
        let args = ConfigArgs { data_dir: Some(data.clone()), ..Default::default() };
        for start in 0..2 {
            let service = crate::open_service(&Config::load(&args).unwrap()).await.unwrap();
            let token = service.store().token("TOTP-LEGACY").await.unwrap().unwrap();
            assert_ne!(token.seed.as_deref(), Some(sealed.as_slice()), "start {start}: re-sealed");
            let (opened, _) = service.material(&token).unwrap();
            assert_eq!(opened, seed, "start {start}: the seed survives");
            service.store().close().await;
        }
        let other = ServerKey::from_hex(&"cd".repeat(32), "test").unwrap();
        let store = Store::open(&format!("sqlite://{}", data.join("tessera.db").display())).await.unwrap();
        assert!(check_key_and_reseal(&store, &other).await.is_err(), "another key is still refused");
    }
}
