//! Password hashing with Argon2id, run off the async runtime; sign-in checks bounded by [`Checks`].

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted (hashing cost grows with length).
pub const MAX_LEN: usize = 1024;

/// Checks the password policy, naming what is wrong (never echoing the password).
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        Err(format!(
            "the password is too short: at least {MIN_LEN} characters are required"
        ))
    } else if password.len() > MAX_LEN {
        Err(format!("the password is too long: at most {MAX_LEN} bytes"))
    } else {
        Ok(())
    }
}

/// Hashes a password (Argon2id, OWASP parameters) on a blocking thread.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| format!("hashing task failed: {e}"))?
}

fn hash_now(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `stored`; false on any error.
fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a password nobody types, verified against when the user does not exist, so an
/// unknown user name costs as much time as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_now("decoy-password-never-used").unwrap_or_default())
}

type Job = Box<dyn FnOnce() + Send>;

/// Sign-in password checks (19 MiB of memory each): at most one per thread of a fixed set, one
/// thread per core, so a flood of sign-ins costs neither more memory nor more threads.
pub struct Checks {
    turns: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Checks {
    /// `threads` checking threads (at least one); they end when the `Checks` is dropped.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => break,
                        }
                    }
                })
                .expect("the system refused a password-check thread");
        }
        Self {
            turns: Arc::new(Semaphore::new(threads)),
            jobs,
        }
    }

    /// A turn to check one password, waiting at most `wait` for one; `None` when every checking
    /// thread stayed busy that long.
    pub async fn turn(&self, wait: Duration) -> Option<Turn> {
        let permit = tokio::time::timeout(wait, self.turns.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(Turn {
            permit,
            jobs: self.jobs.clone(),
        })
    }
}

/// The right to run one check; the turn ends when the check is done (even if its caller went).
pub struct Turn {
    permit: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

impl Turn {
    /// Whether `password` matches `stored`, or, with no stored hash (no such user), false after
    /// as much work as a real check.
    pub async fn verify(self, password: String, stored: Option<String>) -> bool {
        let (done, result) = oneshot::channel();
        let permit = self.permit;
        let job: Job = Box::new(move || {
            let matches = match &stored {
                Some(stored) => verify_now(&password, stored),
                None => {
                    // The same work as a real check, whatever it finds.
                    std::hint::black_box(verify_now(&password, decoy()));
                    false
                }
            };
            drop(permit);
            let _ = done.send(matches);
        });
        if self.jobs.send(job).is_err() {
            return false;
        }
        result.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        let checks = Checks::new(1);
        let wait = Duration::from_secs(60);
        let turn = checks.turn(wait).await.unwrap();
        assert!(
            turn.verify("correct horse battery".into(), Some(h.clone()))
                .await
        );
        let turn = checks.turn(wait).await.unwrap();
        assert!(!turn.verify("wrong horse battery".into(), Some(h)).await);
        let turn = checks.turn(wait).await.unwrap();
        assert!(!turn.verify("x".into(), Some("not a hash".into())).await);
        let turn = checks.turn(wait).await.unwrap();
        assert!(!turn.verify("decoy-password-never-used".into(), None).await);
    }

    #[tokio::test]
    async fn a_turn_is_refused_while_every_thread_is_taken() {
        let checks = Checks::new(2);
        let wait = Duration::from_millis(10);
        let first = checks.turn(wait).await.expect("a free thread");
        let second = checks.turn(wait).await.expect("a second free thread");
        assert!(
            checks.turn(wait).await.is_none(),
            "a third turn on two threads"
        );
        drop(first);
        let third = checks.turn(wait).await.expect("the first turn ended");
        drop((second, third));
    }

    #[test]
    fn policy_names_the_rule() {
        assert_eq!(
            check_policy("short").unwrap_err(),
            "the password is too short: at least 10 characters are required"
        );
        assert!(check_policy("long enough pass").is_ok());
    }
}
