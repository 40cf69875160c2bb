//! The binary: flags, the printed URL, the database it creates, and a
//! graceful stop on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

fn start(args: &[&str], env: &[(&str, &std::path::Path)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_optrail-server"));
    command
        .args(["--listen", "127.0.0.1:0", "--ping-interval-ms", "500"])
        .args(args)
        .env_remove("OPTRAIL_DATABASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

fn stop(mut child: Child, signal: Signal) {
    kill_process(Pid::from_child(&child), signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(Instant::now() < deadline, "still running after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn healthy(url: &str) {
    let response = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_binary_prints_its_url_creates_its_database_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("nested/optrail.db");
    let (child, url) = start(&["--database", database.to_str().unwrap()], &[]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    healthy(&url).await;
    assert!(database.is_file());
    stop(child, Signal::TERM);
}

#[tokio::test]
async fn the_database_can_come_from_optrail_database_and_sigint_stops_too() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("from-env.db");
    let (child, url) = start(&[], &[("OPTRAIL_DATABASE", &database)]);
    healthy(&url).await;
    assert!(database.is_file());
    stop(child, Signal::INT);
}

#[test]
fn bad_flags_are_refused_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_optrail-server"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[tokio::test]
async fn demo_mode_is_announced_and_the_publisher_key_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let key = "a-publisher-key-that-must-stay-secret";
    let mut child = Command::new(env!("CARGO_BIN_EXE_optrail-server"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--database"])
        .arg(dir.path().join("optrail.db"))
        .env("OPTRAIL_PUBLISHER_KEY", key)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let mut line = String::new();
    while !printed.contains("DEMO MODE") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{printed}");
        printed.push_str(&line);
    }
    let url = printed
        .lines()
        .find_map(|line| line.strip_prefix("listening on "))
        .expect("the address is printed before the announcement")
        .trim()
        .to_owned();
    // A publisher request goes through, and still nothing prints the key.
    let response = reqwest::Client::new()
        .post(format!("{url}/operations"))
        .bearer_auth(key)
        .json(&serde_json::json!({"kind": "job", "owner": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // The WebSocket takes it in the query string, which must not be logged.
    let ws = url.replace("http://", "ws://") + "/ws?access_token=" + key;
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    socket.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    kill_process(Pid::from_child(&child), Signal::TERM).unwrap();
    let output = child.wait_with_output().unwrap();
    let rest = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    for text in [printed.as_str(), &rest, &errors] {
        assert!(!text.contains(key), "the key was printed: {text}");
    }
}

#[test]
fn a_short_publisher_key_is_refused_at_startup() {
    let output = Command::new(env!("CARGO_BIN_EXE_optrail-server"))
        .args(["--listen", "127.0.0.1:0", "--database", "/nonexistent/x.db"])
        .env("OPTRAIL_PUBLISHER_KEY", "short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("at least 16 characters"), "{errors}");
    assert!(!errors.contains("short\n"), "{errors}");
}
