//! The one interface the site is written through (see docs/store.md). A
//! [`Store`] is a local folder or an S3-compatible bucket; the code that
//! writes the site asks it to read, replace atomically, skip unchanged bytes,
//! list a folder, delete, and lock — and never asks which one it has.
//!
//! Keys are `/`-separated paths below the site's root (`index.html`,
//! `demo/feed.xml`). Every object is stored with the `Content-Type` and
//! `Cache-Control` its name calls for ([`ObjectKind`]). Names starting with a
//! dot (locks, temporaries) are never listed.
//!
//! Locks have a scope: the root files (`index.html`, `style.css`,
//! `logs.json`) or one log's folder, so that builds of disjoint sets of logs
//! can publish into one site at once. A folder is locked with `flock` on
//! `.helio.lock` in it ([`local`]), which costs nothing, so a build takes its
//! logs' locks up front ([`Store::lock_upfront`]); a bucket with a lease
//! object created by a conditional put, renewed while the build runs and
//! taken over once expired ([`s3`]), which costs requests, so it is taken
//! only when there is something to write (`site::folder`).

pub mod kind;
mod lease;
pub mod local;
pub mod problem;
pub mod s3;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use thiserror::Error;

pub use crate::config::target::{S3Url, Target, TargetError};
pub use kind::ObjectKind;
pub use local::atomic::WriteError;
pub use local::flock::LockError;
pub use s3::{S3Problem, S3Settings};

/// The name of a lock (or lease) in the folder it guards.
pub const LOCK_NAME: &str = local::flock::LOCK_FILE;

/// How long a log's lease lasts without renewal. A build renews it every
/// third of this while it runs, so only a build that died leaves one behind,
/// and the next build takes it over this long after.
pub const LEASE_TTL: Duration = Duration::from_secs(120);

/// How long the root's lease lasts without renewal: it is held only while
/// the root files are rewritten, and builds of other logs wait for it.
pub const ROOT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The site's storage: a folder or a bucket.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Local(local::LocalStore),
    S3(Box<s3::S3Store>),
}

/// An object found by [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key, folder included (`demo/L01-0-1024.torrent`).
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// What a lock guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockScope<'a> {
    /// The files at the site's root, shared by every log.
    Root,
    /// One log's folder.
    Log(&'a str),
}

impl LockScope<'_> {
    /// The folder the lock lives in: `""` or `"<log>/"`.
    fn folder(&self) -> String {
        match self {
            LockScope::Root => String::new(),
            LockScope::Log(name) => format!("{name}/"),
        }
    }
}

/// Why the store could not do what was asked. Every message names the file
/// or object, and for a bucket also the endpoint.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{key:?} is not a valid path in the site")]
    BadKey { key: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot read {0}")]
    File(#[source] crate::local_file::FileError),
    /// `what` names the object (and the endpoint, for a bucket).
    #[error("{what} is larger than {max} bytes, which no file helio writes there is: move it aside")]
    TooLarge { what: String, max: u64 },
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `what` names the object and the endpoint.
    #[error("{what}: {problem}")]
    S3 { what: String, problem: s3::S3Problem },
    #[error("another helio build holds {lease} (held by {holder} until {until})")]
    Leased { lease: String, holder: String, until: String },
    #[error("lost {lease}: it could not be renewed in time and another build may have taken it over")]
    Lost { lease: String },
}

impl StoreError {
    /// Another build holds the lock: exit status 3.
    pub fn is_held(&self) -> bool {
        matches!(self, StoreError::Leased { .. } | StoreError::Lock(LockError::Held { .. }))
    }

    /// The store cannot be used as configured: exit status 2.
    pub fn is_usage(&self) -> bool {
        matches!(self, StoreError::S3 { problem: s3::S3Problem::Setup { .. }, .. })
    }
}

impl Store {
    /// Opens a target. For a bucket this makes one request (a listing of
    /// the site's root) so that bad credentials, a missing bucket or an
    /// unreachable endpoint fail here, before anything is written.
    pub fn open(target: &Target) -> Result<Store, StoreError> {
        Store::open_with(target, &S3Settings::from_env())
    }

    /// [`Store::open`] with a bucket reached as `settings` say rather than
    /// as the environment says.
    pub fn open_with(target: &Target, settings: &S3Settings) -> Result<Store, StoreError> {
        let backend = match target {
            Target::Dir(dir) => Backend::Local(local::LocalStore::new(dir)?),
            Target::S3(url) => Backend::S3(Box::new(s3::S3Store::open(url, settings)?)),
        };
        Ok(Store { backend })
    }

    /// Whether this is a bucket, where every request costs (and a folder's
    /// writes do not).
    pub fn is_bucket(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// How messages name `key`: a path, or `s3://bucket/prefix/key`.
    pub fn describe(&self, key: &str) -> String {
        match &self.backend {
            Backend::Local(local) => local.path(key).display().to_string(),
            Backend::S3(s3) => s3.describe(key),
        }
    }

    /// The object's bytes, or `None` if there is none. An object larger
    /// than its kind allows ([`ObjectKind::max_size`]) is refused unread;
    /// so is anything but a regular file in a folder.
    pub fn read(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(local) => local.read(key),
            Backend::S3(s3) => s3.read(key),
        }
    }

    /// Replaces the object atomically: a reader sees the old bytes or the
    /// new ones, never a mix.
    pub fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(local) => local.write(key, bytes),
            Backend::S3(s3) => s3.write(key, bytes),
        }
    }

    /// Writes only when the bytes differ from what is stored, and says
    /// whether it wrote. A bucket compares against the MD5 of its folder
    /// listing (one LIST per folder), not by fetching each object, so a
    /// build with nothing new makes no PUT and no GET of site files.
    pub fn write_if_changed(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        if self.unchanged(key, bytes)? {
            return Ok(false);
        }
        self.write(key, bytes)?;
        Ok(true)
    }

    /// Whether the object holds exactly `bytes`, compared as
    /// [`Store::write_if_changed`] does (a bucket: by the folder's listing).
    pub fn unchanged(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(local) => local.unchanged(key, bytes),
            Backend::S3(s3) => s3.unchanged(key, bytes),
        }
    }

    /// The object's size and time, or `None` if there is none. A bucket
    /// answers from its folder's listing (listed once, kept up to date by
    /// the store's own writes).
    pub fn stat(&self, key: &str) -> Result<Option<Listed>, StoreError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(local) => local.stat(key),
            Backend::S3(s3) => s3.stat(key),
        }
    }

    /// The objects directly in `folder` (`""` for the root, `"demo/"` for a
    /// log), by key, without hidden names (locks, temporaries). Always asks
    /// (one LIST of a bucket per thousand objects), and what it finds is
    /// what later [`Store::write_if_changed`] calls compare with.
    pub fn list(&self, folder: &str) -> Result<Vec<Listed>, StoreError> {
        self.list_below(folder, false)
    }

    /// Every object below `folder`, in the folders below it too (a log's
    /// proof tiles, `"demo/tile/"`), without hidden names.
    pub fn list_tree(&self, folder: &str) -> Result<Vec<Listed>, StoreError> {
        self.list_below(folder, true)
    }

    fn list_below(&self, folder: &str, recursive: bool) -> Result<Vec<Listed>, StoreError> {
        if !folder.is_empty() {
            check_key(folder.trim_end_matches('/'))?;
        }
        let folder = if folder.is_empty() || folder.ends_with('/') { folder.to_string() } else { format!("{folder}/") };
        let mut listed = match &self.backend {
            Backend::Local(local) => local.list(&folder, recursive)?,
            Backend::S3(s3) => s3.list(&folder, recursive)?,
        };
        listed.retain(|object| !object.key[folder.len()..].split('/').any(|segment| segment.starts_with('.')));
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    /// Removes the object; a missing one is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(local) => local.delete(key),
            Backend::S3(s3) => s3.delete(key),
        }
    }

    /// Takes the lock of `scope` or fails at once: [`StoreError::is_held`]
    /// when another build has it. Held until the guard is dropped (or
    /// [`LockGuard::release`]d). A lease lasts [`LEASE_TTL`] for a log,
    /// [`ROOT_LEASE_TTL`] for the root.
    pub fn lock(&self, scope: LockScope) -> Result<LockGuard, StoreError> {
        let ttl = match scope {
            LockScope::Root => ROOT_LEASE_TTL,
            LockScope::Log(_) => LEASE_TTL,
        };
        self.lock_for(scope, ttl)
    }

    /// [`Store::lock`] with a lease of `ttl` (a folder's lock does not expire).
    pub fn lock_for(&self, scope: LockScope, ttl: Duration) -> Result<LockGuard, StoreError> {
        if let LockScope::Log(name) = scope {
            check_key(name)?;
        }
        let guard = match &self.backend {
            Backend::Local(local) => Guard::Local(local.lock(&scope)?),
            Backend::S3(s3) => Guard::Lease(s3.lease(&scope, ttl)?),
        };
        Ok(LockGuard { guard })
    }

    /// [`Store::lock`], waiting up to `patience` for another build to let
    /// go of it (the root's lock, which builds of other logs hold only while
    /// they rewrite the root files; a crashed build's root lease expires
    /// within [`ROOT_LEASE_TTL`]).
    pub fn lock_waiting(&self, scope: LockScope, patience: Duration) -> Result<LockGuard, StoreError> {
        let deadline = Instant::now() + patience;
        loop {
            match self.lock(scope) {
                Err(error) if error.is_held() && Instant::now() < deadline => {
                    // Builds that finish together do not retry in step.
                    std::thread::sleep(Duration::from_millis(200 + fastrand::u64(..400)));
                }
                taken => return taken,
            }
        }
    }

    /// Takes the lock of `scope` now if that costs nothing (a folder's
    /// `flock`), so a build can hold its logs from its start; `None` for a
    /// bucket, whose lease costs a PUT and its release two more requests, so
    /// it is taken only once there is something to write ([`Store::lock`]).
    pub fn lock_upfront(&self, scope: LockScope) -> Result<Option<LockGuard>, StoreError> {
        match &self.backend {
            Backend::Local(_) => self.lock(scope).map(Some),
            Backend::S3(_) => Ok(None),
        }
    }

    /// Removes what a crashed build left in `folder` (a folder's temporary
    /// files, in the folders below a log's too; a bucket has none). Call
    /// with the folder's lock held.
    pub fn remove_stale_temporaries(&self, folder: &str) {
        if let Backend::Local(local) = &self.backend {
            local.remove_stale_temporaries(folder);
        }
    }
}

/// A held lock. Dropping it releases it.
pub struct LockGuard {
    guard: Guard,
}

enum Guard {
    Local(local::flock::FolderLock),
    Lease(lease::Lease),
}

impl LockGuard {
    /// Fails once the lock can no longer be trusted (a lease that could not
    /// be renewed before it expired): call it before each write that must
    /// not race another build.
    pub fn check(&self) -> Result<(), StoreError> {
        match &self.guard {
            Guard::Local(_) => Ok(()),
            Guard::Lease(lease) => lease.check(),
        }
    }

    /// Releases the lock, reporting a failure to do so (dropping the guard
    /// releases it too, quietly).
    pub fn release(self) -> Result<(), StoreError> {
        match self.guard {
            Guard::Local(lock) => {
                drop(lock);
                Ok(())
            }
            Guard::Lease(lease) => lease.release(),
        }
    }
}

/// A key is a relative path of non-empty segments, none `.` or `..`, with
/// no control characters or backslashes.
fn check_key(key: &str) -> Result<(), StoreError> {
    let valid = !key.is_empty()
        && !key.chars().any(|c| c.is_control() || c == '\\')
        && key.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if valid { Ok(()) } else { Err(StoreError::BadKey { key: key.to_string() }) }
}

/// The folder part of a key: `"demo/"` for `"demo/feed.xml"`, `""` for `"index.html"`.
fn folder_of(key: &str) -> &str {
    key.rfind('/').map_or("", |slash| &key[..=slash])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds of several logs at once share one store and hold one guard per log.
    #[test]
    fn a_store_and_its_guards_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Store>();
        shared::<LockGuard>();
    }

    #[test]
    fn keys_are_relative_paths_without_dot_segments() {
        for good in ["index.html", "demo/feed.xml", "a&b <\"c'> é/L01-0-1024.torrent", ".helio.lock"] {
            check_key(good).unwrap();
        }
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a/", "a\\b", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(folder_of("demo/feed.xml"), "demo/");
        assert_eq!(folder_of("index.html"), "");
    }

    #[test]
    fn a_folder_store_reads_writes_lists_and_locks_per_scope() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::Dir(dir.path().join("site"))).unwrap();
        assert_eq!(store.read("demo/feed.xml").unwrap(), None);
        assert!(store.list("demo/").unwrap().is_empty());
        assert!(store.write_if_changed("demo/feed.xml", b"<rss/>").unwrap());
        assert!(!store.write_if_changed("demo/feed.xml", b"<rss/>").unwrap());
        store.write("demo/L01-0-1024.torrent", b"d4:infod").unwrap();
        store.write("index.html", b"<!doctype html>").unwrap();
        assert_eq!(store.read("demo/feed.xml").unwrap().as_deref(), Some(&b"<rss/>"[..]));

        let root = store.lock(LockScope::Root).unwrap();
        let demo = store.lock(LockScope::Log("demo")).unwrap();
        // Another build (another store on the same folder) finds both held.
        let other = Store::open(&Target::Dir(dir.path().join("site"))).unwrap();
        assert!(other.lock(LockScope::Root).err().unwrap().is_held());
        assert!(other.lock(LockScope::Log("demo")).err().unwrap().is_held());
        let other_log = other.lock(LockScope::Log("other")).unwrap();
        root.check().unwrap();

        let keys: Vec<(String, u64)> = store.list("demo").unwrap().into_iter().map(|l| (l.key, l.size)).collect();
        assert_eq!(keys, [("demo/L01-0-1024.torrent".to_string(), 8), ("demo/feed.xml".to_string(), 6)]);
        let root_keys: Vec<String> = store.list("").unwrap().into_iter().map(|l| l.key).collect();
        assert_eq!(root_keys, ["index.html"]);

        store.delete("demo/feed.xml").unwrap();
        store.delete("demo/feed.xml").unwrap();
        assert_eq!(store.read("demo/feed.xml").unwrap(), None);
        demo.release().unwrap();
        drop((root, other_log));
        other.lock(LockScope::Log("demo")).unwrap();
        assert!(matches!(store.write("../x", b""), Err(StoreError::BadKey { .. })));
    }
}
