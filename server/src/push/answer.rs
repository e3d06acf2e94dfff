//! A device's signed answer to a challenge: approve (with number matching and the one-time code
//! that proves the device holds the seed) or deny; "not me" also mutes the user's pushes and raises
//! an alert. Wrong numbers and wrong codes deny the request (fail closed).

use std::net::IpAddr;
use std::time::Duration;

use tessera_core::push::{Decision, DenyReason, NumberMatching, PublicKey, SignedAnswer};
use tessera_core::secret::SecretString;
use tessera_core::verifier::{self, Verdict};
use tessera_core::wire::{AnswerReceipt, AnswerStatus};

use super::Push;
use super::hub::transaction_key;
use crate::clock::{i64_of, u64_of, unix_now, unix_now_ms};
use crate::error::ServiceError;
use crate::store::{
    AuditResult, NewAudit, RecordedAnswer, StateUpdate, TokenRow, TransactionRow, TxChannel, TxStatus,
};

/// What an answer will write.
struct Judgement {
    status: TxStatus,
    reason: &'static str,
    token_update: Option<StateUpdate>,
    mute: Option<(i64, i64)>,
}

impl Push {
    /// Applies a device's signed answer. Wrong numbers and wrong one-time codes deny the request
    /// (fail closed); "not me" also mutes the user's pushes and raises an alert.
    pub async fn answer(
        &self,
        signed: SignedAnswer,
        ip: Option<IpAddr>,
    ) -> Result<AnswerReceipt, ServiceError> {
        if !self.limiter.allow_client(ip) {
            return Err(ServiceError::TooManyRequests(
                "too many answers from this address; try again later".into(),
            ));
        }
        let now = unix_now();
        let answer = &signed.answer;
        let ip_text = ip.map(|ip| ip.to_string());
        let Some((token, username, key)) = self.enabled_device(&answer.serial).await? else {
            return Err(ServiceError::Unauthorized(
                "this push device is unknown, disabled or no longer registered".into(),
            ));
        };
        let audit = |result: AuditResult, reason: &'static str| NewAudit {
            at_ms: unix_now_ms(),
            actor: "device",
            action: "push.answer",
            username: Some(&username),
            serial: Some(&answer.serial),
            client_ip: ip_text.as_deref(),
            result,
            reason: Some(reason),
        };
        // Refusals change nothing, so they are audited at most once a minute per reason, client
        // and device: forged or repeated answers cannot fill the audit log.
        let refuse = |reason: &'static str, error: ServiceError| async move {
            if self.limiter.audit_refusal(&format!("push.answer.{reason}"), ip, &answer.serial) {
                self.store.audit(&audit(AuditResult::Reject, reason)).await?;
            }
            Err::<AnswerReceipt, ServiceError>(error)
        };
        let tx = match self.admissible(&signed, &key, &token, now).await? {
            Ok(tx) => tx,
            Err((reason, error)) => return refuse(reason, error).await,
        };
        let Judgement { status, reason, token_update, mute } = self.judge(answer, &tx, &token, now)?;
        let denied = status == TxStatus::Denied;
        let result = if denied { AuditResult::Reject } else { AuditResult::Ok };
        let applied = self
            .store
            .answer_transaction(
                &RecordedAnswer {
                    id: &tx.id,
                    status,
                    deny_reason: denied.then_some(reason),
                    answered_at: i64_of(now),
                    answered_by: &answer.serial,
                    channel: TxChannel::Push,
                },
                token_update.as_ref().filter(|u| u.state != token.state),
                mute,
                &audit(result, reason),
            )
            .await?;
        if !applied {
            return refuse(
                "already_answered",
                ServiceError::Conflict("this request was already answered".into()),
            )
            .await;
        }
        self.metrics.push(status.as_str());
        self.publish(&transaction_key(&tx.id)).await;
        if mute.is_some() {
            self.report_fraud(&username, &tx, &answer.serial, ip_text.as_deref()).await?;
        }
        Ok(AnswerReceipt {
            transaction_id: tx.id,
            status: if denied { AnswerStatus::Denied } else { AnswerStatus::Approved },
            reason: denied.then(|| reason.to_owned()),
        })
    }

    /// The transaction a signed answer may decide: the signature verifies, the transaction is the
    /// device owner's, still pending and unexpired, and the answer is dated near now. Otherwise
    /// the refusal's audit reason and error.
    async fn admissible(
        &self,
        signed: &SignedAnswer,
        key: &PublicKey,
        token: &TokenRow,
        now: u64,
    ) -> Result<Result<TransactionRow, (&'static str, ServiceError)>, ServiceError> {
        let answer = &signed.answer;
        if signed.verify(key).is_err() {
            let error = ServiceError::Unauthorized("the answer's signature does not verify".into());
            return Ok(Err(("bad_signature", error)));
        }
        let tx = self
            .store
            .transaction(&answer.transaction_id)
            .await?
            .filter(|tx| tx.user_id == token.user_id && tx.channel == TxChannel::Push);
        let Some(tx) = tx else {
            let error = ServiceError::NotFound("transaction", answer.transaction_id.clone());
            return Ok(Err(("unknown_transaction", error)));
        };
        if tx.status != TxStatus::Pending {
            let error = ServiceError::Conflict("this request was already answered".into());
            return Ok(Err(("already_answered", error)));
        }
        if now > u64_of(tx.expires_at) {
            return Ok(Err(("late", ServiceError::Gone("this request has expired".into()))));
        }
        if answer.answered_at.abs_diff(now) > tessera_core::push::CLOCK_SKEW_SECS {
            let error = ServiceError::Unauthorized(
                "the answer is dated too far from now (check the device's clock)".into(),
            );
            return Ok(Err(("stale_answer", error)));
        }
        Ok(Ok(tx))
    }

    /// What the answer decides: a denial stands as the device gave it ("not me" also mutes the
    /// user); an approval needs the right number and a one-time code the token accepts.
    fn judge(
        &self,
        answer: &tessera_core::push::Answer,
        tx: &TransactionRow,
        token: &TokenRow,
        now: u64,
    ) -> Result<Judgement, ServiceError> {
        if let Decision::Deny(deny) = answer.decision {
            let mute =
                (deny == DenyReason::NotMe).then(|| (token.user_id, i64_of(now + self.settings.mute_secs)));
            return Ok(Judgement {
                status: TxStatus::Denied,
                reason: deny.as_str(),
                token_update: None,
                mute,
            });
        }
        let number_ok = match tx.number_matching {
            NumberMatching::Off => true,
            NumberMatching::Pick | NumberMatching::Type => {
                answer.number.map(i64::from) == tx.number && tx.number.is_some()
            }
        };
        if !number_ok {
            return Ok(Judgement {
                status: TxStatus::Denied,
                reason: "wrong_number",
                token_update: None,
                mute: None,
            });
        }
        let (seed, method) = (token.open_seed(&self.key)?, token.otp_method()?);
        let otp = answer.otp.as_ref().map(SecretString::expose).unwrap_or_default();
        let checked = verifier::verify(&seed, &method, token.state, otp, now, &self.policy);
        let accepted = matches!(checked.verdict, Verdict::Accepted { .. });
        let update = token.moved_to(checked.next, accepted.then_some(i64_of(now)));
        Ok(if accepted {
            Judgement {
                status: TxStatus::Approved,
                reason: "approved",
                token_update: Some(update),
                mute: None,
            }
        } else {
            Judgement { status: TxStatus::Denied, reason: "bad_otp", token_update: Some(update), mute: None }
        })
    }

    /// Raises the alert for a login the user reported (a push's "not me", or `9` keyed into a
    /// call): audited, logged, and posted to the webhook.
    pub(crate) async fn report_fraud(
        &self,
        username: &str,
        tx: &TransactionRow,
        serial: &str,
        device_ip: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (actor, event, reason) = match tx.channel {
            TxChannel::Push => ("device", "push.fraud_report", "not-me"),
            TxChannel::Voice => ("call", "voice.fraud_report", "key-9"),
        };
        self.store
            .audit(&NewAudit {
                at_ms: unix_now_ms(),
                actor,
                action: event,
                username: Some(username),
                serial: Some(serial),
                client_ip: tx.client_ip.as_deref(),
                result: AuditResult::Alert,
                reason: Some(reason),
            })
            .await?;
        tracing::warn!(
            username,
            serial,
            login_client_ip = tx.client_ip.as_deref(),
            device_ip,
            event,
            "a login was reported as not the user's"
        );
        if let Some(url) = self.settings.webhook_url.clone() {
            let body = serde_json::json!({
                "event": event,
                "username": username,
                "serial": serial,
                "transaction_id": tx.id,
                "service": tx.service,
                "client_ip": tx.client_ip,
                "user_agent": tx.user_agent,
                "muted_until": unix_now() + self.settings.mute_secs,
                "at": unix_now(),
            });
            let http = self.http.clone();
            tokio::spawn(async move {
                match http.post(&url).json(&body).timeout(Duration::from_secs(5)).send().await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        tracing::warn!(status = %response.status(), "the fraud webhook refused the alert")
                    }
                    Err(error) => tracing::warn!(%error, "the fraud webhook could not be reached"),
                }
            });
        }
        Ok(())
    }
}
