//! The one tokio runtime the core owns. Shells never see tokio: exported async
//! functions hand their blocking work to this runtime and await the result
//! from whatever executor the caller uses (Kotlin coroutines, Swift tasks).

use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub fn shared() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("doorstep-core")
            .enable_all()
            .build()
            // Without a runtime the core cannot work at all; there is no
            // sensible fallback, and this happens once, at first use.
            .expect("the operating system refused to start the core's threads")
    })
}

/// Runs blocking work (SQLite, file I/O) on the core's blocking pool and
/// resolves with its result; a panic in `work` becomes an `Internal` error.
pub async fn run_blocking<T, F>(work: F) -> crate::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> crate::Result<T> + Send + 'static,
{
    match shared().spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => Err(crate::CoreError::Internal {
            reason: crate::error::describe_join_error(join_error),
        }),
    }
}
