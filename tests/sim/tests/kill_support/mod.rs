//! Runs a `doorstep-sim` subcommand as a real child process and SIGKILLs it
//! once it has printed enough lines: no destructors, no rollback hooks, a
//! write in flight as likely as not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `doorstep-sim <subcommand> --batch <batch> --db <db>`, killed after
/// `after_lines` lines of output; returns those lines.
pub fn run_then_kill(subcommand: &str, batch: u32, db: &Path, after_lines: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep-sim"))
        .args([subcommand, "--batch", &batch.to_string(), "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start doorstep-sim {subcommand}: {e}"));
    let mut lines = Vec::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.len() < after_lines && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read the child's output") == 0 {
            break;
        }
        lines.push(line.trim_end().to_owned());
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    assert!(lines.len() >= after_lines, "doorstep-sim {subcommand} stopped early after {} lines", lines.len());
    lines
}
