//! Temporary passcodes for the help desk: a user who lost their phone gets a passcode that works a
//! few times within a few hours. It is shown once and stored only as an Argon2id hash; it is a
//! token of kind `temp` whose counter counts its uses, so lockout, audit and disabling work as for
//! any token.

use serde::{Deserialize, Serialize};
use tessera_core::secret::{SecretBytes, SecretString, fill_random};
use tessera_core::verifier::TokenState;
use utoipa::ToSchema;

use super::notices::AccountChange;
use super::tokens::{SEED_BYTES, TokenDraft};
use super::{Actor, Caller, PortalSession, Service, ServiceError, StepUp};
use crate::clock::{i64_of, now_i64};
use crate::keys::KeyError;
use crate::store::{StateUpdate, TemporaryPasscode, TokenKind, TokenRow};

/// Digits in a temporary passcode (about 30 bits; lockout bounds guessing).
const PASSCODE_DIGITS: usize = 9;
/// Longest validity, in hours (30 days).
const MAX_VALID_HOURS: u32 = 720;
/// Most uses one passcode may have.
const MAX_USES: u32 = 100;

/// `POST /api/v1/users/{username}/temporary-passcode`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemporaryPasscodeRequest {
    /// Hours it works, 1–720 (default 24).
    pub valid_hours: Option<u32>,
    /// Logins it may complete, 1–100 (default 1).
    pub max_uses: Option<u32>,
}

/// A new temporary passcode: shown this once, never again.
#[derive(Serialize, ToSchema)]
pub struct IssuedPasscode {
    /// The passcode (digits), for the user.
    #[schema(value_type = String)]
    pub passcode: SecretString,
    /// Unix seconds after which it stops working.
    pub expires_at: i64,
    /// The `temp` token that holds it (disable or delete it to withdraw the passcode).
    pub serial: String,
    /// Logins it may complete.
    pub max_uses: u32,
}

impl std::fmt::Debug for IssuedPasscode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPasscode").field("serial", &self.serial).finish_non_exhaustive()
    }
}

impl Service {
    /// Issues a temporary passcode for `username`.
    pub async fn issue_temporary_passcode(
        &self,
        actor: &Actor,
        username: &str,
        request: TemporaryPasscodeRequest,
    ) -> Result<IssuedPasscode, ServiceError> {
        let user = self.existing_user(username).await?;
        let valid_hours = request.valid_hours.unwrap_or(24);
        if !(1..=MAX_VALID_HOURS).contains(&valid_hours) {
            return Err(ServiceError::InvalidInput(format!("valid_hours must be 1 to {MAX_VALID_HOURS}")));
        }
        let max_uses = request.max_uses.unwrap_or(1);
        if !(1..=MAX_USES).contains(&max_uses) {
            return Err(ServiceError::InvalidInput(format!("max_uses must be 1 to {MAX_USES}")));
        }
        let passcode = random_digits(PASSCODE_DIGITS)?;
        let temporary = TemporaryPasscode {
            hash: self.hash_password(passcode.clone()).await?,
            expires_at: now_i64() + i64::from(valid_hours) * 3600,
            max_uses,
        };
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let draft = TokenDraft {
            kind: TokenKind::Temp,
            algorithm: "SHA1",
            digits: i64::try_from(PASSCODE_DIGITS).unwrap_or(9),
            period: 30,
            seed: &seed,
            description: Some("temporary passcode"),
            enrollment: None,
            delivery: None,
            temporary: Some(&temporary),
            pending: None,
        };
        let serial = self.insert_token(actor, &user, draft).await?;
        Ok(IssuedPasscode { passcode, expires_at: temporary.expires_at, serial, max_uses })
    }

    /// A temporary passcode the session's user gets for themselves (their phone left at home),
    /// when `[portal.temporary_passcodes]` offers it: after a second factor proved within
    /// `[portal] step_up_secs` that was not itself a temporary passcode (so one never begets the
    /// next), and only while they hold no other live one.
    pub async fn portal_temporary_passcode(
        &self,
        session: &PortalSession,
        caller: &Caller<'_>,
    ) -> Result<StepUp<IssuedPasscode>, ServiceError> {
        session.signed_in()?;
        let Some(policy) = self.portal.temporary_passcodes else {
            return Err(ServiceError::InvalidInput(
                "temporary passcodes are not offered here: ask your help desk".into(),
            ));
        };
        let now = now_i64();
        if !session.factor_is_fresh(now, self.portal.step_up_secs) || session.proved_with_temporary_passcode()
        {
            return Ok(StepUp::Needed);
        }
        let user = self.existing_user(session.username()).await?;
        if self.store.tokens_of(user.id).await?.iter().any(|t| t.is_live_temporary(now)) {
            return Err(ServiceError::Conflict(
                "you already have a temporary passcode that works: use it, or delete it to get a new one"
                    .into(),
            ));
        }
        let request = TemporaryPasscodeRequest {
            valid_hours: Some(policy.valid_hours),
            max_uses: Some(policy.max_uses),
        };
        let issued =
            self.issue_temporary_passcode(&Actor::Portal { ip: caller.ip }, &user.username, request).await?;
        self.notify(&user, &AccountChange::TemporaryPasscode, None).await;
        Ok(StepUp::Done(issued))
    }

    /// The write that accepts `passcode` if it is one of the live temporary passcodes among
    /// `tokens` (an Argon2id check each, so only after every other token refused it).
    pub(super) async fn accept_temporary(
        &self,
        tokens: &[TokenRow],
        passcode: &SecretString,
        now: u64,
    ) -> Option<(String, StateUpdate)> {
        for token in tokens
            .iter()
            .filter(|t| t.is_live_temporary(i64_of(now)) && !t.state.is_locked(now, &self.policy))
        {
            let hash = token.temporary.as_ref().map(|t| t.hash.as_str());
            if self.check_password(passcode, hash).await {
                let used =
                    TokenState { counter: token.state.counter.saturating_add(1), ..token.state.unlocked() };
                return Some((token.serial.clone(), token.moved_to(used, Some(i64_of(now)))));
            }
        }
        None
    }
}

/// `count` random decimal digits (rejection sampling, so every digit is equally likely).
fn random_digits(count: usize) -> Result<SecretString, ServiceError> {
    let mut digits = String::with_capacity(count);
    while digits.len() < count {
        let mut byte = [0u8; 1];
        fill_random(&mut byte).map_err(|e| KeyError::Random(e.to_string()))?;
        let [value] = byte;
        if value < 250 {
            digits.push(char::from(b'0' + value % 10));
        }
    }
    Ok(SecretString::new(digits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{request, service, user};
    use crate::service::{Caller, ValidationResult};

    #[tokio::test]
    async fn a_temporary_passcode_works_its_number_of_uses_and_is_stored_only_as_a_hash() {
        let (_dir, service) = service("").await;
        user(&service, "ann", "2580").await;
        let asked = TemporaryPasscodeRequest { valid_hours: Some(2), max_uses: Some(2) };
        let issued = service.issue_temporary_passcode(&Actor::Cli, "ann", asked).await.unwrap();
        let code = issued.passcode.expose().to_owned();
        assert_eq!(code.len(), 9);
        let stored = service.store().token(&issued.serial).await.unwrap().unwrap();
        assert!(
            stored
                .temporary
                .as_ref()
                .is_some_and(|t| t.hash.starts_with("$argon2id$") && !t.hash.contains(&code))
        );
        let login = |passcode: &str| {
            let service = service.clone();
            let passcode = passcode.to_owned();
            async move {
                service.validate(request("ann", "2580", &passcode), &Caller::default()).await.unwrap().result
            }
        };
        assert_eq!(login("000000000").await, ValidationResult::Reject);
        let grouped = format!("{} {} {}", &code[..3], &code[3..6], &code[6..]);
        assert_eq!(login(&grouped).await, ValidationResult::Accept, "typed with spaces");
        assert_eq!(login(&code).await, ValidationResult::Accept);
        assert_eq!(login(&code).await, ValidationResult::Reject, "two uses, then no more");
        let wrong = TemporaryPasscodeRequest { valid_hours: Some(0), max_uses: None };
        assert!(service.issue_temporary_passcode(&Actor::Cli, "ann", wrong).await.is_err());
    }
}
