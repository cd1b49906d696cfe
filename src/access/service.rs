//! The access service: sign-in with rate limiting and lockout, sessions, user management, and the
//! audit trail, each change written in the same store transaction as its audit row.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::password::Checks;
use super::streams::{Holder, StreamError, StreamLease, Streams};
use super::throttle::Throttle;
use super::{AuditFilter, AuditPage, CurrentUser, Role, UserSummary, Username, password};
use crate::status::now_ms;
use crate::store::{self, NewAudit, Store};
use crate::writable::Writable;

/// How often at most a session's activity is written (a write per request would be waste); a
/// quarter of the idle timeout when that is shorter, so activity always keeps a session alive.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Live streams a session may have open at once, unless configured otherwise.
pub const STREAMS_PER_SESSION: usize = 8;

mod sign_in;

use sign_in::Visits;

/// Why an access operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not acceptable; the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// No such user.
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    /// The user exists already.
    #[error("a user named `{0}` exists already")]
    Exists(String),
    /// The actor's role does not allow this.
    #[error("this needs the {0} role")]
    Forbidden(Role),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a sign-in did not succeed. Unknown user, wrong password and locked account all read the
/// same to the person signing in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong user name or password, or the account is locked.
    #[error("The user name or password is not correct, or the account is locked for a while.")]
    Refused,
    /// Too many attempts from this address.
    #[error("Too many sign-in attempts from your address. Try again in {} seconds.", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Every password check is taken by other sign-ins; nothing was checked or counted.
    #[error("The console is busy with other sign-ins. Try again in {} seconds.", .0.as_secs().max(1))]
    Busy(Duration),
    /// The store failed.
    #[error("sign-in is unavailable: {0}")]
    Store(#[from] store::Error),
}

/// Session and sign-in settings.
#[derive(Debug, Clone, Copy)]
pub struct AccessSettings {
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub lifetime: Duration,
    /// Failed sign-ins in a row from one client address that lock that address out of the
    /// account.
    pub lockout_after: u32,
    /// How long such a lock lasts; failures this much older than the last are forgotten.
    pub lockout_for: Duration,
    /// Recent failures from all addresses after which every attempt at the account waits.
    pub backoff_after: u32,
    /// The longest such wait (1 s after the first failure beyond `backoff_after`, doubling).
    pub backoff_max: Duration,
    /// Sign-in attempts allowed per client address per minute.
    pub attempts_per_minute: u32,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(8 * 3600),
            lifetime: Duration::from_secs(7 * 24 * 3600),
            lockout_after: 5,
            lockout_for: Duration::from_secs(15 * 60),
            backoff_after: 20,
            backoff_max: Duration::from_secs(60),
            attempts_per_minute: 10,
        }
    }
}

/// Who asks for an action: recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user name (or `cli:<user>` for the command line).
    pub name: String,
    /// Their role.
    pub role: Role,
    /// The client's address, for web requests.
    pub client_addr: Option<String>,
}

impl Actor {
    /// A signed-in user acting from `client_addr`.
    pub fn user(user: &CurrentUser, client_addr: Option<IpAddr>) -> Self {
        Self {
            name: user.username.clone(),
            role: user.role,
            client_addr: client_addr.map(|a| a.to_string()),
        }
    }

    /// Someone at the server's command line (who can read the store file anyway).
    pub fn command_line() -> Self {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            name: format!("cli:{who}"),
            role: Role::Admin,
            client_addr: None,
        }
    }

    /// The audit row of `action` on `object`, done now.
    pub(crate) fn audit(
        &self,
        action: &str,
        object: Option<&str>,
        parameters: serde_json::Value,
        outcome: &str,
    ) -> NewAudit {
        NewAudit {
            at_ms: now_ms(),
            actor: self.name.clone(),
            role: Some(self.role),
            action: action.to_owned(),
            target: None,
            object: object.map(str::to_owned),
            parameters,
            outcome: outcome.to_owned(),
            client_addr: self.client_addr.clone(),
        }
    }
}

/// A session token: the cookie value. Only its SHA-256 is stored; it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The cookie value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the first admin comes to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users exist already.
    Ready,
    /// The admin `admin` was created from the given password.
    AdminCreated,
    /// No user exists: whoever opens `/setup?token=<token>` creates the first admin.
    SetupToken(String),
}

/// Signs people in and out, manages users, and reads the audit log.
#[derive(Clone)]
pub struct Access {
    store: Arc<dyn Store>,
    settings: AccessSettings,
    throttle: Arc<Throttle>,
    setup_token: Arc<Mutex<Option<String>>>,
    /// The sign-in password checks, one per core at a time.
    checks: Arc<Checks>,
    /// When each user a trusted proxy names was last seen.
    visits: Arc<Visits>,
    streams: Streams,
    writable: Writable,
    /// The sessions whose touch is being written now (one at a time each).
    touching: Arc<Mutex<HashSet<String>>>,
}

impl Access {
    /// The service over `store`.
    pub fn new(store: Arc<dyn Store>, settings: AccessSettings) -> Self {
        Self {
            store,
            settings,
            throttle: Arc::new(Throttle::new(
                settings.attempts_per_minute,
                Duration::from_secs(60),
            )),
            setup_token: Arc::new(Mutex::new(None)),
            checks: Arc::new(Checks::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            visits: Arc::new(Visits::new(settings.idle)),
            streams: Streams::new(STREAMS_PER_SESSION),
            writable: Writable::default(),
            touching: Arc::default(),
        }
    }

    /// The same service allowing `per_session` live streams per session.
    pub fn with_streams_per_session(mut self, per_session: usize) -> Self {
        self.streams = Streams::new(per_session);
        self
    }

    /// Whether the store takes writes (a failed session touch marks it not writable).
    pub fn writable(&self) -> &Writable {
        &self.writable
    }

    /// The settings in force.
    pub fn settings(&self) -> AccessSettings {
        self.settings
    }

    /// Makes sure an admin can sign in: with users present, nothing; else creates `admin` from
    /// `admin_password` (such as `PITWALL_ADMIN_PASSWORD`), else issues a one-time setup token.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> Result<Bootstrap> {
        if self.store.count_users().await? > 0 {
            return Ok(Bootstrap::Ready);
        }
        if let Some(password) = admin_password {
            self.add_user(&Actor::command_line(), "admin", password, Role::Admin)
                .await?;
            return Ok(Bootstrap::AdminCreated);
        }
        let token = SessionToken::generate().0;
        *self.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(Bootstrap::SetupToken(token))
    }

    /// Makes `admin` an admin with `password`, creating or resetting it (the demo does this so the
    /// credentials it prints always work).
    pub async fn reset_admin(&self, password: &str) -> Result<()> {
        let cli = Actor::command_line();
        match self.store.user("admin").await? {
            Some(_) => {
                self.set_password(&cli, "admin", password).await?;
                self.set_role(&cli, "admin", Role::Admin).await
            }
            None => self.add_user(&cli, "admin", password, Role::Admin).await,
        }
    }

    /// Whether `token` is the current setup token (and no user exists yet).
    pub async fn setup_token_valid(&self, token: &str) -> bool {
        let current = self
            .setup_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        current.is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
            && self.store.count_users().await.is_ok_and(|n| n == 0)
    }

    /// Creates the first admin with the setup token, which is then spent.
    pub async fn complete_setup(
        &self,
        token: &str,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<()> {
        if !self.setup_token_valid(token).await {
            return Err(Error::Invalid(
                "this setup link is not valid any more".into(),
            ));
        }
        let actor = Actor {
            name: "setup-link".into(),
            role: Role::Admin,
            client_addr: client.map(|c| c.to_string()),
        };
        self.add_user(&actor, username, password, Role::Admin)
            .await?;
        *self.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// The user a session token belongs to, if the session is still valid. The lookup only reads;
    /// the activity is written afterwards, off the request, and a failed write keeps the user
    /// signed in (the store is marked not writable until a write succeeds).
    pub async fn authenticate(&self, token: &str) -> Option<CurrentUser> {
        let idle = self.settings.idle.as_millis() as u64;
        let hash = token_hash(token);
        let now = now_ms();
        let session = match self.store.session_user(&hash, now, idle).await {
            Ok(session) => session?,
            Err(e) => {
                tracing::error!("session lookup failed: {e}");
                return None;
            }
        };
        let every = TOUCH_EVERY.min(self.settings.idle / 4).as_millis() as u64;
        if now.saturating_sub(session.last_seen_ms) >= every {
            self.touch(hash, now, idle);
        }
        Some(session.user)
    }

    /// Notes on the store's write mark how a write went, and passes its result on.
    fn noted<T>(&self, written: store::Result<T>) -> store::Result<T> {
        match &written {
            Ok(_) => self.writable.succeeded(),
            Err(e) => self.writable.failed(e),
        }
        written
    }

    /// Writes a session's activity in the background, at most one write per session at a time.
    fn touch(&self, hash: String, now: u64, idle: u64) {
        let fresh = self
            .touching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash.clone());
        if !fresh {
            return;
        }
        let (store, writable, touching) = (
            self.store.clone(),
            self.writable.clone(),
            self.touching.clone(),
        );
        tokio::spawn(async move {
            match store.touch_session(&hash, now, idle).await {
                Ok(()) => writable.succeeded(),
                Err(e) => writable.failed(&e),
            }
            touching
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&hash);
        });
    }

    /// Registers a live stream of `user`, held by the session of `token` (or, without one, by
    /// the user a trusted proxy named); refused beyond the streams a session may have.
    pub fn open_stream(
        &self,
        token: Option<&str>,
        user: &CurrentUser,
    ) -> std::result::Result<StreamLease, StreamError> {
        let holder = match token {
            Some(token) => Holder::Session(token_hash(token)),
            None => Holder::Proxied(user.username.clone()),
        };
        self.streams.open(holder, &user.username)
    }

    /// Every `every`, checks the sessions holding live streams against the store in one read and
    /// ends the streams of those that ended (signed out, expired, idle, user changed or removed,
    /// on any console sharing the store). Runs until dropped.
    pub async fn watch_streams(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sessions = self.streams.sessions();
            if sessions.is_empty() {
                continue;
            }
            let idle = self.settings.idle.as_millis() as u64;
            match self.store.live_sessions(&sessions, now_ms(), idle).await {
                Ok(live) => self.streams.end_sessions_not_in(&live),
                Err(e) => tracing::warn!("checking the sessions of live streams: {e}"),
            }
        }
    }

    /// Ends a session.
    pub async fn sign_out(&self, token: &str, actor: &Actor) -> Result<()> {
        let audit = actor.audit("sign-out", None, serde_json::json!({}), "ok");
        let hash = token_hash(token);
        self.streams.end_session(&hash);
        self.noted(self.store.close_session(&hash, &audit).await)?;
        Ok(())
    }

    /// Adds a user (admin only).
    pub async fn add_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<()> {
        require(actor, Role::Admin)?;
        let name = Username::parse(username).map_err(Error::Invalid)?;
        password::check_policy(password).map_err(Error::Invalid)?;
        let hash = password::hash(password.to_owned())
            .await
            .map_err(Error::Invalid)?;
        let audit = actor.audit(
            "user.add",
            Some(name.as_str()),
            serde_json::json!({ "role": role }),
            "ok",
        );
        if !self.noted(
            self.store
                .insert_user(name.as_str(), &hash, role, &audit)
                .await,
        )? {
            return Err(Error::Exists(name.to_string()));
        }
        Ok(())
    }

    /// Sets a user's password (admin only) and ends all their sessions.
    pub async fn set_password(&self, actor: &Actor, username: &str, password: &str) -> Result<()> {
        require(actor, Role::Admin)?;
        password::check_policy(password).map_err(Error::Invalid)?;
        let hash = password::hash(password.to_owned())
            .await
            .map_err(Error::Invalid)?;
        let audit = actor.audit(
            "user.passwd",
            Some(username),
            serde_json::json!({ "password": "<redacted>" }),
            "ok",
        );
        if !self.noted(
            self.store
                .update_user(username, Some(&hash), None, &audit)
                .await,
        )? {
            return Err(Error::NoSuchUser(username.to_owned()));
        }
        self.streams.end_user(username);
        Ok(())
    }

    /// Changes a user's role (admin only); their sessions end so the new role applies at once.
    pub async fn set_role(&self, actor: &Actor, username: &str, role: Role) -> Result<()> {
        require(actor, Role::Admin)?;
        if actor.name == username && role != Role::Admin {
            return Err(Error::Invalid(
                "you cannot take the admin role from yourself".into(),
            ));
        }
        let audit = actor.audit(
            "user.role",
            Some(username),
            serde_json::json!({ "role": role }),
            "ok",
        );
        if !self.noted(
            self.store
                .update_user(username, None, Some(role), &audit)
                .await,
        )? {
            return Err(Error::NoSuchUser(username.to_owned()));
        }
        self.streams.end_user(username);
        Ok(())
    }

    /// Removes a user (admin only) and ends their sessions.
    pub async fn remove_user(&self, actor: &Actor, username: &str) -> Result<()> {
        require(actor, Role::Admin)?;
        if actor.name == username {
            return Err(Error::Invalid("you cannot remove yourself".into()));
        }
        let audit = actor.audit("user.remove", Some(username), serde_json::json!({}), "ok");
        if !self.noted(self.store.delete_user(username, &audit).await)? {
            return Err(Error::NoSuchUser(username.to_owned()));
        }
        self.streams.end_user(username);
        Ok(())
    }

    /// Records an action taken elsewhere (outside the store) in the audit log.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        parameters: serde_json::Value,
        outcome: &str,
    ) -> Result<()> {
        let mut audit = actor.audit(action, None, parameters, outcome);
        audit.target = target.map(str::to_owned);
        Ok(self.noted(self.store.append_audit(&audit).await)?)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserSummary>> {
        Ok(self.store.list_users(now_ms()).await?)
    }

    /// A page of the audit log.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<AuditPage> {
        Ok(self.store.audit_page(filter).await?)
    }
}

fn require(actor: &Actor, needed: Role) -> Result<()> {
    if actor.role.allows(needed) {
        Ok(())
    } else {
        Err(Error::Forbidden(needed))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
