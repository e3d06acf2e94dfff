//! The app's one piece of state: which vault file, and whether it is unlocked.
//!
//! The unlocked vault (which holds the master key) lives only here, behind a mutex, and is dropped
//! (zeroizing the key) on lock, when the user has been idle for the auto-lock time, and when the
//! app exits. Activity is what the user does, reported by the web view; the UI's own refreshes of
//! the code list do not count, so an app left open locks itself.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tessera_core::vault::{UnlockedVault, VaultStore};
use tessera_platform::OsKeyStore;

use crate::error::{CommandError, CommandResult};

/// Idle time after which the vault locks itself, unless `TESSERA_AUTO_LOCK_SECS` says otherwise.
pub const DEFAULT_AUTO_LOCK: Duration = Duration::from_secs(5 * 60);
/// Environment variable overriding [`DEFAULT_AUTO_LOCK`], in seconds.
pub const AUTO_LOCK_ENV: &str = "TESSERA_AUTO_LOCK_SECS";
/// How often the app looks whether the user has been idle for the auto-lock time.
pub const IDLE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The vault file, the OS key store, and the unlocked vault while there is one.
pub struct Session {
    store: VaultStore,
    keystore: OsKeyStore,
    auto_lock: Duration,
    state: Mutex<State>,
    on_idle_lock: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

struct State {
    unlocked: Option<UnlockedVault>,
    last_activity: Instant,
}

impl Session {
    /// A locked session for the vault at `store`.
    pub fn new(store: VaultStore, keystore: OsKeyStore, auto_lock: Duration) -> Self {
        Self {
            store,
            keystore,
            auto_lock,
            state: Mutex::new(State { unlocked: None, last_activity: Instant::now() }),
            on_idle_lock: OnceLock::new(),
        }
    }

    /// Calls `notify` whenever the vault locks itself for being idle, wherever that is noticed
    /// (the idle watcher, or a command arriving after the auto-lock time). Set once.
    pub fn on_idle_lock(&self, notify: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_idle_lock.set(Box::new(notify));
    }

    /// The auto-lock time from [`AUTO_LOCK_ENV`], else [`DEFAULT_AUTO_LOCK`].
    pub fn auto_lock_from_environment() -> Duration {
        std::env::var(AUTO_LOCK_ENV)
            .ok()
            .and_then(|secs| secs.trim().parse().ok())
            .filter(|secs| *secs > 0)
            .map_or(DEFAULT_AUTO_LOCK, Duration::from_secs)
    }

    /// The vault file.
    pub fn store(&self) -> &VaultStore {
        &self.store
    }

    /// The OS key store.
    pub fn keystore(&self) -> &OsKeyStore {
        &self.keystore
    }

    /// How long the user may be idle before the vault locks.
    pub fn auto_lock(&self) -> Duration {
        self.auto_lock
    }

    /// Keeps `vault` as the unlocked vault, replacing any other.
    pub fn set_unlocked(&self, vault: UnlockedVault) {
        let mut state = self.lock_state();
        state.unlocked = Some(vault);
        state.last_activity = Instant::now();
    }

    /// Locks the vault; true if it was unlocked.
    pub fn lock(&self) -> bool {
        self.lock_state().unlocked.take().is_some()
    }

    /// True while a vault is unlocked (and not yet idle past the auto-lock time).
    pub fn is_unlocked(&self) -> bool {
        self.lock_if_idle();
        self.lock_state().unlocked.is_some()
    }

    /// Records that the user did something, postponing the auto-lock (a vault already idle past
    /// it locks first: activity never revives it).
    pub fn note_activity(&self) {
        self.lock_if_idle();
        self.lock_state().last_activity = Instant::now();
    }

    /// Locks the vault if the user has been idle for the auto-lock time, and says so to the
    /// [`Session::on_idle_lock`] listener; true if it did.
    pub fn lock_if_idle(&self) -> bool {
        let locked = {
            let mut state = self.lock_state();
            let idle = state.unlocked.is_some() && state.last_activity.elapsed() >= self.auto_lock;
            if idle {
                state.unlocked = None;
            }
            idle
        };
        if locked && let Some(notify) = self.on_idle_lock.get() {
            notify();
        }
        locked
    }

    /// Runs `action` on the unlocked vault; a locked (or idle-expired) vault is a `locked` error.
    pub fn with_vault<R>(&self, action: impl FnOnce(&UnlockedVault) -> CommandResult<R>) -> CommandResult<R> {
        self.lock_if_idle();
        let state = self.lock_state();
        let vault = state.unlocked.as_ref().ok_or_else(CommandError::locked)?;
        action(vault)
    }

    /// [`Session::with_vault`] for something the user asked for: it also counts as activity.
    pub fn act<R>(&self, action: impl FnOnce(&UnlockedVault) -> CommandResult<R>) -> CommandResult<R> {
        let result = self.with_vault(action);
        self.note_activity();
        result
    }

    /// The state, even if a panic elsewhere poisoned the mutex (the state stays consistent: every
    /// change to it is a single assignment).
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::secret::SecretString;
    use tessera_core::vault::{Credential, KdfParams};

    use super::*;

    const FAST_KDF: KdfParams = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };

    fn unlocked_session(auto_lock: Duration) -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let store = VaultStore::new(dir.path().join("vault.tessera"));
        let passphrase = SecretString::new("correct horse battery".into());
        let vault = store.create(None, Some((&passphrase, FAST_KDF))).unwrap();
        let session =
            Session::new(store.clone(), OsKeyStore::with_service("tessera-desktop-test"), auto_lock);
        session.set_unlocked(vault);
        assert!(store.unlock(Credential::Passphrase(&passphrase)).is_ok());
        (dir, session)
    }

    #[test]
    fn an_idle_session_locks_itself_and_refuses_with_locked() {
        let (_dir, session) = unlocked_session(Duration::from_millis(50));
        assert!(session.with_vault(|_| Ok(())).is_ok());
        std::thread::sleep(Duration::from_millis(80));
        let error = session.with_vault(|_| Ok(())).unwrap_err();
        assert_eq!(error.kind, tessera_core::error::ErrorCode::Locked);
        assert!(!session.is_unlocked());
    }

    #[test]
    fn an_idle_lock_is_reported_once_wherever_it_is_noticed_and_activity_does_not_revive_it() {
        let (_dir, session) = unlocked_session(Duration::from_millis(50));
        let reported = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = reported.clone();
        session.on_idle_lock(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(80));
        assert!(session.act(|_| Ok(())).is_err(), "a command after the auto-lock time is refused");
        assert!(
            session.with_vault(|_| Ok(())).is_err(),
            "and the activity it noted did not revive the vault"
        );
        assert!(!session.lock_if_idle());
        assert_eq!(reported.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn activity_postpones_the_auto_lock_but_list_refreshes_do_not() {
        let (_dir, session) = unlocked_session(Duration::from_millis(200));
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(80));
            session.act(|_| Ok(())).unwrap();
        }
        assert!(session.is_unlocked(), "320 ms of activity every 80 ms kept it open");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(80));
            let _ = session.with_vault(|_| Ok(()));
        }
        assert!(!session.is_unlocked());
    }

    #[test]
    fn lock_reports_whether_it_was_unlocked() {
        let (_dir, session) = unlocked_session(DEFAULT_AUTO_LOCK);
        assert!(session.lock());
        assert!(!session.lock());
    }
}
