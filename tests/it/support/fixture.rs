//! The Python conformance fixture (tests/fixtures/conformance_server.py) as a child process on a
//! free port, for tests that need a real SDK upstream. Absent interop deps → None, with the
//! reason printed (the caller's test then skips).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

pub struct PyFixture {
    child: tokio::process::Child,
    pub url: url::Url,
}

impl PyFixture {
    /// `transport`: "streamable-http" or "sse".
    pub async fn start(transport: &str) -> Option<Self> {
        let (Ok(python), Ok(script)) = (
            std::env::var("REFLOW_FIXTURE_PYTHON"),
            std::env::var("REFLOW_FIXTURE_SERVER"),
        ) else {
            eprintln!(
                "SKIP: REFLOW_FIXTURE_PYTHON and REFLOW_FIXTURE_SERVER are not set (the Python conformance fixture)"
            );
            return None;
        };
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args(["--transport", transport, "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the fixture");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the fixture starts within 60s")
            .unwrap()
            .expect("the fixture prints LISTENING");
        let url = first
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self { child, url })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
