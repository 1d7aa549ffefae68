//! The storage seam end to end: a folder, and an S3-compatible bucket served
//! by a real S3 implementation (moto in server mode, a separate Python
//! process on a loopback port that checks every request's SigV4 signature).
//! Requests are counted by the server's own log, so "nothing changed, nothing
//! written" is measured on the wire.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use helio::store::{LockScope, S3Settings, Store, Target};
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload};

use crate::support::python_with;

const HARNESS: &str = include_str!("moto_s3.py");

/// A moto S3 server with one bucket and one user allowed everything.
pub struct Moto {
    child: Child,
    _stdin: ChildStdin,
    pub endpoint: String,
    pub bucket: String,
    key: String,
    secret: String,
}

impl Moto {
    pub fn start(test: &str) -> Option<Moto> {
        let python = python_with("moto.server", test)?;
        let mut child = Command::new(python)
            .arg("-c")
            .arg(HARNESS)
            .arg("helio-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("moto harness did not start: {e}: {line:?}"));
        let text = |name: &str| info[name].as_str().unwrap().to_string();
        Some(Moto {
            endpoint: text("endpoint"),
            bucket: text("bucket"),
            key: text("key"),
            secret: text("secret"),
            child,
            _stdin: stdin,
        })
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(self.key.clone()),
            secret_access_key: Some(self.secret.clone()),
            session_token: None,
            retry_budget: Duration::from_secs(3),
            inherit_env: false,
        }
    }

    fn target(&self, prefix: &str) -> Target {
        Target::parse(&format!("s3://{}/{prefix}", self.bucket), None).unwrap()
    }

    fn open(&self, prefix: &str) -> Store {
        Store::open_with(&self.target(prefix), &self.settings()).unwrap()
    }

    /// The AWS environment that points the helio binary at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
        ]
    }

    /// Where anyone reads `key` of the bucket over plain HTTP (a public
    /// bucket, or the CDN in front of it).
    pub fn public_url(&self, key: &str) -> String {
        format!("{}/_helio/public/{}/{key}", self.endpoint, self.bucket)
    }

    /// Every object below `prefix`, by key relative to it, with its bytes.
    pub fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        use futures_util::TryStreamExt;
        let raw = self.raw();
        let runtime = runtime();
        let prefix = object_store::path::Path::parse(prefix).unwrap();
        let listed: Vec<object_store::ObjectMeta> = runtime.block_on(raw.list(Some(&prefix)).try_collect()).unwrap();
        listed
            .into_iter()
            .map(|object| {
                let bytes = runtime.block_on(async { raw.get(&object.location).await.unwrap().bytes().await.unwrap() });
                let key = object.location.as_ref().strip_prefix(&format!("{prefix}/")).unwrap().to_string();
                (key, bytes.to_vec())
            })
            .collect()
    }

    /// Puts an object, bypassing helio.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = object_store::path::Path::parse(key).unwrap();
        runtime().block_on(self.raw().put(&path, PutPayload::from(bytes.to_vec()))).unwrap();
    }

    /// The object's `Content-Type` and `Cache-Control`, from a HEAD request.
    pub fn kind(&self, key: &str) -> (Option<String>, Option<String>) {
        let path = object_store::path::Path::parse(key).unwrap();
        let head = runtime()
            .block_on(self.raw().get_opts(&path, GetOptions { head: true, ..GetOptions::default() }))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let attribute = |name| head.attributes.get(&name).map(|v| v.to_string());
        (attribute(object_store::Attribute::ContentType), attribute(object_store::Attribute::CacheControl))
    }

    /// The same bucket through object_store directly, for checks that must
    /// not go through helio's own code.
    fn raw(&self) -> object_store::aws::AmazonS3 {
        // What helio's store does first: one TLS provider for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(&self.bucket)
            .with_region("us-east-1")
            .with_access_key_id(&self.key)
            .with_secret_access_key(&self.secret)
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Every S3 request since the last clear: (method, path, query).
    pub fn requests(&self) -> Vec<(String, String, String)> {
        let body = ureq::get(&format!("{}/_helio/requests", self.endpoint))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    pub fn clear_requests(&self) {
        ureq::delete(&format!("{}/_helio/requests", self.endpoint)).call().unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The files of a small published site.
fn site_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("index.html", b"<!doctype html><title>helio</title>".to_vec()),
        ("style.css", b"body { color: black }".to_vec()),
        ("logs.json", b"{\"logs\": []}\n".to_vec()),
        ("demo/L01-0-1024.torrent", b"d8:announce0:4:infod4:name4:demoee".to_vec()),
        ("demo/L01-1024-2048.torrent", b"d8:announce0:4:infod4:name5:demo2ee".to_vec()),
        ("demo/feed.xml", b"<?xml version=\"1.0\"?><rss/>".to_vec()),
        ("demo/torrents.json", b"{\"torrents\": []}\n".to_vec()),
        ("demo/index.html", b"<!doctype html><title>demo</title>".to_vec()),
        ("demo/checkpoint", b"demo.example\n2048\nAAAA\n\n".to_vec()),
    ]
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn s3_objects_carry_their_content_type_and_cache_lifetime() {
    let Some(moto) = Moto::start("s3_objects_carry_their_content_type_and_cache_lifetime") else { return };
    let store = moto.open("kinds");
    for (key, bytes) in site_files() {
        store.write(key, &bytes).unwrap();
    }
    let raw = moto.raw();
    let runtime = runtime();
    let expected = [
        ("index.html", "text/html; charset=utf-8", "public, max-age=300"),
        ("style.css", "text/css; charset=utf-8", "public, max-age=300"),
        ("logs.json", "application/json", "public, max-age=300"),
        ("demo/L01-0-1024.torrent", "application/x-bittorrent", "public, max-age=86400"),
        ("demo/feed.xml", "application/rss+xml", "public, max-age=300"),
        ("demo/torrents.json", "application/json", "public, max-age=300"),
        ("demo/checkpoint", "text/plain; charset=utf-8", "public, max-age=300"),
    ];
    for (key, content_type, cache_control) in expected {
        let path = object_store::path::Path::parse(format!("kinds/{key}")).unwrap();
        // A HEAD request: the metadata as a static host would serve it.
        let head = runtime.block_on(raw.get_opts(&path, GetOptions { head: true, ..GetOptions::default() })).unwrap();
        let attribute = |name| head.attributes.get(&name).map(|v| v.to_string());
        assert_eq!(attribute(object_store::Attribute::ContentType).as_deref(), Some(content_type), "{key}");
        assert_eq!(attribute(object_store::Attribute::CacheControl).as_deref(), Some(cache_control), "{key}");
    }
    assert_eq!(store.read("demo/feed.xml").unwrap().as_deref(), Some(&b"<?xml version=\"1.0\"?><rss/>"[..]));
    assert_eq!(store.read("demo/missing").unwrap(), None);
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn rewriting_unchanged_files_makes_no_put_and_no_get() {
    let Some(moto) = Moto::start("rewriting_unchanged_files_makes_no_put_and_no_get") else { return };
    let first = moto.open("site");
    for (key, bytes) in site_files() {
        assert!(first.write_if_changed(key, &bytes).unwrap(), "{key}");
    }
    drop(first);

    // The next build: a new process, a new store, the same bytes.
    moto.clear_requests();
    let again = moto.open("site");
    for (key, bytes) in site_files() {
        assert!(!again.write_if_changed(key, &bytes).unwrap(), "{key}");
    }
    let requests = moto.requests();
    let methods: Vec<&str> = requests.iter().map(|(method, _, _)| method.as_str()).collect();
    // One listing of the root (when the store opens) and one of the log's folder.
    assert_eq!(methods, ["GET", "GET"], "{requests:?}");
    assert!(
        requests.iter().all(|(_, path, query)| path == "/helio-test" && query.contains("list-type=2")),
        "{requests:?}"
    );

    // One changed file: one PUT, of that file.
    moto.clear_requests();
    assert!(again.write_if_changed("demo/feed.xml", b"<rss>new</rss>").unwrap());
    assert!(!again.write_if_changed("demo/feed.xml", b"<rss>new</rss>").unwrap());
    assert!(again.write_if_changed("demo/torrents.json", b"{\"torrents\": [1]}\n").unwrap());
    let puts: Vec<String> =
        moto.requests().into_iter().filter(|(method, _, _)| method == "PUT").map(|(_, path, _)| path).collect();
    assert_eq!(puts, ["/helio-test/site/demo/feed.xml", "/helio-test/site/demo/torrents.json"]);

    // Listing and deleting, and a lock that is never listed.
    let guard = again.lock(LockScope::Log("demo")).unwrap();
    let listed: Vec<(String, u64)> = again.list("demo/").unwrap().into_iter().map(|l| (l.key, l.size)).collect();
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert!(listed.iter().all(|(key, _)| !key.contains(".helio")), "{listed:?}");
    assert!(listed.contains(&("demo/feed.xml".to_string(), 14)), "{listed:?}");
    guard.release().unwrap();
    again.delete("demo/feed.xml").unwrap();
    assert_eq!(again.read("demo/feed.xml").unwrap(), None);
    assert!(again.write_if_changed("demo/feed.xml", b"<rss>new</rss>").unwrap());
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn a_lease_admits_one_build_per_log_and_is_taken_over_once_expired() {
    let Some(moto) = Moto::start("a_lease_admits_one_build_per_log_and_is_taken_over_once_expired") else { return };
    let first = moto.open("site");
    let second = moto.open("site");

    // A short lease, renewed while held: still held well past its lifetime.
    let held = first.lock_for(LockScope::Log("demo"), Duration::from_secs(2)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    held.check().unwrap();
    let error = second.lock(LockScope::Log("demo")).err().expect("the lease is held");
    assert!(error.is_held(), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "another helio build holds s3://helio-test/site/demo/.helio.lock at {} (held by ",
            moto.endpoint
        )),
        "{message}"
    );
    // Another log, and the root files, are free: disjoint builds publish at once.
    let other_log = second.lock(LockScope::Log("other")).unwrap();
    let root = second.lock(LockScope::Root).unwrap();
    assert!(first.lock(LockScope::Root).err().unwrap().is_held());

    // Released at the end of the build: the next one takes it.
    held.release().unwrap();
    let taken = second.lock(LockScope::Log("demo")).unwrap();
    drop((taken, other_log, root));

    // A build that died left a lease that has expired: taken over.
    let path = object_store::path::Path::parse("site/demo/.helio.lock").unwrap();
    let stale = br#"{"holder":"crashed-runner pid 7 (00000000)","expires":1700000000}"#;
    runtime().block_on(moto.raw().put(&path, PutPayload::from(&stale[..]))).unwrap();
    let took_over = first.lock(LockScope::Log("demo")).unwrap();
    assert!(second.lock(LockScope::Log("demo")).err().unwrap().is_held());
    drop(took_over);
    // Dropping the guard deleted the lease.
    let gone = runtime().block_on(moto.raw().head(&path));
    assert!(matches!(gone, Err(object_store::Error::NotFound { .. })), "{gone:?}");

    // A holder whose lease was replaced behind its back (it stalled past the
    // expiry and another build took over) finds out at its next renewal.
    let stalled = first.lock_for(LockScope::Log("demo"), Duration::from_secs(3)).unwrap();
    let usurper = br#"{"holder":"another runner","expires":4000000000}"#;
    runtime().block_on(moto.raw().put(&path, PutPayload::from(&usurper[..]))).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let lost = stalled.check().unwrap_err().to_string();
    assert_eq!(
        lost,
        format!(
            "lost s3://helio-test/site/demo/.helio.lock at {}: it could not be renewed in time and another build \
             may have taken it over",
            moto.endpoint
        )
    );
    // Releasing a lost lease leaves the new holder's alone.
    stalled.release().unwrap();
    let kept = runtime().block_on(async { moto.raw().get(&path).await.unwrap().bytes().await.unwrap() });
    assert_eq!(&kept[..], &usurper[..]);
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn bad_credentials_a_missing_bucket_and_a_dead_endpoint_are_one_line_naming_both() {
    let Some(moto) = Moto::start("bad_credentials_a_missing_bucket_and_a_dead_endpoint_are_one_line_naming_both")
    else {
        return;
    };
    let open = |target: &str, settings: &S3Settings| {
        let started = Instant::now();
        let error = Store::open_with(&Target::parse(target, None).unwrap(), settings).err().expect("fails");
        (error.to_string(), started.elapsed())
    };

    let wrong_secret = S3Settings { secret_access_key: Some("not-the-secret".into()), ..moto.settings() };
    let (message, _) = open("s3://helio-test/site", &wrong_secret);
    assert_eq!(
        message,
        format!(
            "s3://helio-test/site at {}: access denied (SignatureDoesNotMatch): check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
            moto.endpoint
        )
    );
    let unknown_key = S3Settings { access_key_id: Some("AKIAUNKNOWNUNKNOWN00".into()), ..moto.settings() };
    let (message, _) = open("s3://helio-test/site", &unknown_key);
    assert!(message.contains(": access denied (InvalidAccessKeyId)"), "{message}");

    let (message, _) = open("s3://no-such-bucket/site", &moto.settings());
    assert_eq!(message, format!("s3://no-such-bucket/site at {}: the bucket does not exist", moto.endpoint));

    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        retry_budget: Duration::from_secs(1),
        ..moto.settings()
    };
    let (message, elapsed) = open("s3://helio-test/site", &dead);
    assert!(
        message.starts_with(&format!("s3://helio-test/site at http://127.0.0.1:{port}: cannot connect: ")),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");

    // Nothing was written by any of them.
    let listed = runtime().block_on(moto.raw().list_with_delimiter(None)).unwrap();
    assert!(listed.objects.is_empty() && listed.common_prefixes.is_empty(), "{listed:?}");
}
