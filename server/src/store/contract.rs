//! The store's contract, run on SQLite and on PostgreSQL (when `TESSERA_TEST_POSTGRES_URL` names a
//! server, as `scripts/test.sh` arranges): the same calls must give the same answers on both, so
//! the service above never needs to know which database it has. Without a PostgreSQL URL the test
//! fails unless `TESSERA_TEST_SQLITE_ONLY=1` says that is intended (`scripts/check.sh` does).

use tessera_core::delivery::DeliveryMode;
use tessera_core::push::{NumberMatching, WakeAddress};
use tessera_core::verifier::{Lockout, TokenState};

use super::*;

const AUDIT: NewAudit<'static> = NewAudit {
    at_ms: 1,
    actor: "test",
    action: "contract",
    username: Some("ann"),
    serial: None,
    client_ip: None,
    result: AuditResult::Ok,
    reason: None,
};

async fn contract(store: &Store) {
    let ann = store.create_user("ann", None, None, None, 10, &AUDIT).await.unwrap();
    assert!(
        matches!(store.create_user("ann", None, None, None, 10, &AUDIT).await, Err(StoreError::Conflict(_))),
        "names are unique"
    );
    store.create_token(token_like("TOTP-CONTRACT", ann.id), &AUDIT).await.unwrap();
    let (user, tokens) = store.user_with_tokens("ann").await.unwrap().unwrap();
    assert_eq!((user.id, tokens.len()), (ann.id, 1));
    let token = &tokens[0];
    assert_eq!(
        (token.kind, token.state, token.description.as_deref()),
        (TokenKind::Totp, TokenState { enabled: true, ..TokenState::default() }, Some("desk"))
    );
    assert!(store.user_with_tokens("nobody").await.unwrap().is_none());

    let failed = TokenState { failures: 1, ..token.state };
    let update = token.moved_to(failed, None);
    let first = NewAudit { reason: Some("first"), ..AUDIT };
    assert!(
        store.commit(std::slice::from_ref(&update), None, &first).await.unwrap(),
        "the version read is current"
    );
    let stale = NewAudit { reason: Some("stale"), ..AUDIT };
    assert!(!store.commit(&[update], None, &stale).await.unwrap(), "a moved version refuses the write");
    let stored = store.token("TOTP-CONTRACT").await.unwrap().unwrap();
    assert_eq!((stored.state.failures, stored.version), (1, token.version + 1));

    let lockout = Lockout { failures: 1, locked_at: None };
    let wrong = UserChange::WrongPassword { user_id: ann.id, expected_failures: 0, lockout };
    let second = NewAudit { reason: Some("second"), ..AUDIT };
    assert!(store.commit(&[], Some(&wrong), &second).await.unwrap());
    assert!(!store.commit(&[], Some(&wrong), &stale).await.unwrap(), "the failure count moved");
    assert_eq!(store.user("ann").await.unwrap().unwrap().password_lockout, lockout);

    let filter =
        AuditFilter { username: Some("ann".into()), action: Some("contract".into()), ..Default::default() };
    let reasons: Vec<Option<String>> =
        store.audit_entries(&filter).await.unwrap().into_iter().map(|entry| entry.reason).collect();
    assert_eq!(
        reasons,
        [Some("second".into()), Some("first".into()), None, None],
        "newest first, no stale record"
    );

    let transaction = NewTransaction {
        id: "TXCONTRACT",
        user_id: ann.id,
        service: "VPN",
        client_ip: None,
        user_agent: None,
        number_matching: NumberMatching::Type,
        number: Some(42),
        choices: &[],
        created_at: 10,
        expires_at: i64::MAX / 2,
    };
    let limits = PushLimits { max_pending: 1, max_recent: 5, recent_since: 0 };
    assert_eq!(store.create_transaction(&transaction, &limits, &AUDIT).await.unwrap(), Ok(()));
    let again = NewTransaction { id: "TXCONTRACT2", ..transaction };
    assert_eq!(
        store.create_transaction(&again, &limits, &AUDIT).await.unwrap(),
        Err(PushRefusal::TooManyPending)
    );
    let answer = RecordedAnswer {
        id: "TXCONTRACT",
        status: TxStatus::Approved,
        deny_reason: None,
        answered_at: 20,
        answered_by: "TOTP-CONTRACT",
        channel: TxChannel::Push,
    };
    assert!(store.answer_transaction(&answer, None, None, &AUDIT).await.unwrap());
    assert!(!store.answer_transaction(&answer, None, None, &AUDIT).await.unwrap(), "answered once");
    let stored = store.transaction("TXCONTRACT").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.number_matching, stored.number),
        (TxStatus::Approved, NumberMatching::Type, Some(42))
    );
    assert!(store.consume_transaction("TXCONTRACT", ann.id, 30, 10, &AUDIT).await.unwrap());
    assert!(!store.consume_transaction("TXCONTRACT", ann.id, 30, 10, &AUDIT).await.unwrap(), "used once");

    let push = NewToken {
        serial: "PUSH-CONTRACT",
        kind: TokenKind::Push,
        description: None,
        enrollment_code_hash: Some("c0de"),
        enrollment_expires_at: Some(100),
        ..token_like("PUSH-CONTRACT", ann.id)
    };
    store.create_token(push, &AUDIT).await.unwrap();
    let pending = store.token("PUSH-CONTRACT").await.unwrap().unwrap();
    let enrollment = PendingEnrollment { code_hash: "c0de".into(), expires_at: 100 };
    assert_eq!(pending.push, Some(PushDevice::Unregistered(Some(enrollment))));
    let wake = Some(("fcm", "registration-token"));
    assert!(
        !store.register_device(pending.id, "c0de", "key", None, wake, 101, &AUDIT, None).await.unwrap(),
        "expired"
    );
    assert!(
        !store.register_device(pending.id, "bad", "key", None, wake, 50, &AUDIT, None).await.unwrap(),
        "wrong code"
    );
    assert!(
        store
            .register_device(pending.id, "c0de", "key", Some("Pixel"), wake, 50, &AUDIT, None)
            .await
            .unwrap()
    );
    assert!(
        !store.register_device(pending.id, "c0de", "other", None, None, 50, &AUDIT, None).await.unwrap(),
        "once"
    );
    let registered = store.token("PUSH-CONTRACT").await.unwrap().unwrap();
    let device = RegisteredDevice {
        public_key: "key".into(),
        name: Some("Pixel".into()),
        wake: Some(WakeAddress::Fcm("registration-token".into())),
    };
    assert_eq!(registered.push, Some(PushDevice::Registered(device)));
    assert_eq!(
        store.token("TOTP-CONTRACT").await.unwrap().unwrap().push,
        None,
        "only push tokens have a device part"
    );
    outbox(store, ann.id).await;
    calls(store, ann.id).await;

    let batch = vec![
        (NewToken { kind: TokenKind::Hotp, counter: 7, ..token_like("HW-CONTRACT-1", ann.id) }, AUDIT),
        (token_like("TOTP-CONTRACT", ann.id), AUDIT),
    ];
    assert!(
        matches!(store.create_tokens(batch).await, Err(StoreError::Conflict(_))),
        "a taken serial refuses the batch"
    );
    assert!(store.token("HW-CONTRACT-1").await.unwrap().is_none(), "all or nothing");
    let batch =
        vec![(NewToken { kind: TokenKind::Hotp, counter: 7, ..token_like("HW-CONTRACT-1", ann.id) }, AUDIT)];
    store.create_tokens(batch).await.unwrap();
    let imported = store.token("HW-CONTRACT-1").await.unwrap().unwrap();
    assert_eq!((imported.kind, imported.state.counter), (TokenKind::Hotp, 7), "an imported counter is kept");
    registration_codes(store, ann.id).await;
    portal_sessions(store, ann.id).await;
    pending_tokens(store, ann.id).await;
    radius_states(store).await;
}

/// RADIUS challenges: found by hash, taken once, never after they ran out, pruned; a user's reply
/// attributes kept as written.
async fn radius_states(store: &Store) {
    let state = |hash: &str, expires_at| RadiusState {
        state_hash: hash.into(),
        username: "ann".into(),
        client: "vpn".into(),
        transaction_id: Some("TX1".into()),
        push: true,
        expires_at,
    };
    store.put_radius_state(&state("r-1", 200)).await.unwrap();
    store.put_radius_state(&state("r-2", 150)).await.unwrap();
    assert_eq!(store.take_radius_state("r-1", 100).await.unwrap(), Some(state("r-1", 200)));
    assert_eq!(store.take_radius_state("r-1", 100).await.unwrap(), None, "taken once");
    assert_eq!(store.take_radius_state("r-2", 150).await.unwrap(), None, "ran out");
    assert_eq!(store.prune_radius_states(150).await.unwrap(), 1);

    let mut ann = store.user("ann").await.unwrap().unwrap();
    assert!(ann.radius_reply.is_empty());
    ann.radius_reply = vec![
        ReplyAttribute::Class("staff".into()),
        ReplyAttribute::FramedIpAddress([10, 8, 0, 7].into()),
        ReplyAttribute::VendorSpecific { vendor: 9, kind: 1, value: "shell:priv-lvl=15".into() },
    ];
    assert!(store.update_user(&ann, &AUDIT).await.unwrap());
    assert_eq!(store.user("ann").await.unwrap().unwrap().radius_reply, ann.radius_reply);
    ann.radius_reply.clear();
    assert!(store.update_user(&ann, &AUDIT).await.unwrap());
    assert!(store.user("ann").await.unwrap().unwrap().radius_reply.is_empty());
}

/// Portal sessions: found by their hash with the user's name, replaced at a change of stage,
/// touched forward only, ended once, pruned by absolute and idle time.
async fn portal_sessions(store: &Store, user_id: i64) {
    let session = |id: &str, stage| NewPortalSession {
        id_hash: id.into(),
        user_id,
        stage,
        transaction_id: None,
        prompt: None,
        now: 100,
        expires_at: 1_000,
        factor_at: None,
        factor_kind: None,
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("test"),
    };
    store.start_portal_session(&session("s-1", SessionStage::AwaitingApproval), None, None).await.unwrap();
    let signed_in = NewPortalSession {
        factor_at: Some(110),
        factor_kind: Some(TokenKind::Totp),
        now: 110,
        ..session("s-2", SessionStage::SignedIn)
    };
    store.start_portal_session(&signed_in, Some("s-1"), Some(&AUDIT)).await.unwrap();
    assert!(store.portal_session("s-1").await.unwrap().is_none(), "the earlier id ended with it");
    let row = store.portal_session("s-2").await.unwrap().unwrap();
    assert_eq!(
        (row.username.as_str(), row.stage, row.factor_at, row.factor_kind),
        ("ann", SessionStage::SignedIn, Some(110), Some(TokenKind::Totp))
    );
    store.touch_portal_session("s-2", 150).await.unwrap();
    store.touch_portal_session("s-2", 120).await.unwrap();
    assert_eq!(store.portal_session("s-2").await.unwrap().unwrap().last_seen_at, 150, "never backwards");
    store.refresh_portal_factor("s-2", 160, Some(TokenKind::Temp)).await.unwrap();
    let row = store.portal_session("s-2").await.unwrap().unwrap();
    assert_eq!((row.factor_at, row.factor_kind), (Some(160), Some(TokenKind::Temp)));
    assert!(store.end_portal_session("s-2", Some(&AUDIT)).await.unwrap());
    assert!(!store.end_portal_session("s-2", Some(&AUDIT)).await.unwrap(), "ended once");

    store.start_portal_session(&session("s-3", SessionStage::SignedIn), None, None).await.unwrap();
    store
        .start_portal_session(
            &NewPortalSession { now: 500, ..session("s-4", SessionStage::SignedIn) },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.prune_portal_sessions(400, 300).await.unwrap(), 1, "idle since 100");
    assert_eq!(store.prune_portal_sessions(1_000, 0).await.unwrap(), 1, "past its absolute end");
}

/// A pending token becomes active with its first code's state change and retires the token it
/// replaces, all or nothing; pending tokens past their time are pruned.
async fn pending_tokens(store: &Store, user_id: i64) {
    store.create_token(token_like("OLD-PHONE", user_id), &AUDIT).await.unwrap();
    let pending = PendingToken { until: 500, replaces: Some("OLD-PHONE".into()) };
    store
        .create_token(NewToken { pending: Some(&pending), ..token_like("NEW-PHONE", user_id) }, &AUDIT)
        .await
        .unwrap();
    let new = store.token("NEW-PHONE").await.unwrap().unwrap();
    assert_eq!(new.pending.as_ref(), Some(&pending));
    let used = new.moved_to(TokenState { last_step: Some(7), ..new.state }, Some(400));
    assert!(!store.activate_token(&used, 501, &AUDIT, Some(&AUDIT)).await.unwrap(), "its time ran out");
    assert!(store.token("OLD-PHONE").await.unwrap().is_some(), "and nothing was retired");
    let moved = StateUpdate { expected_version: new.version + 1, ..used.clone() };
    assert!(!store.activate_token(&moved, 400, &AUDIT, None).await.unwrap(), "a moved token");
    assert!(store.token("OLD-PHONE").await.unwrap().is_some(), "rolled back whole");
    assert!(store.activate_token(&used, 400, &AUDIT, Some(&AUDIT)).await.unwrap());
    let active = store.token("NEW-PHONE").await.unwrap().unwrap();
    assert_eq!((active.pending, active.state.last_step), (None, Some(7)));
    assert!(store.token("OLD-PHONE").await.unwrap().is_none(), "the replaced token is gone");
    assert!(!store.activate_token(&used, 400, &AUDIT, None).await.unwrap(), "once");

    let abandoned = PendingToken { until: 50, replaces: None };
    store
        .create_token(NewToken { pending: Some(&abandoned), ..token_like("ABANDONED", user_id) }, &AUDIT)
        .await
        .unwrap();
    assert_eq!(store.prune_pending_tokens(60).await.unwrap(), 1);
    assert!(store.token("ABANDONED").await.unwrap().is_none());
    assert!(store.token("NEW-PHONE").await.unwrap().is_some(), "active tokens are never pruned");
    assert!(store.rename_token(active.id, "work phone", &AUDIT).await.unwrap());
    assert_eq!(store.token("NEW-PHONE").await.unwrap().unwrap().description.as_deref(), Some("work phone"));
}

/// One live registration code per user, for that user only, used once, never after it expires.
async fn registration_codes(store: &Store, user_id: i64) {
    store.put_registration_code(user_id, "hash-1", 100, 200, &AUDIT).await.unwrap();
    store.put_registration_code(user_id, "hash-2", 110, 200, &AUDIT).await.unwrap();
    assert!(
        !store.take_registration_code(user_id, "hash-1", 150).await.unwrap(),
        "replaced by the newer code"
    );
    assert!(!store.take_registration_code(user_id + 1, "hash-2", 150).await.unwrap(), "another user's");
    assert!(store.take_registration_code(user_id, "hash-2", 150).await.unwrap(), "still there after that");
    assert!(!store.take_registration_code(user_id, "hash-2", 150).await.unwrap(), "used once");
    store.put_registration_code(user_id, "hash-3", 100, 200, &AUDIT).await.unwrap();
    assert!(!store.take_registration_code(user_id, "hash-3", 200).await.unwrap(), "expired");
    assert!(!store.take_registration_code(user_id, "hash-3", 150).await.unwrap(), "an expired code is gone");
}

/// Queued messages: limits counted in the insert, challenges with them, claims with a lease,
/// and outcomes recorded only by the claim's holder.
async fn outbox(store: &Store, user_id: i64) {
    let delivered = DeliveredToken {
        mode: DeliveryMode::Realtime,
        destination: Some("+447700900123".into()),
        ttl_secs: None,
        period_days: 1,
        issued_upto: 0,
        last_delivered_period: None,
    };
    let new =
        NewToken { kind: TokenKind::Sms, delivery: Some(&delivered), ..token_like("SMS-CONTRACT", user_id) };
    store.create_token(new, &AUDIT).await.unwrap();
    let token = store.token("SMS-CONTRACT").await.unwrap().unwrap();
    assert_eq!(token.delivery, Some(delivered));
    let limits = SendLimits { per_user_per_window: 1, cooldown_secs: 0, ..SendLimits::default() };
    let challenge = NewChallenge { id: "CHCONTRACT".into(), counter: 0, expires_at: 1_000 };
    let progress = DeliveryProgress { issued_upto: 1, last_delivered_period: None };
    let update = StateUpdate { delivery: Some(progress), ..token.moved_to(token.state, None) };
    let message = NewDelivery {
        user_id,
        token_id: token.id,
        channel: Channel::Sms,
        destination: "+447700900123",
        mode: DeliveryMode::Realtime,
        counters: 0..1,
        service: "VPN",
        challenge: Some(challenge),
        call: None,
        limited: true,
        now: 100,
    };
    assert_eq!(
        store.queue_message(std::slice::from_ref(&update), None, &message, &limits, &AUDIT).await.unwrap(),
        Queued::Yes
    );
    let moved = NewDelivery { challenge: None, limited: false, ..message.clone() };
    assert_eq!(
        store.queue_message(std::slice::from_ref(&update), None, &moved, &limits, &AUDIT).await.unwrap(),
        Queued::Moved,
        "the token's version moved"
    );
    let fresh = store.token("SMS-CONTRACT").await.unwrap().unwrap();
    assert_eq!(fresh.delivery.as_ref().map(|d| d.issued_upto), Some(1));
    let again = StateUpdate { delivery: Some(progress), ..fresh.moved_to(fresh.state, None) };
    let limited = NewDelivery { limited: true, ..moved.clone() };
    assert_eq!(
        store.queue_message(std::slice::from_ref(&again), None, &limited, &limits, &AUDIT).await.unwrap(),
        Queued::Limited(SendLimit::User),
        "one per window"
    );
    assert_eq!(
        store.queue_message(std::slice::from_ref(&again), None, &moved, &limits, &AUDIT).await.unwrap(),
        Queued::Yes,
        "sends no user asked for are not limited"
    );
    assert_eq!(
        store.challenge("CHCONTRACT").await.unwrap().map(|c| c.status),
        Some(ChallengeStatus::Pending)
    );

    let claimed = store.claim_deliveries(100, 160, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|m| (m.counter_from, m.attempts)).collect::<Vec<_>>(), [(0, 1), (0, 1)]);
    assert!(store.claim_deliveries(120, 180, 10).await.unwrap().is_empty(), "held by the first claim");
    let sent = SendResult::Sent { gateway: "kannel", provider_message_id: Some("42") };
    assert!(store.record_send(&claimed[0], &sent, 101).await.unwrap());
    let retry = SendResult::Failed { gateway: Some("kannel"), error: "down", retry_at: Some(130) };
    assert!(store.record_send(&claimed[1], &retry, 101).await.unwrap());
    assert!(!store.record_send(&claimed[1], &sent, 102).await.unwrap(), "the claim was released");
    let retried = store.claim_deliveries(130, 190, 10).await.unwrap();
    assert_eq!(retried.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(claimed[1].id, 2)]);
    let listed = store.deliveries(Some(user_id), 10).await.unwrap();
    let states: Vec<_> = listed.iter().map(|m| (m.status, m.provider_message_id.as_deref())).collect();
    assert_eq!(states, [(DeliveryStatus::Sending, None), (DeliveryStatus::Sent, Some("42"))]);
}

/// A voice token's call: its transaction created with the outbox row, never shown to devices,
/// wrong codes counted while it is pending, and answered once.
async fn calls(store: &Store, user_id: i64) {
    let delivered = DeliveredToken {
        mode: DeliveryMode::Realtime,
        destination: Some("sip:2001@pbx.example".into()),
        ttl_secs: None,
        period_days: 1,
        issued_upto: 0,
        last_delivered_period: None,
    };
    let new = NewToken {
        kind: TokenKind::Voice,
        delivery: Some(&delivered),
        ..token_like("VOICE-CONTRACT", user_id)
    };
    store.create_token(new, &AUDIT).await.unwrap();
    let token = store.token("VOICE-CONTRACT").await.unwrap().unwrap();
    assert_eq!((token.kind, token.delivery.as_ref()), (TokenKind::Voice, Some(&delivered)));
    let call = NewCall {
        id: "TXCALLCONTRACT".into(),
        code_mac: "mac".into(),
        serial: "VOICE-CONTRACT".into(),
        client_ip: Some("198.51.100.7".into()),
        user_agent: None,
        expires_at: 5_000,
    };
    let message = NewDelivery {
        user_id,
        token_id: token.id,
        channel: Channel::Voice,
        destination: "sip:2001@pbx.example",
        mode: DeliveryMode::Realtime,
        counters: 0..0,
        service: "VPN",
        challenge: None,
        call: Some(call.clone()),
        limited: false,
        now: 4_900,
    };
    let limits = SendLimits::default();
    assert_eq!(store.queue_message(&[], None, &message, &limits, &AUDIT).await.unwrap(), Queued::Yes);
    let tx = store.transaction("TXCALLCONTRACT").await.unwrap().unwrap();
    assert_eq!(
        (
            tx.channel,
            tx.status,
            tx.code_mac.as_deref(),
            tx.tries,
            tx.service.as_str(),
            tx.token_serial.as_deref()
        ),
        (TxChannel::Voice, TxStatus::Pending, Some("mac"), 0, "VPN", Some("VOICE-CONTRACT"))
    );
    let queued = store.deliveries(Some(user_id), 1).await.unwrap();
    assert_eq!(
        (queued[0].channel, queued[0].challenge_id.as_deref()),
        (Channel::Voice, Some("TXCALLCONTRACT")),
        "the outbox row names the transaction"
    );
    assert!(
        store
            .pending_transactions(user_id, 0, 4_900)
            .await
            .unwrap()
            .iter()
            .all(|t| t.channel == TxChannel::Push),
        "devices never see a call's transaction"
    );
    assert_eq!(store.count_wrong_code("TXCALLCONTRACT").await.unwrap(), Some(1));
    assert_eq!(store.count_wrong_code("TXCALLCONTRACT").await.unwrap(), Some(2));
    let answer = RecordedAnswer {
        id: "TXCALLCONTRACT",
        status: TxStatus::Denied,
        deny_reason: Some("fraud"),
        answered_at: 4_950,
        answered_by: "VOICE-CONTRACT",
        channel: TxChannel::Voice,
    };
    let by_a_device = RecordedAnswer { status: TxStatus::Approved, channel: TxChannel::Push, ..answer };
    assert!(
        !store.answer_transaction(&by_a_device, None, None, &AUDIT).await.unwrap(),
        "a push device cannot answer a call's transaction"
    );
    assert!(store.answer_transaction(&answer, None, Some((user_id, 6_000)), &AUDIT).await.unwrap());
    assert!(!store.answer_transaction(&answer, None, None, &AUDIT).await.unwrap(), "answered once");
    assert_eq!(store.count_wrong_code("TXCALLCONTRACT").await.unwrap(), None, "no longer pending");
    let tx = store.transaction("TXCALLCONTRACT").await.unwrap().unwrap();
    assert_eq!((tx.status, tx.deny_reason.as_deref(), tx.tries), (TxStatus::Denied, Some("fraud"), 2));
    let user = store.user("ann").await.unwrap().unwrap();
    assert_eq!(user.push_muted_until, Some(6_000), "fraud mutes the user");
    let muted = NewDelivery {
        call: Some(NewCall { id: "TXCALLMUTED".into(), ..call.clone() }),
        now: 5_000,
        ..message.clone()
    };
    assert_eq!(
        store.queue_message(&[], None, &muted, &limits, &AUDIT).await.unwrap(),
        Queued::Moved,
        "no call while the user is muted"
    );
    assert!(store.transaction("TXCALLMUTED").await.unwrap().is_none());
}

/// A TOTP token's fields for `serial`, owned by `user_id`.
fn token_like(serial: &str, user_id: i64) -> NewToken<'_> {
    NewToken {
        serial,
        user_id,
        kind: TokenKind::Totp,
        algorithm: "SHA1",
        digits: 6,
        period: 30,
        seed: b"sealed",
        counter: 0,
        description: Some("desk"),
        created_at: 10,
        enrollment_code_hash: None,
        enrollment_expires_at: None,
        delivery: None,
        temporary: None,
        pending: None,
    }
}

#[tokio::test]
async fn the_store_keeps_its_contract_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        Store::open(&format!("sqlite://{}", dir.path().join("contract.db").display())).await.unwrap();
    contract(&sqlite).await;
    sqlite.close().await;

    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("TESSERA_TEST_SQLITE_ONLY").is_ok_and(|v| v == "1"),
            "TESSERA_TEST_POSTGRES_URL is not set: run through scripts/test.sh (or set TESSERA_TEST_SQLITE_ONLY=1)"
        );
        eprintln!("the store contract ran on SQLite only (TESSERA_TEST_SQLITE_ONLY=1)");
        return;
    };
    let name = format!("tessera_contract_{}", std::process::id());
    let server = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&server)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&server).await.unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let postgres = Store::open(&url).await.unwrap();
    contract(&postgres).await;
    postgres.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).execute(&server).await.unwrap();
}
