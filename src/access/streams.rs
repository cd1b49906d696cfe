//! The live streams open on this console, by the session (or proxied user) that opened them: at
//! most a few per session, and each ended as soon as its session ends. One task checks every
//! registered session against the store in one read (so a sign-out on another console sharing
//! the store ends them too); sign-outs and user changes on this console end them at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Who a stream belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A session, by the SHA-256 of its token.
    Session(String),
    /// A user a trusted proxy named (no session).
    Proxied(String),
}

/// Why a stream cannot open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    /// The session has as many streams open as it may.
    #[error(
        "Too many live streams: a session may have {0} open at once. Close another tab of this console."
    )]
    TooMany(usize),
}

struct Entry {
    /// Tells this generation of the entry apart from a later one under the same holder.
    id: u64,
    username: String,
    open: usize,
    end: watch::Sender<bool>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    entries: HashMap<Holder, Entry>,
}

/// The registry of open streams (clones share it).
#[derive(Clone)]
pub struct Streams {
    registry: Arc<Mutex<Registry>>,
    per_session: usize,
}

impl Streams {
    /// A registry allowing `per_session` streams per holder.
    pub fn new(per_session: usize) -> Self {
        Self {
            registry: Arc::default(),
            per_session,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream of `username` held by `holder`; refused beyond the cap.
    pub fn open(&self, holder: Holder, username: &str) -> Result<StreamLease, StreamError> {
        let mut registry = self.lock();
        let next_id = registry.next_id;
        let entry = registry
            .entries
            .entry(holder.clone())
            .or_insert_with(|| Entry {
                id: next_id,
                username: username.to_owned(),
                open: 0,
                end: watch::Sender::new(false),
            });
        if entry.open >= self.per_session {
            return Err(StreamError::TooMany(self.per_session));
        }
        entry.open += 1;
        let (id, ended) = (entry.id, entry.end.subscribe());
        if id == next_id {
            registry.next_id += 1;
        }
        Ok(StreamLease {
            registry: self.registry.clone(),
            holder,
            id,
            ended,
        })
    }

    /// The session hashes with streams open.
    pub fn sessions(&self) -> Vec<String> {
        self.lock()
            .entries
            .keys()
            .filter_map(|h| match h {
                Holder::Session(hash) => Some(hash.clone()),
                Holder::Proxied(_) => None,
            })
            .collect()
    }

    /// Ends the streams of every holder `ends` picks.
    fn end_where(&self, ends: impl Fn(&Holder, &Entry) -> bool) {
        self.lock().entries.retain(|holder, entry| {
            let ended = ends(holder, entry);
            if ended {
                entry.end.send_replace(true);
            }
            !ended
        });
    }

    /// Ends the streams of the session with this token hash.
    pub fn end_session(&self, hash: &str) {
        self.end_where(|h, _| matches!(h, Holder::Session(s) if s == hash));
    }

    /// Ends the streams of every session whose hash is not in `live`.
    pub fn end_sessions_not_in(&self, live: &std::collections::HashSet<String>) {
        self.end_where(|h, _| matches!(h, Holder::Session(s) if !live.contains(s)));
    }

    /// Ends every stream of `username`, whatever holds it.
    pub fn end_user(&self, username: &str) {
        self.end_where(|_, e| e.username == username);
    }
}

/// One open stream: counted while it lives; `ended` resolves when its session ends.
pub struct StreamLease {
    registry: Arc<Mutex<Registry>>,
    holder: Holder,
    id: u64,
    ended: watch::Receiver<bool>,
}

impl StreamLease {
    /// Resolves once the stream's session (or user) has ended.
    pub async fn ended(&mut self) {
        // The sender goes only with its entry, which is then ended too.
        let _ = self.ended.wait_for(|ended| *ended).await;
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = registry.entries.get_mut(&self.holder)
            && entry.id == self.id
        {
            entry.open -= 1;
            if entry.open == 0 {
                registry.entries.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    fn session(s: &str) -> Holder {
        Holder::Session(s.to_owned())
    }

    #[test]
    fn caps_streams_per_session_and_frees_a_place_on_drop() {
        let streams = Streams::new(2);
        let a = streams.open(session("a"), "ann").unwrap();
        let _b = streams.open(session("a"), "ann").unwrap();
        assert_eq!(
            streams.open(session("a"), "ann").err(),
            Some(StreamError::TooMany(2))
        );
        assert!(
            streams.open(session("other"), "ann").is_ok(),
            "the cap is per session"
        );
        drop(a);
        assert!(streams.open(session("a"), "ann").is_ok());
    }

    #[tokio::test]
    async fn ending_a_session_or_user_ends_its_streams_only() {
        let streams = Streams::new(8);
        let mut gone = streams.open(session("gone"), "ann").unwrap();
        let mut kept = streams.open(session("kept"), "bob").unwrap();
        let mut proxied = streams.open(Holder::Proxied("cy".into()), "cy").unwrap();
        streams.end_sessions_not_in(&HashSet::from(["kept".to_owned()]));
        tokio::time::timeout(Duration::from_secs(1), gone.ended())
            .await
            .expect("the missing session's stream ends");
        assert_eq!(streams.sessions(), ["kept"]);
        let still = tokio::time::timeout(Duration::from_millis(50), kept.ended()).await;
        assert!(still.is_err(), "a live session's stream goes on");
        streams.end_user("cy");
        tokio::time::timeout(Duration::from_secs(1), proxied.ended())
            .await
            .expect("the user's stream ends");
        // A lease of an ended entry never counts against a new one under the same holder.
        let _again = streams.open(session("gone"), "ann").unwrap();
        drop(gone);
        assert_eq!(streams.lock().entries[&session("gone")].open, 1);
    }
}
