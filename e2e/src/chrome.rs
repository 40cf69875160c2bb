//! chromedriver as a child process, and headless Chromium sessions through
//! it, each with a fresh profile.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::ChildGuard;
use crate::{Context, Failure, Result, workspace};

/// The switches every browser gets (see TOOLCHAIN.md).
pub const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
    // performance.memory in bytes rather than coarse buckets (bench-live).
    "--enable-precise-memory-info",
];

/// A chromedriver on a free loopback port, killed with every browser it
/// started (its process group) when dropped.
pub struct ChromeDriver {
    child: ChildGuard,
    url: String,
    dir: TempDir,
}

impl ChromeDriver {
    pub async fn start() -> Result<Self> {
        let binary = workspace::chromedriver()?;
        workspace::chromium()?;
        let dir = tempfile::Builder::new()
            .prefix("optrail-e2e-chromedriver-")
            .tempdir()
            .context("cannot create chromedriver's temporary directory")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let mut last_error = Failure::new("chromedriver never started");
        // A port picked free may be taken before chromedriver binds it.
        for attempt in 1..=3 {
            let port = free_port()?;
            let log = dir.path().join(format!("chromedriver-{attempt}.log"));
            let mut command = Command::new(&binary);
            command
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .arg("--log-level=INFO")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = ChildGuard::spawn("chromedriver", command, true)?;
            let url = format!("http://127.0.0.1:{port}/");
            match wait_ready(&http, &url, &mut child).await {
                Ok(()) => return Ok(Self { child, url, dir }),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// chromedriver's own logs, oldest first.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        logs
    }

    /// A new headless Chromium with an empty profile of its own.
    pub async fn new_browser(&self) -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("optrail-e2e-profile-")
            .tempdir()
            .context("cannot create a browser profile directory")?;
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": workspace::chromium()?,
                "args": args,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&self.url),
        )
        .await
        .map_err(|_| Failure::new("Chromium did not start within 30 s"))?
        .context("cannot start a Chromium session through chromedriver")?;
        Ok(Browser {
            client,
            _profile: profile,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }
}

/// One WebDriver session: a browser with a fresh `--user-data-dir`.
pub struct Browser {
    client: Client,
    _profile: TempDir,
}

impl Browser {
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session, which closes the browser.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
    }

    /// The browser's console since the last call (chromedriver's
    /// `goog:loggingPrefs` log endpoint), one line per entry.
    pub async fn console_log(&self) -> Result<Vec<String>> {
        let value = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .context("reading the browser log")?;
        let entries = value.as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .map(|entry| {
                format!(
                    "{} {} {}",
                    entry["timestamp"],
                    entry["level"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }
}

/// `POST /session/{id}/se/log {"type": "browser"}`: chromedriver's console
/// log, which W3C WebDriver itself does not have.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// A loopback port free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_ready(http: &reqwest::Client, url: &str, child: &mut ChildGuard) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = http.get(format!("{url}status")).send().await
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == json!(true)
        {
            return Ok(());
        }
        if let Some(status) = child.exited() {
            return Err(Failure::new(format!(
                "chromedriver exited ({status}) before it was ready"
            )));
        }
        if Instant::now() > deadline {
            return Err(Failure::new("chromedriver was not ready within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
