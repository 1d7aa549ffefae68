//! The HTTP server that `helio serve` stands on, hardened once for every
//! server helio runs: HTTP/1.1 and HTTPS listeners within connection limits
//! and a header timeout, graceful shutdown on SIGINT/SIGTERM and certificate
//! reload on SIGHUP ([`server`], [`limits`], [`write_timeout`], [`tls`],
//! [`signals`]); strict
//! path checking ([`path`]); files beneath a folder that never lead out of
//! it ([`folder`]); and responses that honour `Range`, `HEAD` and
//! conditional requests ([`response`], [`byte_range`], [`conditional`]).
//!
//! A server supplies a [`Handler`] and its routes; this module knows no
//! route. In short:
//!
//! ```text
//! let server = Server::bind(ServerConfig { http, https, limits })?;   // in a tokio runtime
//! server.http_addr(); server.https_addr();                             // to announce
//! server.run(Arc::new(handler)).await;                                 // until SIGINT/SIGTERM
//!
//! impl Handler for MyRoutes {
//!     async fn handle(&self, request: Request<Incoming>) -> Reply {
//!         let Ok(path) = RequestPath::parse(request.uri().path()) else { return plain(400, "bad path") };
//!         let rep = Representation { content: Payload::Bytes(..), etag, .. };
//!         represent(head, request.headers(), &rep, meter)
//!     }
//! }
//! ```

pub mod byte_range;
pub mod conditional;
pub mod limits;
pub mod path;
pub mod response;
pub mod served_folder;
pub mod server;
pub mod signals;
pub mod tls;
pub mod write_timeout;

pub use limits::{ConnectionStats, Limits};
pub use path::{BadPath, RequestPath};
pub use response::{Payload, Reply, Representation, ResponseBody, represent};
pub use served_folder::{Entry, FileContent, ServedFolder, ServedFolderError};
pub use server::{Handler, ListenAddr, Server, ServerConfig, ServerError};
pub use tls::{TlsError, TlsFiles};
