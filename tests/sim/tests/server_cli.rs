//! `doorstep-sim serve` as a process: binds the address it is given (port 0
//! picks one), says where in one stdout line, serves, and keeps its data in
//! `--db` across restarts.

use doorstep_sim::server::client::DispatchClient;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `serve` child process, killed when dropped.
struct ServeProcess {
    child: Child,
    base_url: String,
}

impl ServeProcess {
    fn start(db: Option<&Path>) -> ServeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorstep-sim"));
        command.args(["serve", "--addr", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some(db) = db {
            command.arg("--db").arg(db);
        }
        let mut child = command.spawn().expect("doorstep-sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the server prints its address");
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:") && !base_url.ends_with(":0"), "{base_url}");
        ServeProcess { child, base_url }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_prints_its_address_and_answers_there() {
    let server = ServeProcess::start(None);
    let admin = DispatchClient::new(&server.base_url);
    let device = admin.driver("driver-a").unwrap();
    assert!(device.delta(None, None).unwrap().jobs.is_empty());
}

#[test]
fn with_a_database_file_the_server_remembers_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dispatch.db");
    let document = serde_json::from_str(&doorstep_sim::synthetic::document(2, 1, chrono::Utc::now())).unwrap();
    let (jobs, token) = {
        let server = ServeProcess::start(Some(&db));
        let admin = DispatchClient::new(&server.base_url);
        (admin.assign_jobs("driver-a", document).unwrap(), admin.issue_token("driver-a").unwrap())
    };
    let server = ServeProcess::start(Some(&db));
    let device = DispatchClient::new(&server.base_url).as_driver(token);
    let delta = device.delta(None, None).unwrap();
    assert_eq!(delta.jobs.len(), jobs.len());
}
