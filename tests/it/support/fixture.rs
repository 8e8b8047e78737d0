//! The Python conformance fixture (tests/fixtures/conformance_server.py) as a child process on a
//! free port, for tests that need a real SDK upstream. Those tests are #[ignore]d with the
//! reason, so `cargo test` reports them as ignored; run with the interop environment (.ci/run).

use std::io::{Read, Seek};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

pub struct PyFixture {
    pub child: tokio::process::Child,
    pub url: url::Url,
    transport: &'static str,
}

impl PyFixture {
    /// `transport`: "streamable-http" or "sse"; on a free port.
    pub async fn start(transport: &'static str) -> Option<Self> {
        Self::start_on(transport, 0).await
    }

    /// Like `start`, on `port` (0: a free one).
    pub async fn start_on(transport: &'static str, port: u16) -> Option<Self> {
        let (Ok(python), Ok(script)) = (
            std::env::var("REFLOW_FIXTURE_PYTHON"),
            std::env::var("REFLOW_FIXTURE_SERVER"),
        ) else {
            // Only tests marked #[ignore = "needs the Python fixture …"] get here, and only when
            // asked for: missing what they need is then a failure, not a silent pass.
            panic!(
                "REFLOW_FIXTURE_PYTHON and REFLOW_FIXTURE_SERVER are not set (the Python conformance fixture): run tests/interop/setup and export them as .ci/run does"
            );
        };
        // Its stderr goes to an anonymous file, read back only when it fails to start.
        let mut stderr = tempfile::tempfile().expect("a file for the fixture's stderr");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args(["--transport", transport, "--port", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(stderr.try_clone().unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start the fixture");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let first = match first {
            Ok(Ok(Some(line))) if line.starts_with("LISTENING ") => line,
            other => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let mut said = String::new();
                stderr.rewind().unwrap();
                let _ = stderr.read_to_string(&mut said);
                panic!(
                    "the Python fixture ({transport}) did not print LISTENING within 60 s: got {other:?}, exit {status:?}; its stderr:\n{said}"
                );
            }
        };
        let url = first["LISTENING ".len()..].parse().unwrap();
        // Keep the pipe drained so the fixture never blocks on a full stdout.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            child,
            url,
            transport,
        })
    }

    /// Stops the fixture and starts a fresh one on the same port: every session is gone.
    pub async fn restart(&mut self) {
        self.child.kill().await.unwrap();
        let port = self.url.port().unwrap();
        *self = Self::start_on(self.transport, port).await.unwrap();
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
