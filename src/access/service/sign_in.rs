//! Signing in: the rate limit per client address, a bounded number of password checks at once,
//! the lockout per account and client address with its account-wide backoff, unlocking, and the
//! users a trusted proxy names.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Access, Actor, Error, Result, SessionToken, SignInError, require, token_hash};
use crate::access::password::Turn;
use crate::access::{CurrentUser, Role};
use crate::status::now_ms;
use crate::store::{self, Claim, Lockout, NewAudit};

/// How long a sign-in waits for a free password check before it is answered "busy".
const WAIT_FOR_CHECK: Duration = Duration::from_millis(100);

/// How long a busy answer asks the client to wait.
const RETRY_WHEN_BUSY: Duration = Duration::from_secs(1);

/// How many identities [`Visits`] remembers before it forgets the ones gone idle.
const VISITS_KEPT: usize = 10_000;

impl Access {
    /// Signs in; on success a new session (the old one, if given, is closed: ids rotate at
    /// sign-in). The attempt is counted against the account and `client` before the password is
    /// checked; a locked address or a waiting account is refused without a check.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
        previous: Option<&str>,
    ) -> std::result::Result<(SessionToken, CurrentUser), SignInError> {
        if let Some(addr) = client {
            self.throttle
                .attempt(addr, Instant::now())
                .map_err(SignInError::RateLimited)?;
        }
        let turn = self
            .checks
            .turn(WAIT_FOR_CHECK)
            .await
            .ok_or(SignInError::Busy(RETRY_WHEN_BUSY))?;
        let client_addr = client.map(|c| c.to_string());
        let typed: String = username.chars().take(64).collect();
        let audit = |outcome: &str, role: Option<Role>| NewAudit {
            at_ms: now_ms(),
            actor: typed.clone(),
            role,
            action: "sign-in".into(),
            target: None,
            object: None,
            parameters: serde_json::json!({}),
            outcome: outcome.into(),
            client_addr: client_addr.clone(),
        };
        let Some(user) = self.store.user(&typed).await? else {
            // The same work as a real check, so timing does not reveal unknown names.
            turn.verify(password.to_owned(), None).await;
            self.store
                .record_sign_in_failure(None, None, &audit("failed: unknown user", None))
                .await?;
            return Err(SignInError::Refused);
        };
        let rules = self.lockout();
        let from = client_addr.as_deref().unwrap_or_default();
        let refusal = match self
            .store
            .claim_sign_in(user.id, from, now_ms(), &rules)
            .await?
        {
            Claim::Granted { here, account } => {
                self.check(turn, password, &user.password_hash, here, account, &rules)
                    .await
            }
            Claim::LockedOut { .. } => Some(("failed: locked for this address", None)),
            Claim::Waiting { .. } => Some(("failed: account waiting after many failures", None)),
        };
        if let Some((outcome, wait_until)) = refusal {
            self.store
                .record_sign_in_failure(Some(user.id), wait_until, &audit(outcome, Some(user.role)))
                .await?;
            return Err(SignInError::Refused);
        }
        let token = SessionToken::generate();
        // The session starts now, after the (deliberately slow) password check.
        let started = now_ms();
        let session = store::NewSession {
            id_hash: token_hash(token.expose()),
            user_id: user.id,
            created_at_ms: started,
            expires_at_ms: started + self.settings.lifetime.as_millis() as u64,
            client_addr: client_addr.clone(),
            replaces: previous.map(token_hash),
        };
        self.store
            .open_session(&session, &audit("ok", Some(user.role)))
            .await?;
        Ok((
            token,
            CurrentUser {
                username: user.username,
                role: user.role,
            },
        ))
    }

    /// Checks a counted attempt's password: `None` when right, else the audit outcome and until
    /// when the account then waits, if it does.
    async fn check(
        &self,
        turn: Turn,
        password: &str,
        stored: &str,
        here: u32,
        account: u32,
        rules: &Lockout,
    ) -> Option<(&'static str, Option<u64>)> {
        if turn
            .verify(password.to_owned(), Some(stored.to_owned()))
            .await
        {
            return None;
        }
        let outcome = if here >= rules.per_address {
            "failed: wrong password; locked for this address"
        } else {
            "failed: wrong password"
        };
        // The wait runs from the end of the failed check, so it is never spent checking.
        let wait = rules.backoff_ms(account);
        Some((outcome, (wait > 0).then(|| now_ms() + wait)))
    }

    /// The lockout rules in force.
    fn lockout(&self) -> Lockout {
        let s = &self.settings;
        Lockout {
            per_address: s.lockout_after,
            lock_ms: s.lockout_for.as_millis() as u64,
            backoff_after: s.backoff_after,
            backoff_max_ms: s.backoff_max.as_millis() as u64,
        }
    }

    /// Lifts every sign-in lock of a user (admin only): each address's, and the account-wide
    /// wait.
    pub async fn unlock_user(&self, actor: &Actor, username: &str) -> Result<()> {
        require(actor, Role::Admin)?;
        let audit = actor.audit("user.unlock", Some(username), serde_json::json!({}), "ok");
        if !self.store.unlock_user(username, &audit).await? {
            return Err(Error::NoSuchUser(username.to_owned()));
        }
        Ok(())
    }

    /// A user named by a trusted proxy's header, if they exist (no session, no password). The
    /// first request of each identity, and the first after the idle timeout without one, is
    /// audited as a sign-in.
    pub async fn trusted_user(
        &self,
        username: &str,
        client: Option<IpAddr>,
    ) -> Option<CurrentUser> {
        let user = match self.store.user(username).await {
            Ok(user) => user?,
            Err(e) => {
                tracing::error!("user lookup for a trusted proxy failed: {e}");
                return None;
            }
        };
        if self.visits.arrive(&user.username, Instant::now()) {
            let audit = NewAudit {
                at_ms: now_ms(),
                actor: user.username.clone(),
                role: Some(user.role),
                action: "sign-in".into(),
                target: None,
                object: None,
                parameters: serde_json::json!({}),
                outcome: "ok: trusted proxy".into(),
                client_addr: client.map(|c| c.to_string()),
            };
            if let Err(e) = self.store.append_audit(&audit).await {
                tracing::error!("audit of a trusted-proxy sign-in failed: {e}");
                self.visits.forget(&user.username);
            }
        }
        Some(CurrentUser {
            username: user.username,
            role: user.role,
        })
    }
}

/// When each identity a trusted proxy named was last seen, so that only a new visit (the first
/// request, or the first after `idle` without one) is audited.
pub(super) struct Visits {
    idle: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Visits {
    /// Visits that end after `idle` without a request.
    pub(super) fn new(idle: Duration) -> Self {
        Self {
            idle,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes a request of `name` at `now`: whether it begins a new visit.
    fn arrive(&self, name: &str, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= VISITS_KEPT {
            seen.retain(|_, at| now.duration_since(*at) < self.idle);
        }
        seen.insert(name.to_owned(), now)
            .is_none_or(|at| now.duration_since(at) >= self.idle)
    }

    /// Forgets `name`, so its next request begins a visit again.
    fn forget(&self, name: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_begins_at_the_first_request_and_after_an_idle_gap() {
        let visits = Visits::new(Duration::from_secs(60));
        let t = Instant::now();
        assert!(visits.arrive("ann", t));
        assert!(!visits.arrive("ann", t + Duration::from_secs(30)));
        assert!(
            !visits.arrive("ann", t + Duration::from_secs(80)),
            "activity keeps the visit going"
        );
        assert!(visits.arrive("bo", t + Duration::from_secs(80)), "bo's own");
        assert!(
            visits.arrive("ann", t + Duration::from_secs(141)),
            "idle 61 s"
        );
        visits.forget("ann");
        assert!(visits.arrive("ann", t + Duration::from_secs(142)));
    }

    #[test]
    fn backoff_starts_after_the_threshold_doubles_and_stays_short() {
        let rules = Lockout {
            per_address: 5,
            lock_ms: 900_000,
            backoff_after: 20,
            backoff_max_ms: 60_000,
        };
        let waits: Vec<u64> = [1, 20, 21, 22, 23, 26, 27, 1000]
            .into_iter()
            .map(|n| rules.backoff_ms(n))
            .collect();
        assert_eq!(waits, [0, 0, 1000, 2000, 4000, 32_000, 60_000, 60_000]);
    }
}
