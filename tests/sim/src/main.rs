//! `doorstep-sim`: run the core headlessly.
//!
//! - `demo`: the sample mall pickup run, printed as a timeline;
//! - `churn`: import jobs and walk them through their states until stopped,
//!   printing each committed transition (crash and soak tests kill it);
//! - `pod-churn`: capture and seal proofs of delivery until stopped (the
//!   kill-during-finalize test kills it);
//! - `serve`: the reference dispatch server (`docs/dispatch-api.yaml`).

use clap::{Parser, Subcommand};
use doorstep_core::DriverSession;
use doorstep_sim::{demo, server, synthetic};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "doorstep-sim", about = "Headless QA for the Doorstep core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sample shift (3 stores, 10 drop-offs) and print its timeline.
    Demo {
        /// Database file to create; by default a fresh one in a temporary
        /// folder that is removed afterwards.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Import batches of synthetic jobs and walk each through the happy
    /// path, printing `committed <job> <version> <state>` after every durable
    /// transition. Runs until killed, or for `--transitions`.
    Churn {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 20)]
        batch: usize,
        #[arg(long)]
        transitions: Option<u64>,
    },
    /// Capture and seal proofs of delivery of synthetic jobs until killed,
    /// printing `drafted <job>` when a draft is complete and `sealed <job>`
    /// once it is committed (the kill-during-finalize test reads these).
    PodChurn {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 5)]
        batch: usize,
        #[arg(long)]
        seals: Option<u64>,
    },
    /// Run the reference dispatch server until interrupted. Prints
    /// `listening on http://ADDR` once it accepts connections (with port 0,
    /// ADDR has the port it got).
    Serve {
        /// Address to listen on; loopback by default, since the admin API
        /// has no authentication.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// SQLite file to keep the server's data in; in memory by default.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("DOORSTEP_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { db } => run_demo(db),
        Command::Churn { db, batch, transitions } => churn(db, batch, transitions),
        Command::PodChurn { db, batch, seals } => doorstep_sim::pod_churn::run(&db, batch, seals),
        Command::Serve { addr, db } => serve(server::ServerConfig { addr, db }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("doorstep-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo(db: Option<PathBuf>) -> Result<(), String> {
    let scratch;
    let path = match db {
        Some(path) => {
            if path.exists() {
                return Err(format!("{} already exists; the demo starts from a fresh database", path.display()));
            }
            path
        }
        None => {
            scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
            scratch.path().join("demo.db")
        }
    };
    let stdout = std::io::stdout();
    demo::run(&path, &mut stdout.lock()).map_err(|e| e.to_string())?;
    Ok(())
}

fn churn(db: PathBuf, batch: usize, limit: Option<u64>) -> Result<(), String> {
    let session = DriverSession::open(&db).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut done = 0u64;
    loop {
        let document = synthetic::document(batch.max(1), 3, chrono::Utc::now());
        let imported = session.import_document(document.as_bytes()).map_err(|e| e.to_string())?;
        for step in synthetic::HAPPY_PATH {
            for job in &imported.jobs {
                let job = session.apply(job.job_id, step).map_err(|e| e.to_string())?;
                // Printed only after the commit returned: every line names a
                // transition the database must still hold after a kill.
                writeln!(out, "committed {} {} {}", job.id, job.version, job.state).map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                done += 1;
                if limit.is_some_and(|limit| done >= limit) {
                    return Ok(());
                }
            }
        }
    }
}

fn serve(config: server::ServerConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let (listener, db) = server::bind(&config).await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
        // Tests read this line to learn the port; it must be whole and flushed.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
        drop(out);
        server::serve(listener, db, stop_requested()).await.map_err(|e| format!("the server failed: {e}"))
    })
}

/// Ctrl-C, or SIGTERM on Unix (what test harnesses and service managers send).
async fn stop_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await,
        };
        tokio::select! {
            () = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}
