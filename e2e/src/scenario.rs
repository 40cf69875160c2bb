//! One scenario's world: a server (perhaps with more instances of it on
//! its database), a chromedriver, the browsers opened and perhaps a proxy;
//! torn down whatever happens, with a screenshot and the console log of
//! every window saved first when the scenario fails.

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;

use crate::chrome::{Browser, ChromeDriver};
use crate::page::Widget;
use crate::proxy::FaultyProxy;
use crate::server::{ServerOptions, ServerProcess};
use crate::{Result, workspace};

/// No scenario may take longer than this.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// What a scenario body works with.
pub struct Scenario {
    name: String,
    pub server: ServerProcess,
    /// More instances of `server` on its database, in the order
    /// [`Scenario::start_instance`] started them.
    pub instances: Vec<ServerProcess>,
    pub proxy: Option<FaultyProxy>,
    browsers: Vec<Browser>,
    // Dropped last: killing it kills any browser left over.
    chromedriver: ChromeDriver,
}

impl Scenario {
    /// Sets up, runs `body`, tears down. Panics (failing the test) with the
    /// failure and the paths of the saved artifacts if `body` fails,
    /// panics or overruns [`SCENARIO_LIMIT`].
    pub async fn run(name: &str, body: impl AsyncFnOnce(&mut Scenario) -> Result<()>) {
        Self::run_with(name, ServerOptions::default(), body).await;
    }

    /// [`Scenario::run`] with a server started with `options`.
    pub async fn run_with(
        name: &str,
        options: ServerOptions,
        body: impl AsyncFnOnce(&mut Scenario) -> Result<()>,
    ) {
        let mut scenario = match Self::set_up(name, options).await {
            Ok(scenario) => scenario,
            Err(e) => panic!("{name}: cannot set up: {e}"),
        };
        let outcome = AssertUnwindSafe(tokio::time::timeout(SCENARIO_LIMIT, body(&mut scenario)))
            .catch_unwind()
            .await;
        let failure = match outcome {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(e.to_string()),
            Ok(Err(_)) => Some(format!("did not finish within {SCENARIO_LIMIT:?}")),
            Err(panic) => Some(panic_message(panic.as_ref())),
        };
        match failure {
            None => scenario.tear_down().await,
            Some(failure) => {
                let saved = scenario.save_artifacts().await;
                scenario.tear_down().await;
                let mut message = format!("{name} failed: {failure}\nartifacts:");
                for path in &saved {
                    let _ = write!(message, "\n  {}", path.display());
                }
                eprintln!("{message}");
                panic!("{message}");
            }
        }
    }

    async fn set_up(name: &str, options: ServerOptions) -> Result<Self> {
        let server = ServerProcess::start(options).await?;
        let chromedriver = ChromeDriver::start().await?;
        Ok(Self {
            name: name.to_owned(),
            server,
            instances: Vec::new(),
            proxy: None,
            browsers: Vec::new(),
            chromedriver,
        })
    }

    /// A new browser with an empty profile, not navigated yet; its widget
    /// is served by the server directly.
    pub async fn browser(&mut self) -> Result<Widget> {
        let base = self.server.url();
        self.browser_at(base).await
    }

    /// A new browser whose widget is served from `base` (the proxy).
    pub async fn browser_at(&mut self, base: String) -> Result<Widget> {
        let browser = self.chromedriver.new_browser().await?;
        let widget = Widget::new(browser.client().clone(), base);
        self.browsers.push(browser);
        Ok(widget)
    }

    /// Starts another instance of the server with its options: on a shared
    /// PostgreSQL database ([`ServerOptions::database`]), the same service.
    pub async fn start_instance(&mut self) -> Result<&ServerProcess> {
        let instance = self.server.another_instance().await?;
        self.instances.push(instance);
        Ok(&self.instances[self.instances.len() - 1])
    }

    /// Starts the fault-injecting proxy in front of the server.
    pub async fn start_proxy(&mut self) -> Result<&FaultyProxy> {
        let proxy = FaultyProxy::start(self.server.addr()).await?;
        Ok(self.proxy.insert(proxy))
    }

    async fn tear_down(mut self) {
        for browser in self.browsers.drain(..) {
            browser.close().await;
        }
        self.proxy = None;
        self.server.kill();
        for instance in &mut self.instances {
            instance.kill();
        }
        // chromedriver (and its process group) goes when `self` drops.
    }

    /// Screenshot, page source and console log of every window, plus the
    /// server's and chromedriver's logs, under `e2e-artifacts/NAME-TIME/`.
    async fn save_artifacts(&mut self) -> Vec<PathBuf> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let dir = workspace::artifacts_dir().join(format!("{}-{stamp}", self.name));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return Vec::new();
        }
        let mut saved = Vec::new();
        for (b, browser) in self.browsers.iter().enumerate() {
            let within = Duration::from_secs(20);
            match tokio::time::timeout(within, save_browser(browser, &dir, b + 1)).await {
                Ok(paths) => saved.extend(paths),
                Err(_) => eprintln!("browser {}: saving artifacts timed out", b + 1),
            }
        }
        let mut logs: Vec<(String, PathBuf)> = (self.server.logs().iter())
            .map(|log| (String::new(), log.clone()))
            .collect();
        for (i, instance) in self.instances.iter().enumerate() {
            // Their files are named as the server's: prefixed here.
            let prefix = format!("instance{}-", i + 2);
            logs.extend(
                instance
                    .logs()
                    .iter()
                    .map(|log| (prefix.clone(), log.clone())),
            );
        }
        logs.extend(
            self.chromedriver
                .logs()
                .into_iter()
                .map(|log| (String::new(), log)),
        );
        for (prefix, log) in logs {
            let name = log
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let to = dir.join(format!("{prefix}{name}"));
            if std::fs::copy(&log, &to).is_ok() {
                saved.push(to);
            }
        }
        saved
    }
}

async fn save_browser(browser: &Browser, dir: &Path, b: usize) -> Vec<PathBuf> {
    let mut saved = Vec::new();
    let client = browser.client();
    let windows = client.windows().await.unwrap_or_default();
    for (w, window) in windows.into_iter().enumerate() {
        let _ = client.switch_to_window(window).await;
        let prefix = dir.join(format!("browser{b}-window{}", w + 1));
        let png = prefix.with_extension("png");
        match client.screenshot().await {
            Ok(bytes) if std::fs::write(&png, &bytes).is_ok() => saved.push(png),
            Ok(_) => {}
            Err(e) => eprintln!("screenshot of {}: {e}", png.display()),
        }
        let html = prefix.with_extension("html");
        if let Ok(source) = client.source().await
            && std::fs::write(&html, source).is_ok()
        {
            saved.push(html);
        }
        let log = prefix.with_extension("console.log");
        let text = match browser.console_log().await {
            Ok(lines) => lines.join("\n"),
            Err(e) => format!("(the console log could not be read: {e})"),
        };
        if std::fs::write(&log, text).is_ok() {
            saved.push(log);
        }
    }
    saved
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_owned()
    }
}
