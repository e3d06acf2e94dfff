//! The verification server's rules for one token: which codes to accept given what was accepted
//! before, how failures lock a token and when the lock lifts, and how resync finds a token's drift.
//!
//! Pure: a token's stored state and a passcode go in, a verdict and the token's next state come
//! out. The server stores that next state with a compare-and-swap on the token's version, so a
//! code is accepted at most once even when several server processes race on one database
//! (RFC 6238 §5.2, RFC 4226 §7.2–7.4, NIST SP 800-63B §3.2.2 rate limiting).

use serde::{Deserialize, Serialize};

use crate::delivery::Accepted;
use crate::otp::{OtpMethod, TotpWindow, verify_hotp, verify_steam, verify_totp};
use crate::secret::SecretBytes;

/// Largest HOTP look-ahead honoured, whatever the policy says.
pub const MAX_HOTP_LOOK_AHEAD: u32 = 1_000;
/// Largest resync window honoured, whatever the policy says.
pub const MAX_RESYNC_WINDOW: u32 = 10_000;

/// How strictly codes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Time steps accepted around the token's (drift-corrected) current step.
    pub totp_window: TotpWindow,
    /// HOTP counters accepted beyond the expected one.
    pub hotp_look_ahead: u32,
    /// Consecutive failures that lock a token.
    pub max_failures: u32,
    /// Seconds after which a lock lifts by itself; `None` keeps it until an admin unlocks.
    pub lockout_reset_secs: Option<u64>,
    /// Steps or counters searched by [`resync`] (and the largest drift accepted).
    pub resync_window: u32,
}

impl Default for Policy {
    /// ±1 step, 10 counters of HOTP look-ahead, lock after 10 failures (privacyIDEA's default,
    /// far below NIST's ceiling of 100), lock lifts after 15 minutes, resync over ±100 steps.
    fn default() -> Self {
        Self {
            totp_window: TotpWindow::RFC_DEFAULT,
            hotp_look_ahead: 10,
            max_failures: 10,
            lockout_reset_secs: Some(15 * 60),
            resync_window: 100,
        }
    }
}

/// What the server remembers about a token between validations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenState {
    /// Disabled tokens accept nothing.
    pub enabled: bool,
    /// HOTP: the next counter expected.
    pub counter: u64,
    /// TOTP: the last step accepted; codes at or before it are replays.
    pub last_step: Option<u64>,
    /// TOTP: how many steps the token's clock runs ahead (positive) or behind (negative).
    pub drift: i64,
    /// Consecutive failures.
    pub failures: u32,
    /// When the token was locked (Unix seconds).
    pub locked_at: Option<u64>,
}

impl TokenState {
    /// A freshly enrolled token.
    pub fn new(counter: u64) -> Self {
        Self { enabled: true, counter, ..Self::default() }
    }

    /// True when failures have locked the token and the lock has not lifted (see [`Lockout`]).
    pub fn is_locked(&self, now: u64, policy: &Policy) -> bool {
        self.lockout().is_locked(now, policy)
    }

    /// The state after a failed attempt (wrong code, wrong PIN, replay).
    pub fn after_failure(self, now: u64, policy: &Policy) -> Self {
        let Lockout { failures, locked_at } = self.lockout().after_failure(now, policy);
        Self { failures, locked_at, ..self }
    }

    /// The token's failure count and lock.
    pub fn lockout(&self) -> Lockout {
        Lockout { failures: self.failures, locked_at: self.locked_at }
    }

    /// The state after a success or an administrator's unlock.
    pub fn unlocked(self) -> Self {
        Self { failures: 0, locked_at: None, ..self }
    }
}

/// Consecutive failures and the lock they caused: a token's, or a user's password's (a wrong
/// password locks the user like a wrong code locks a token, whether or not the user has a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lockout {
    /// Consecutive failures.
    pub failures: u32,
    /// When the lock began (Unix seconds).
    pub locked_at: Option<u64>,
}

impl Lockout {
    /// True when failures have locked and the lock has not lifted.
    ///
    /// The first lock (at `max_failures` consecutive failures) lasts `lockout_reset_secs`; once it
    /// lifts, every further failure locks again for twice as long as the one before (at most a
    /// day); [`HARD_LOCK_FAILURES`] consecutive failures lock until an administrator unlocks. Only a
    /// success or an unlock clears the count, so guessing is bounded for good (NIST SP 800-63B).
    pub fn is_locked(&self, now: u64, policy: &Policy) -> bool {
        let Some(at) = self.locked_at else { return false };
        if self.failures >= HARD_LOCK_FAILURES {
            return true;
        }
        let Some(base) = policy.lockout_reset_secs else { return true };
        let escalation = self.failures.saturating_sub(policy.max_failures).min(16);
        let duration = base.saturating_mul(1u64 << escalation).min(MAX_LOCK_SECS.max(base));
        now < at.saturating_add(duration)
    }

    /// The lockout after one more failure.
    #[must_use]
    pub fn after_failure(mut self, now: u64, policy: &Policy) -> Self {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= policy.max_failures {
            self.locked_at = Some(now);
        }
        self
    }
}

/// Consecutive failures after which only an administrator can unlock (NIST SP 800-63B's ceiling).
pub const HARD_LOCK_FAILURES: u32 = 100;
/// Longest automatic lock, in seconds (escalation stops doubling here).
pub const MAX_LOCK_SECS: u64 = 24 * 60 * 60;

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The token is disabled.
    Disabled,
    /// Too many failures; the token is locked.
    Locked,
    /// The code matches no step or counter in the window.
    WrongCode,
    /// The code was valid but its step was already used.
    Replayed,
}

impl RejectReason {
    /// The snake_case name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Locked => "locked",
            Self::WrongCode => "wrong_code",
            Self::Replayed => "replayed",
        }
    }
}

/// The outcome of checking one code against one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the time step (TOTP, Steam) or counter (HOTP) the code belongs to.
    Accepted {
        /// Step or counter.
        matched: u64,
    },
    /// Refused.
    Rejected(RejectReason),
}

/// A verdict and the state to store (unchanged for disabled and locked tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// Accepted or why not.
    pub verdict: Verdict,
    /// The token's next state.
    pub next: TokenState,
}

/// Checks `passcode` against a token. `method` carries the algorithm, digits and period (its HOTP
/// counter is ignored: `state.counter` is authoritative).
pub fn verify(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: TokenState,
    passcode: &str,
    now: u64,
    policy: &Policy,
) -> Verification {
    check(secret, method, state, passcode, now, policy, Carrier::Typed)
}

/// Checks a code carried inside a signed, single-use message (a One Swipe code) that says the
/// device made it at `made_at` by its own clock. The code is checked at that moment, not at the
/// server's: the signature vouches for the time, and the message's own expiry (checked by the
/// caller) bounds how long it lives, so a code shown for two minutes works for two minutes. The
/// token's learnt drift is neither applied nor changed, as the device's clock is not being guessed.
///
/// The message's nonce already guarantees single use: a time step at or before the last accepted
/// one is not a replay here, so two such messages within one step both pass. An accepted step
/// still advances `last_step` (never backwards), so the same code can never be used again as a
/// typed passcode. Locks and failures are counted at the server's `now`.
pub fn verify_in_single_use_message(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: TokenState,
    passcode: &str,
    made_at: u64,
    now: u64,
    policy: &Policy,
) -> Verification {
    check(secret, method, state, passcode, now, policy, Carrier::SignedMessage { made_at })
}

/// Checks a typed passcode against a delivered (SMS or email) token: only the counters in
/// `accepted` can match, so a code that was never sent, or one of a voided batch, is a wrong code.
/// An accepted pre-loaded code moves the next counter past it (earlier unused codes are void); a
/// challenge's code leaves the counter alone (the challenge is single use); a Daycode may be used
/// again until its period ends. Failures and locks count as for any token.
pub fn verify_delivered(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: TokenState,
    accepted: &Accepted,
    passcode: &str,
    now: u64,
    policy: &Policy,
) -> Verification {
    let rejected = |reason, next| Verification { verdict: Verdict::Rejected(reason), next };
    if let Some(refused) = refused_unchecked(state, now, policy) {
        return refused;
    }
    let (first, look_ahead) = match accepted {
        Accepted::Sent(range) if range.is_empty() => {
            return rejected(RejectReason::WrongCode, state.after_failure(now, policy));
        }
        Accepted::Sent(range) => (range.start, u32::try_from(range.end - range.start - 1).unwrap_or(0)),
        Accepted::Challenge(counter) | Accepted::Period(counter) => (*counter, 0),
    };
    let look_ahead = look_ahead.min(MAX_HOTP_LOOK_AHEAD);
    let (OtpMethod::Hotp { algorithm, digits, .. } | OtpMethod::Totp { algorithm, digits, .. }) = *method
    else {
        return rejected(RejectReason::WrongCode, state.after_failure(now, policy));
    };
    match verify_hotp(secret, algorithm, digits, passcode, first, look_ahead) {
        Some(matched) => {
            let next = match accepted {
                Accepted::Sent(_) => TokenState { counter: matched.saturating_add(1), ..state.unlocked() },
                Accepted::Challenge(_) => state.unlocked(),
                Accepted::Period(period) => TokenState { last_step: Some(*period), ..state.unlocked() },
            };
            Verification { verdict: Verdict::Accepted { matched }, next }
        }
        None => rejected(RejectReason::WrongCode, state.after_failure(now, policy)),
    }
}

/// A disabled or locked token refuses any code without looking at it, and its state stays as it is.
fn refused_unchecked(state: TokenState, now: u64, policy: &Policy) -> Option<Verification> {
    let reason = if !state.enabled {
        RejectReason::Disabled
    } else if state.is_locked(now, policy) {
        RejectReason::Locked
    } else {
        return None;
    };
    Some(Verification { verdict: Verdict::Rejected(reason), next: state })
}

/// How the code reached the server, which decides the moment it is checked at and whether an
/// already-used time step is a replay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// Typed by the user: checked at the server's clock corrected by the token's drift; a used
    /// step is a replay.
    Typed,
    /// Inside a signed single-use message made at `made_at` by the device's clock.
    SignedMessage { made_at: u64 },
}

fn check(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: TokenState,
    passcode: &str,
    now: u64,
    policy: &Policy,
    carrier: Carrier,
) -> Verification {
    let rejected = |reason, next| Verification { verdict: Verdict::Rejected(reason), next };
    if let Some(refused) = refused_unchecked(state, now, policy) {
        return refused;
    }
    let used = |step: u64| state.last_step.is_some_and(|last| step <= last);
    match find_match(secret, method, &state, passcode, now, policy, carrier) {
        Some(Match::Counter(counter)) => Verification {
            verdict: Verdict::Accepted { matched: counter },
            next: TokenState { counter: counter.saturating_add(1), ..state.unlocked() },
        },
        Some(Match::Step { step, .. }) if used(step) && carrier == Carrier::Typed => {
            rejected(RejectReason::Replayed, state.after_failure(now, policy))
        }
        Some(Match::Step { step, drift }) => Verification {
            verdict: Verdict::Accepted { matched: step },
            next: TokenState { last_step: state.last_step.max(Some(step)), drift, ..state.unlocked() },
        },
        None => rejected(RejectReason::WrongCode, state.after_failure(now, policy)),
    }
}

enum Match {
    Counter(u64),
    Step { step: u64, drift: i64 },
}

fn find_match(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: &TokenState,
    passcode: &str,
    now: u64,
    policy: &Policy,
    carrier: Carrier,
) -> Option<Match> {
    let bound = i64::from(policy.resync_window.min(MAX_RESYNC_WINDOW));
    let drift = state.drift.clamp(-bound, bound);
    let shifted_time = |period: u32| match carrier {
        Carrier::Typed => shift(now, drift.saturating_mul(i64::from(period))),
        Carrier::SignedMessage { made_at } => made_at,
    };
    let with_drift = |found: crate::otp::TotpMatch| match carrier {
        Carrier::Typed => Match::Step { step: found.step, drift: drift + found.drift },
        Carrier::SignedMessage { .. } => Match::Step { step: found.step, drift: state.drift },
    };
    match *method {
        OtpMethod::Hotp { algorithm, digits, .. } => verify_hotp(
            secret,
            algorithm,
            digits,
            passcode,
            state.counter,
            policy.hotp_look_ahead.min(MAX_HOTP_LOOK_AHEAD),
        )
        .map(Match::Counter),
        OtpMethod::Totp { algorithm, digits, period } => verify_totp(
            secret,
            algorithm,
            digits,
            period,
            passcode,
            shifted_time(period.get()),
            policy.totp_window,
        )
        .map(with_drift),
        OtpMethod::Steam { period } => {
            verify_steam(secret, period, passcode, shifted_time(period.get()), policy.totp_window)
                .map(with_drift)
        }
    }
}

fn shift(time: u64, seconds: i64) -> u64 {
    if seconds >= 0 {
        time.saturating_add(seconds.unsigned_abs())
    } else {
        time.saturating_sub(seconds.unsigned_abs())
    }
}

/// Why a resync failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResyncError {
    /// No two consecutive steps or counters in the window produce the two codes.
    #[error("the two codes are not consecutive codes of this token within the resync window")]
    NoMatch,
}

/// Finds where two consecutive codes sit and returns the state that expects what follows them:
/// for HOTP the counter after the second code, for TOTP the drift of the token's clock (and the
/// second code's step marked as used). Also lifts any lock, as an administrator asked for it.
pub fn resync(
    secret: &SecretBytes,
    method: &OtpMethod,
    state: TokenState,
    first: &str,
    second: &str,
    now: u64,
    policy: &Policy,
) -> Result<TokenState, ResyncError> {
    let window = policy.resync_window.min(MAX_RESYNC_WINDOW);
    match *method {
        OtpMethod::Hotp { algorithm, digits, .. } => {
            let mut counter = state.counter;
            let last = state.counter.saturating_add(u64::from(window));
            while counter < last {
                let matched = verify_hotp(secret, algorithm, digits, first, counter, 0).is_some()
                    && verify_hotp(secret, algorithm, digits, second, counter.saturating_add(1), 0).is_some();
                if matched {
                    return Ok(TokenState { counter: counter.saturating_add(2), ..state.unlocked() });
                }
                counter += 1;
            }
            Err(ResyncError::NoMatch)
        }
        OtpMethod::Totp { period, .. } | OtpMethod::Steam { period } => {
            let wide = TotpWindow { behind: window, ahead: window };
            let check = |code: &str, time: u64| match *method {
                OtpMethod::Totp { algorithm, digits, period } => verify_totp(
                    secret,
                    algorithm,
                    digits,
                    period,
                    code,
                    time,
                    TotpWindow { behind: 0, ahead: 0 },
                ),
                _ => verify_steam(secret, period, code, time, TotpWindow { behind: 0, ahead: 0 }),
            };
            let current = period.step_at(now);
            let seconds = u64::from(period.get());
            let first_step = current.saturating_sub(u64::from(wide.behind));
            let last_step = current.saturating_add(u64::from(wide.ahead));
            (first_step..last_step)
                .find(|step| {
                    check(first, step.saturating_mul(seconds)).is_some()
                        && check(second, step.saturating_add(1).saturating_mul(seconds)).is_some()
                })
                .map(|step| {
                    let second_step = step.saturating_add(1);
                    let drift =
                        i64::try_from(second_step).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(0);
                    let last_step = state.last_step.map_or(second_step, |last| last.max(second_step));
                    TokenState { last_step: Some(last_step), drift, ..state.unlocked() }
                })
                .ok_or(ResyncError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Digits, Period, hotp, totp};

    const NOW: u64 = 1_700_000_015;

    fn seed() -> SecretBytes {
        SecretBytes::from_slice(b"12345678901234567890")
    }

    fn totp_method() -> OtpMethod {
        OtpMethod::default_totp()
    }

    fn hotp_method() -> OtpMethod {
        OtpMethod::Hotp { algorithm: Algorithm::Sha1, digits: Digits::SIX, counter: 0 }
    }

    fn code_at_step(step: u64) -> String {
        totp(&seed(), Algorithm::Sha1, Digits::SIX, Period::THIRTY_SECONDS, step * 30).expose().to_owned()
    }

    fn hotp_code(counter: u64) -> String {
        hotp(&seed(), Algorithm::Sha1, Digits::SIX, counter).expose().to_owned()
    }

    fn current_step() -> u64 {
        NOW / 30
    }

    #[test]
    fn accepts_once_then_refuses_the_replay() {
        let policy = Policy::default();
        let code = code_at_step(current_step());
        let first = verify(&seed(), &totp_method(), TokenState::new(0), &code, NOW, &policy);
        assert_eq!(first.verdict, Verdict::Accepted { matched: current_step() });
        assert_eq!(first.next.last_step, Some(current_step()));
        let again = verify(&seed(), &totp_method(), first.next, &code, NOW, &policy);
        assert_eq!(again.verdict, Verdict::Rejected(RejectReason::Replayed));
        assert_eq!(again.next.failures, 1);
    }

    #[test]
    fn codes_in_single_use_messages_pass_twice_but_burn_the_step_for_passcodes() {
        let policy = Policy::default();
        let code = code_at_step(current_step());
        let check =
            |state| verify_in_single_use_message(&seed(), &totp_method(), state, &code, NOW, NOW, &policy);
        let first = check(TokenState::new(0));
        assert_eq!(first.verdict, Verdict::Accepted { matched: current_step() });
        let second = check(first.next);
        assert_eq!(second.verdict, Verdict::Accepted { matched: current_step() });
        assert_eq!(second.next.last_step, Some(current_step()));
        let typed = verify(&seed(), &totp_method(), second.next, &code, NOW, &policy);
        assert_eq!(typed.verdict, Verdict::Rejected(RejectReason::Replayed));
        let older = check(TokenState { last_step: Some(current_step() + 1), ..TokenState::new(0) });
        assert_eq!(older.next.last_step, Some(current_step() + 1), "never moves back");
        let wrong =
            verify_in_single_use_message(&seed(), &totp_method(), first.next, "000000", NOW, NOW, &policy);
        assert_eq!(wrong.verdict, Verdict::Rejected(RejectReason::WrongCode));
        assert_eq!((wrong.next.failures, wrong.next.last_step), (1, Some(current_step())));
    }

    #[test]
    fn codes_in_single_use_messages_are_checked_when_the_device_made_them() {
        let policy = Policy::default();
        let code = code_at_step(current_step());
        let drifted = TokenState { drift: 3, ..TokenState::new(0) };
        let later = NOW + 110;
        let check = |state, made_at| {
            verify_in_single_use_message(&seed(), &totp_method(), state, &code, made_at, later, &policy)
        };
        let made_now = check(drifted, NOW);
        assert_eq!(made_now.verdict, Verdict::Accepted { matched: current_step() });
        assert_eq!(made_now.next.drift, 3, "the learnt drift is kept, not replaced");
        let typed_later = verify(&seed(), &totp_method(), TokenState::new(0), &code, later, &policy);
        assert_eq!(typed_later.verdict, Verdict::Rejected(RejectReason::WrongCode), "typed, it is stale");
        let claimed_later = check(TokenState::new(0), later);
        assert_eq!(claimed_later.verdict, Verdict::Rejected(RejectReason::WrongCode), "another moment");
        assert_eq!(claimed_later.next.failures, 1);
    }

    #[test]
    fn an_older_step_after_a_newer_one_is_a_replay() {
        let policy = Policy::default();
        let newer = verify(
            &seed(),
            &totp_method(),
            TokenState::new(0),
            &code_at_step(current_step() + 1),
            NOW,
            &policy,
        );
        assert!(matches!(newer.verdict, Verdict::Accepted { .. }));
        let older = verify(&seed(), &totp_method(), newer.next, &code_at_step(current_step()), NOW, &policy);
        assert_eq!(older.verdict, Verdict::Rejected(RejectReason::Replayed));
    }

    #[test]
    fn wrong_codes_lock_after_max_failures_and_the_lock_lifts_later() {
        let policy = Policy { max_failures: 3, lockout_reset_secs: Some(600), ..Policy::default() };
        let mut state = TokenState::new(0);
        for attempt in 1..=3 {
            let result = verify(&seed(), &totp_method(), state, "000000", NOW, &policy);
            assert_eq!(result.verdict, Verdict::Rejected(RejectReason::WrongCode));
            state = result.next;
            assert_eq!(state.failures, attempt);
        }
        assert_eq!(state.locked_at, Some(NOW));
        let good = code_at_step(current_step());
        let locked = verify(&seed(), &totp_method(), state, &good, NOW + 1, &policy);
        assert_eq!(locked.verdict, Verdict::Rejected(RejectReason::Locked));
        assert_eq!(locked.next, state, "a locked token's state does not change");

        let later = NOW + 600;
        let lifted = verify(&seed(), &totp_method(), state, &code_at_step(later / 30), later, &policy);
        assert!(matches!(lifted.verdict, Verdict::Accepted { .. }));
        assert_eq!((lifted.next.failures, lifted.next.locked_at), (0, None), "a success clears the count");
    }

    #[test]
    fn failures_after_a_lock_lifts_lock_again_for_twice_as_long() {
        let policy = Policy { max_failures: 3, lockout_reset_secs: Some(600), ..Policy::default() };
        let mut state = TokenState::new(0);
        for _ in 0..3 {
            state = state.after_failure(NOW, &policy);
        }
        assert!(state.is_locked(NOW + 599, &policy) && !state.is_locked(NOW + 600, &policy));
        let again = state.after_failure(NOW + 600, &policy);
        assert_eq!(again.failures, 4, "the lock lifting does not clear the count");
        assert!(again.is_locked(NOW + 600 + 1199, &policy) && !again.is_locked(NOW + 600 + 1200, &policy));
        let third = again.after_failure(NOW + 1800, &policy);
        assert!(third.is_locked(NOW + 1800 + 2399, &policy));
        let mut many = third;
        for _ in 0..40 {
            many = many.after_failure(NOW, &policy);
        }
        assert!(!many.is_locked(NOW + MAX_LOCK_SECS, &policy), "automatic locks last at most a day");
    }

    #[test]
    fn a_hundred_failures_lock_until_an_admin_unlocks() {
        let policy = Policy::default();
        let mut state = TokenState::new(0);
        for _ in 0..HARD_LOCK_FAILURES {
            state = state.after_failure(NOW, &policy);
        }
        assert!(state.is_locked(NOW + 10 * 365 * 86_400, &policy));
        assert!(!state.unlocked().is_locked(NOW, &policy));
    }

    #[test]
    fn locks_without_reset_need_an_admin() {
        let policy = Policy { max_failures: 1, lockout_reset_secs: None, ..Policy::default() };
        let state = TokenState::new(0).after_failure(NOW, &policy);
        assert!(state.is_locked(NOW + 10 * 365 * 86_400, &policy));
        assert!(!state.unlocked().is_locked(NOW, &policy));
    }

    #[test]
    fn disabled_tokens_accept_nothing() {
        let state = TokenState { enabled: false, ..TokenState::new(0) };
        let result =
            verify(&seed(), &totp_method(), state, &code_at_step(current_step()), NOW, &Policy::default());
        assert_eq!(result.verdict, Verdict::Rejected(RejectReason::Disabled));
        assert_eq!(result.next, state);
    }

    #[test]
    fn the_window_follows_recorded_drift() {
        let policy = Policy::default();
        let ahead = current_step() + 5;
        let plain = verify(&seed(), &totp_method(), TokenState::new(0), &code_at_step(ahead), NOW, &policy);
        assert_eq!(plain.verdict, Verdict::Rejected(RejectReason::WrongCode));
        let drifted = TokenState { drift: 5, ..TokenState::new(0) };
        let result = verify(&seed(), &totp_method(), drifted, &code_at_step(ahead + 1), NOW, &policy);
        assert_eq!(result.verdict, Verdict::Accepted { matched: ahead + 1 });
        assert_eq!(result.next.drift, 6, "the recorded drift follows the device");
    }

    #[test]
    fn hotp_accepts_within_look_ahead_and_moves_the_counter() {
        let policy = Policy { hotp_look_ahead: 3, ..Policy::default() };
        let state = TokenState::new(5);
        let result = verify(&seed(), &hotp_method(), state, &hotp_code(8), NOW, &policy);
        assert_eq!(result.verdict, Verdict::Accepted { matched: 8 });
        assert_eq!(result.next.counter, 9);
        let too_far = verify(&seed(), &hotp_method(), state, &hotp_code(9), NOW, &policy);
        assert_eq!(too_far.verdict, Verdict::Rejected(RejectReason::WrongCode));
        let used = verify(&seed(), &hotp_method(), result.next, &hotp_code(8), NOW, &policy);
        assert_eq!(used.verdict, Verdict::Rejected(RejectReason::WrongCode));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let policy = Policy::default();
        let state = TokenState { failures: 7, ..TokenState::new(0) };
        let result = verify(&seed(), &hotp_method(), state, &hotp_code(0), NOW, &policy);
        assert_eq!(result.next.failures, 0);
    }

    #[test]
    fn extreme_counters_and_policies_do_not_overflow() {
        let absurd = Policy { hotp_look_ahead: u32::MAX, resync_window: u32::MAX, ..Policy::default() };
        let near_end = TokenState::new(u64::MAX - 1);
        let result = verify(&seed(), &hotp_method(), near_end, "000000", NOW, &absurd);
        let resynced = resync(&seed(), &hotp_method(), near_end, "000000", "111111", NOW, &absurd);
        assert_eq!(resynced, Err(ResyncError::NoMatch));
        assert!(result.next.counter >= near_end.counter, "the counter never moves back");
        let drifted = TokenState { drift: i64::MIN, ..TokenState::new(0) };
        let _ = verify(&seed(), &totp_method(), drifted, "000000", 0, &absurd);
    }

    #[test]
    fn totp_resync_never_moves_the_last_accepted_step_back() {
        let policy = Policy::default();
        let used = TokenState { last_step: Some(current_step()), ..TokenState::new(0) };
        let behind = current_step() - 10;
        let resynced = resync(
            &seed(),
            &totp_method(),
            used,
            &code_at_step(behind),
            &code_at_step(behind + 1),
            NOW,
            &policy,
        )
        .unwrap();
        assert_eq!(resynced.last_step, Some(current_step()));
        // Nine steps later the drifted window reaches the step accepted before the resync.
        let later = NOW + 9 * 30;
        let replay = verify(&seed(), &totp_method(), resynced, &code_at_step(current_step()), later, &policy);
        assert_eq!(replay.verdict, Verdict::Rejected(RejectReason::Replayed));
    }

    #[test]
    fn resync_finds_hotp_counter_and_totp_drift() {
        let policy = Policy { resync_window: 100, ..Policy::default() };
        let hotp_state =
            resync(&seed(), &hotp_method(), TokenState::new(0), &hotp_code(40), &hotp_code(41), NOW, &policy)
                .unwrap();
        assert_eq!(hotp_state.counter, 42);
        let beyond = resync(
            &seed(),
            &hotp_method(),
            TokenState::new(0),
            &hotp_code(140),
            &hotp_code(141),
            NOW,
            &policy,
        );
        assert_eq!(beyond, Err(ResyncError::NoMatch));
        let not_consecutive =
            resync(&seed(), &hotp_method(), TokenState::new(0), &hotp_code(40), &hotp_code(42), NOW, &policy);
        assert_eq!(not_consecutive, Err(ResyncError::NoMatch));

        let behind = current_step() - 37;
        let locked = TokenState { failures: 10, locked_at: Some(NOW), ..TokenState::new(0) };
        let totp_state = resync(
            &seed(),
            &totp_method(),
            locked,
            &code_at_step(behind),
            &code_at_step(behind + 1),
            NOW,
            &policy,
        )
        .unwrap();
        assert_eq!(totp_state.drift, -36);
        assert_eq!(totp_state.last_step, Some(behind + 1));
        assert_eq!((totp_state.failures, totp_state.locked_at), (0, None));
        let next =
            verify(&seed(), &totp_method(), totp_state, &code_at_step(current_step() - 35), NOW, &policy);
        assert!(matches!(next.verdict, Verdict::Accepted { .. }), "{next:?}");
    }

    fn delivered(state: TokenState, accepted: &Accepted, passcode: &str) -> Verification {
        let policy = Policy::default();
        verify_delivered(&seed(), &hotp_method(), state, accepted, passcode, NOW, &policy)
    }

    #[test]
    fn a_preloaded_token_refuses_a_code_that_was_never_sent_and_voids_the_ones_it_skips() {
        let state = TokenState::new(4);
        let unsent = delivered(state, &Accepted::Sent(4..7), &hotp_code(7));
        assert_eq!(unsent.verdict, Verdict::Rejected(RejectReason::WrongCode), "counter 7 was never sent");
        assert_eq!(unsent.next.failures, 1);
        let third = delivered(state, &Accepted::Sent(4..7), &hotp_code(6));
        assert_eq!((third.verdict, third.next.counter), (Verdict::Accepted { matched: 6 }, 7));
        let none_out = delivered(state, &Accepted::Sent(4..4), &hotp_code(4));
        assert_eq!(none_out.verdict, Verdict::Rejected(RejectReason::WrongCode));
    }

    #[test]
    fn a_challenge_accepts_its_one_counter_and_a_daycode_can_be_used_again() {
        let state = TokenState::new(0);
        let other = delivered(state, &Accepted::Challenge(9), &hotp_code(8));
        assert_eq!(other.verdict, Verdict::Rejected(RejectReason::WrongCode));
        let right = delivered(state, &Accepted::Challenge(9), &hotp_code(9));
        assert_eq!((right.verdict, right.next.counter), (Verdict::Accepted { matched: 9 }, 0));
        let first = delivered(state, &Accepted::Period(20_000), &hotp_code(20_000));
        let again = delivered(first.next, &Accepted::Period(20_000), &hotp_code(20_000));
        assert_eq!(
            again.verdict,
            Verdict::Accepted { matched: 20_000 },
            "a Daycode is reusable in its period"
        );
        let next_period = delivered(again.next, &Accepted::Period(20_001), &hotp_code(20_000));
        assert_eq!(next_period.verdict, Verdict::Rejected(RejectReason::WrongCode));
    }
}
