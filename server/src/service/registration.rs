//! Registration codes: what the help desk gives a user who has no token yet, so they can sign in
//! to the self-service portal and enrol their first one. A code is 20 characters of Crockford's
//! base32 (100 random bits) in groups of four, easy to read out over the phone: case does not
//! matter, dashes and spaces are ignored, and `I`, `L` and `O` read as `1`, `1` and `0`. It is shown
//! once, stored only as its SHA-256 (enough for 100 random bits), works once, and a new code
//! replaces the user's earlier one.

use serde::{Deserialize, Serialize};
use tessera_core::secret::{SecretString, fill_random};
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::{Actor, Service, ServiceError};
use crate::clock::now_i64;
use crate::keys::{KeyError, credential_hash};
use crate::store::UserRow;

/// Crockford's base32 alphabet: no `I`, `L`, `O` or `U`.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code (5 bits each).
const CODE_LENGTH: usize = 20;
/// Longest validity, in hours (30 days).
const MAX_VALID_HOURS: u32 = 720;
/// Validity when none is asked for, in hours.
const DEFAULT_VALID_HOURS: u32 = 72;

/// `POST /api/v1/users/{username}/registration-code`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationCodeRequest {
    /// Hours it works, 1–720 (default 72).
    pub valid_hours: Option<u32>,
}

/// A new registration code: shown this once, never again.
#[derive(Serialize, ToSchema)]
pub struct RegistrationCode {
    /// The code, `XXXX-XXXX-XXXX-XXXX-XXXX`, for the user.
    #[schema(value_type = String)]
    pub code: SecretString,
    /// Unix seconds after which it stops working.
    pub expires_at: i64,
    /// The self-service portal's page for it (`…/portal/enroll?code=…`), when the portal is on:
    /// a link to send the user, who still signs in with their password.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub portal_url: Option<SecretString>,
}

impl std::fmt::Debug for RegistrationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationCode").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl Service {
    /// Issues a registration code for `username`, replacing any earlier one.
    pub async fn issue_registration_code(
        &self,
        actor: &Actor,
        username: &str,
        request: RegistrationCodeRequest,
    ) -> Result<RegistrationCode, ServiceError> {
        let user = self.existing_user(username).await?;
        let valid_hours = request.valid_hours.unwrap_or(DEFAULT_VALID_HOURS);
        if !(1..=MAX_VALID_HOURS).contains(&valid_hours) {
            return Err(ServiceError::InvalidInput(format!("valid_hours must be 1 to {MAX_VALID_HOURS}")));
        }
        let code = new_code()?;
        let now = now_i64();
        let expires_at = now + i64::from(valid_hours) * 3600;
        let audit = AdminAudit::new(actor, "user.registration_code").user(username);
        self.store
            .put_registration_code(user.id, &code_hash(&code), now, expires_at, &audit.record())
            .await?;
        let portal_url = self.portal.enabled.then(|| {
            SecretString::new(format!("{}/portal/enroll?code={}", self.portal.origin, code.expose()))
        });
        Ok(RegistrationCode { code, expires_at, portal_url })
    }

    /// Uses up `username`'s registration code: whether `code` is it and still live. The portal
    /// asks only after the user's password was right, so a wrong guess elsewhere burns nothing.
    pub async fn redeem_registration_code(
        &self,
        username: &str,
        code: &SecretString,
    ) -> Result<bool, ServiceError> {
        let Some(user) = self.store.user(username).await? else { return Ok(false) };
        self.take_registration_code(&user, code).await
    }

    /// Uses up `user`'s registration code when `code` is it and still live.
    pub(super) async fn take_registration_code(
        &self,
        user: &UserRow,
        code: &SecretString,
    ) -> Result<bool, ServiceError> {
        Ok(self.store.take_registration_code(user.id, &code_hash(code), now_i64()).await?)
    }
}

/// A fresh code, grouped in fours.
fn new_code() -> Result<SecretString, ServiceError> {
    let mut random = zeroize::Zeroizing::new([0u8; CODE_LENGTH]);
    fill_random(random.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut code = String::with_capacity(CODE_LENGTH + CODE_LENGTH / 4);
    for (index, byte) in random.iter().enumerate() {
        if index > 0 && index % 4 == 0 {
            code.push('-');
        }
        code.extend(ALPHABET.get(usize::from(byte & 31)).map(|&symbol| char::from(symbol)));
    }
    Ok(SecretString::new(code))
}

/// The stored form of a code as a user may type it: normalised, then hashed.
fn code_hash(code: &SecretString) -> String {
    let normal: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        code.expose()
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| match c.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                other => other,
            })
            .collect(),
    );
    credential_hash(&normal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{service, user};

    #[tokio::test]
    async fn a_registration_code_reads_as_typed_and_works_once() {
        let (_dir, service) = service("").await;
        user(&service, "ann", "2580").await;
        user(&service, "bob", "2580").await;
        let issued = service
            .issue_registration_code(&Actor::Cli, "ann", RegistrationCodeRequest::default())
            .await
            .unwrap();
        let code = issued.code.expose().to_owned();
        assert_eq!(code.len(), 24);
        assert!(
            code.split('-').all(|group| group.len() == 4 && group.bytes().all(|b| ALPHABET.contains(&b)))
        );
        assert!(!format!("{issued:?}").contains(&code), "no code in Debug");
        let typed = code.to_ascii_lowercase().replace('-', " ").replace('0', "o").replace('1', "l");
        assert!(!service.redeem_registration_code("bob", &issued.code).await.unwrap(), "ann's code only");
        assert!(service.redeem_registration_code("ann", &SecretString::new(typed)).await.unwrap());
        assert!(!service.redeem_registration_code("ann", &issued.code).await.unwrap(), "used once");

        let actor = Actor::Cli;
        let first =
            service.issue_registration_code(&actor, "ann", RegistrationCodeRequest::default()).await.unwrap();
        let second =
            service.issue_registration_code(&actor, "ann", RegistrationCodeRequest::default()).await.unwrap();
        assert_ne!(first.code, second.code);
        assert!(!service.redeem_registration_code("ann", &first.code).await.unwrap(), "replaced");
        let too_long = RegistrationCodeRequest { valid_hours: Some(721) };
        assert!(matches!(
            service.issue_registration_code(&actor, "ann", too_long).await,
            Err(ServiceError::InvalidInput(_))
        ));
        assert!(matches!(
            service.issue_registration_code(&actor, "nobody", RegistrationCodeRequest::default()).await,
            Err(ServiceError::NotFound(..))
        ));
    }
}
