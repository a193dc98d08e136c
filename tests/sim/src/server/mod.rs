//! The reference dispatch server: `docs/dispatch-api.yaml`, implemented for
//! tests and QA (`doorstep-sim serve`, or in process with [`spawn`]/[`start`]).
//!
//! Modules, one concern each:
//! - [`routes`]: paths to handlers, and problem answers for everything else;
//! - [`auth`]: bearer tokens per driver;
//! - [`jobs`]: assignment, admin changes, cancellation, reassignment, delta;
//! - [`mutations`]: the driver's actions, exactly once and in order;
//! - [`doors`]: device keys, door grants and their revocation;
//! - [`media`]: resumable, hash-checked media upload;
//! - [`storage`]: the SQLite database and its queries;
//! - [`problem`] and [`extract`]: RFC 9457 errors, and request parsing that
//!   only ever fails with one;
//! - [`wire`]: the JSON shapes, shared with [`client`], the typed test client.
//!
//! The job rules themselves (document validation, the state machine) are the
//! core's; this server only applies them to the server's copy of each job.

pub mod auth;
pub mod client;
pub mod doors;
pub mod extract;
pub mod handoff_records;
pub mod jobs;
pub mod media;
pub mod mutations;
pub mod problem;
pub mod records;
pub mod routes;
pub mod storage;
pub mod store_receipts;
pub mod wire;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use storage::{Database, StorageError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
}

/// Where the server listens and keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Loopback by default: the admin API has no authentication. Port 0
    /// picks a free port ([`RunningServer::addr`] tells which).
    pub addr: SocketAddr,
    /// SQLite file; `None` keeps everything in memory for the server's life.
    pub db: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)), db: None }
    }
}

impl ServerConfig {
    /// An in-memory server on a free loopback port: what tests want.
    pub fn ephemeral() -> Self {
        ServerConfig { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), db: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot open the server database: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the server thread ended before it was listening")]
    Vanished,
}

/// Opens the database and binds the listener: after this, clients can connect.
pub async fn bind(config: &ServerConfig) -> Result<(TcpListener, Database), ServerError> {
    let db = Database::open(config.db.as_deref())?;
    let listener =
        TcpListener::bind(config.addr).await.map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    Ok((listener, db))
}

/// Serves requests on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn serve(
    listener: TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, routes::router(AppState { db })).with_graceful_shutdown(shutdown).await
}

/// A server running in this process; stops when [`RunningServer::stop`] is
/// called or it is dropped.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    runner: Option<Runner>,
}

enum Runner {
    /// On its own thread and runtime ([`spawn`]): stopping joins the thread.
    Thread(std::thread::JoinHandle<()>),
    /// A task on the caller's runtime ([`start`]): stopping only signals it.
    Task,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish and, for
    /// a spawned server, waits for its thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(Runner::Thread(thread)) = self.runner.take()
            && thread.join().is_err()
        {
            tracing::error!("the dispatch server thread panicked");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Starts a server as a task on the caller's tokio runtime.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let (listener, db) = bind(&config).await?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(err) = serve(listener, db, async { stopped.await.unwrap_or(()) }).await {
            tracing::error!(error = %err, "the dispatch server stopped");
        }
    });
    Ok(RunningServer { addr, stop: Some(stop), runner: Some(Runner::Task) })
}

/// Starts a server on its own thread with its own runtime; returns once it
/// is listening. For tests that are not async themselves.
pub fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let (ready, listening) = std::sync::mpsc::channel::<Result<SocketAddr, ServerError>>();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("dispatch-server".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready.send(Err(ServerError::Runtime(err)));
                    return;
                }
            };
            runtime.block_on(async move {
                let bound = bind(&config).await.and_then(|(listener, db)| {
                    let addr =
                        listener.local_addr().map_err(|source| ServerError::Bind { addr: config.addr, source })?;
                    Ok((listener, db, addr))
                });
                let (listener, db) = match bound {
                    Ok((listener, db, addr)) => {
                        let _ = ready.send(Ok(addr));
                        (listener, db)
                    }
                    Err(err) => {
                        let _ = ready.send(Err(err));
                        return;
                    }
                };
                if let Err(err) = serve(listener, db, async { stopped.await.unwrap_or(()) }).await {
                    tracing::error!(error = %err, "the dispatch server stopped");
                }
            });
        })
        .map_err(ServerError::Runtime)?;
    let addr = listening.recv().map_err(|_| ServerError::Vanished)??;
    Ok(RunningServer { addr, stop: Some(stop), runner: Some(Runner::Thread(thread)) })
}
