//! Writing into a log's folder of the site under that log's lock, taken
//! only when there is something to write (see docs/store.md, "Locks").
//!
//! A bucket's lease costs a PUT to take and two requests to release, so a
//! build that finds nothing new must not take one: every write into a log's
//! folder goes through [`LogFolder`], which takes the log's lock at the
//! first write that changes something ([`Locks::claim`]). What the build read
//! of the log before that ([`Seen`]) may be stale by then, since another
//! build may have published in between: after taking the lock the folder is
//! read again, and if it changed the write is refused with
//! [`LogFolderError::Changed`] — nothing of ours was written yet, so the caller
//! reads the log again (now under the lock) and starts over. A folder's
//! `flock` costs nothing, so a build takes its logs' locks at its start
//! instead ([`Locks::hold_upfront`]), and a second build of the same logs
//! exits 3 before doing any work.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

use crate::store::{Listed, LockGuard, LockScope, Store, StoreError};

use super::state::Seen;

/// How long a build waits for the root's lock, which another build holds
/// only while it rewrites the root files (or, if it died doing so, until
/// its lease expires).
pub const ROOT_PATIENCE: Duration = Duration::from_secs(45);

/// Why a write into a log's folder did not happen.
#[derive(Debug, Error)]
pub enum LogFolderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another build published into the folder after this one read it.
    #[error("{folder} changed since this build read it: another build published into it")]
    Changed { folder: String },
}

impl LogFolderError {
    /// Another build holds the log's lock.
    pub fn is_held(&self) -> bool {
        matches!(self, LogFolderError::Store(error) if error.is_held())
    }
}

/// The logs' locks a build holds, shared by its threads.
pub struct Locks<'s> {
    store: &'s Store,
    held: Mutex<BTreeMap<String, LockGuard>>,
    /// Logs this build has written something into.
    written: Mutex<BTreeSet<String>>,
}

impl<'s> Locks<'s> {
    pub fn new(store: &'s Store) -> Locks<'s> {
        Locks { store, held: Mutex::new(BTreeMap::new()), written: Mutex::new(BTreeSet::new()) }
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, LockGuard>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the log's lock now if that costs nothing ([`Store::lock_upfront`]);
    /// fails, [`StoreError::is_held`], if another build has it.
    pub fn hold_upfront(&self, name: &str) -> Result<(), StoreError> {
        if let Some(guard) = self.store.lock_upfront(LockScope::Log(name))? {
            self.store.remove_stale_temporaries(&format!("{name}/"));
            self.held().insert(name.to_string(), guard);
        }
        Ok(())
    }

    /// Whether this build holds the log's lock.
    pub fn holds(&self, name: &str) -> bool {
        self.held().contains_key(name)
    }

    /// Makes sure this build holds the log's lock before it writes there.
    /// Taking it now, the folder is read again and compared with `seen`,
    /// what the build read of it before; the lock is kept either way.
    pub fn claim(&self, name: &str, seen: &Seen) -> Result<(), LogFolderError> {
        if self.holds(name) {
            return Ok(());
        }
        // Only the log's own thread claims it, so nobody takes it between
        // the check above and the insert below.
        let guard = self.store.lock(LockScope::Log(name))?;
        let folder = format!("{name}/");
        self.store.remove_stale_temporaries(&folder);
        self.held().insert(name.to_string(), guard);
        if &Seen::read(self.store, name)? != seen {
            tracing::info!("log {name}: another build published into it since it was read; reading it again");
            return Err(LogFolderError::Changed { folder: self.store.describe(&folder) });
        }
        Ok(())
    }

    /// Whether this build has written anything into the log's folder.
    pub fn wrote(&self, name: &str) -> bool {
        self.written.lock().unwrap_or_else(PoisonError::into_inner).contains(name)
    }

    fn mark_written(&self, name: &str) {
        self.written.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_string());
    }

    /// Releases the log's lock, once its files are published; a lease that
    /// cannot be released is warned about (it expires by itself).
    pub fn release_log(&self, name: &str) {
        let guard = self.held().remove(name);
        if let Some(Err(error)) = guard.map(LockGuard::release) {
            tracing::warn!("log {name}: {error}");
        }
    }

    /// Fails once the log's lock can no longer be trusted (a lease that
    /// could not be renewed): checked before every write.
    fn check(&self, name: &str) -> Result<(), StoreError> {
        self.held().get(name).map_or(Ok(()), LockGuard::check)
    }

    /// Takes the root's lock, waiting up to [`ROOT_PATIENCE`] for a build of
    /// other logs to finish with it.
    pub fn root(&self) -> Result<LockGuard, StoreError> {
        let guard = self.store.lock_waiting(LockScope::Root, ROOT_PATIENCE)?;
        self.store.remove_stale_temporaries("");
        Ok(guard)
    }

    /// Releases every log's lock, warning about one that cannot be (a lease
    /// left behind expires by itself).
    pub fn release(&self) {
        let held = std::mem::take(&mut *self.held());
        for (name, guard) in held {
            if let Err(error) = guard.release() {
                tracing::warn!("log {name}: {error}");
            }
        }
    }
}

impl Drop for Locks<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// One log's folder, as a build writes it: keys are relative to the folder
/// (`feed.xml`, `tile/1/000`), and every write that changes something holds
/// the log's lock.
pub struct LogFolder<'a> {
    locks: &'a Locks<'a>,
    name: String,
    /// What the build read of the folder when it read the log's state.
    seen: Seen,
}

impl<'a> LogFolder<'a> {
    pub fn new(locks: &'a Locks<'a>, name: &str, seen: Seen) -> LogFolder<'a> {
        LogFolder { locks, name: name.to_string(), seen }
    }

    pub fn store(&self) -> &'a Store {
        self.locks.store
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key of `file` in the site.
    pub fn key(&self, file: &str) -> String {
        format!("{}/{file}", self.name)
    }

    /// How messages name `file`.
    pub fn describe(&self, file: &str) -> String {
        self.store().describe(&self.key(file))
    }

    /// Takes the log's lock before a write comes, when the build knows it
    /// will write (before building ranges, not after the first is done).
    pub fn claim(&self) -> Result<(), LogFolderError> {
        self.locks.claim(&self.name, &self.seen)
    }

    pub fn read(&self, file: &str) -> Result<Option<Bytes>, StoreError> {
        self.store().read(&self.key(file))
    }

    pub fn stat(&self, file: &str) -> Result<Option<Listed>, StoreError> {
        self.store().stat(&self.key(file))
    }

    /// Every object below `sub` (`"tile/"`), keys relative to the log's folder.
    pub fn list_tree(&self, sub: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{}/", self.name);
        let listed = self.store().list_tree(&format!("{prefix}{sub}"))?;
        Ok(listed.into_iter().filter_map(|object| object.key.strip_prefix(&prefix).map(str::to_string)).collect())
    }

    /// Replaces `file`, under the log's lock.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<(), LogFolderError> {
        self.claim()?;
        self.locks.check(&self.name)?;
        self.locks.mark_written(&self.name);
        Ok(self.store().write(&self.key(file), bytes)?)
    }

    /// Writes `file` if its bytes change, under the log's lock; an unchanged
    /// file needs no lock. Returns whether it wrote.
    pub fn write_if_changed(&self, file: &str, bytes: &[u8]) -> Result<bool, LogFolderError> {
        let key = self.key(file);
        if self.store().unchanged(&key, bytes)? {
            return Ok(false);
        }
        self.claim()?;
        self.locks.check(&self.name)?;
        let wrote = self.store().write_if_changed(&key, bytes)?;
        if wrote {
            self.locks.mark_written(&self.name);
        }
        Ok(wrote)
    }

    /// Removes `file`, which a listing found, under the log's lock.
    pub fn delete(&self, file: &str) -> Result<(), LogFolderError> {
        self.claim()?;
        self.locks.check(&self.name)?;
        self.locks.mark_written(&self.name);
        Ok(self.store().delete(&self.key(file))?)
    }

    /// Removes `file` if it is there (asking the folder's listing first, so
    /// that nothing is written when it is not).
    pub fn delete_if_present(&self, file: &str) -> Result<(), LogFolderError> {
        if self.stat(file)?.is_none() {
            return Ok(());
        }
        self.delete(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Target;

    fn folder_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::Dir(dir.path().join("site"))).unwrap();
        (dir, store)
    }

    #[test]
    fn an_unchanged_file_takes_no_lock_and_a_changed_one_takes_it_once() {
        let (_dir, store) = folder_store();
        store.write("demo/feed.xml", b"<rss/>").unwrap();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::read(&store, "demo").unwrap());
        assert!(!folder.write_if_changed("feed.xml", b"<rss/>").unwrap());
        folder.delete_if_present("status.json").unwrap();
        assert!(!locks.holds("demo"), "nothing to write, no lock");
        assert!(folder.write_if_changed("feed.xml", b"<rss>new</rss>").unwrap());
        assert!(locks.holds("demo"));
        // Another build now finds the log held.
        let other = Store::open(&Target::Dir(store.describe("").into())).unwrap();
        let other_locks = Locks::new(&other);
        let theirs = LogFolder::new(&other_locks, "demo", Seen::read(&other, "demo").unwrap());
        let error = theirs.write("feed.xml", b"<rss>theirs</rss>").unwrap_err();
        assert!(error.is_held(), "{error}");
        locks.release();
        assert!(!locks.holds("demo"));
        theirs.write("feed.xml", b"<rss>theirs</rss>").unwrap();
    }

    #[test]
    fn a_folder_changed_since_it_was_read_is_refused_once_the_lock_is_taken() {
        let (_dir, store) = folder_store();
        let seen = Seen::read(&store, "demo").unwrap();
        // Another build publishes between this build's read and its first write.
        store.write("demo/torrents.json", br#"{"torrents": []}"#).unwrap();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", seen);
        let error = folder.write("L01-0-1024.torrent", b"d4:infod").unwrap_err();
        assert!(matches!(error, LogFolderError::Changed { .. }), "{error}");
        assert_eq!(store.read("demo/L01-0-1024.torrent").unwrap(), None, "nothing written");
        // The lock is kept: the build reads the log again under it and goes on.
        assert!(locks.holds("demo"));
        let again = LogFolder::new(&locks, "demo", Seen::read(&store, "demo").unwrap());
        again.write("L01-0-1024.torrent", b"d4:infod").unwrap();
    }

    #[test]
    fn a_folder_lock_is_taken_up_front_and_held_by_one_build() {
        let (_dir, store) = folder_store();
        let locks = Locks::new(&store);
        locks.hold_upfront("demo").unwrap();
        assert!(locks.holds("demo"));
        let other = Store::open(&Target::Dir(store.describe("").into())).unwrap();
        assert!(Locks::new(&other).hold_upfront("demo").unwrap_err().is_held());
        // The root's lock is separate and waited for.
        let root = locks.root().unwrap();
        drop(root);
        Locks::new(&other).root().unwrap();
    }
}
