//! `reflow bridge` as a real process on 127.0.0.1:0: started with a command behind it, its
//! address read from its first stdout line, its log kept in a file, stopped by SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

pub struct Bridge {
    child: tokio::process::Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT` (the endpoint is `{base}/mcp`).
    pub base: String,
    log_dir: tempfile::TempDir,
}

impl Bridge {
    /// `reflow bridge --listen 127.0.0.1:0 FLAGS -- COMMAND…` with the test's PATH, HOME and
    /// `env` as its environment.
    pub async fn start(flags: &[&str], env: &[(&str, &str)], command: &[&str]) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(log_dir.path().join("bridge.log")).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"));
        cmd.args(["bridge", "--listen", "127.0.0.1:0"])
            .args(flags)
            .arg("--")
            .args(command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("REFLOW_LOGGING_LEVEL", "debug")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn reflow bridge");
        let pid = child.id().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the bridge printed its address within 30 s")
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "the bridge exited before listening: {}",
                    std::fs::read_to_string(log_dir.path().join("bridge.log")).unwrap_or_default()
                )
            });
        let at = line.find("http://").expect("an URL on the first line");
        let url = &line[at..];
        let base = url.strip_suffix("/mcp").unwrap_or(url).to_string();
        // Keep draining stdout so the bridge never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            pid,
            base,
            log_dir,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("bridge.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits (up to `within`) for the bridge to exit; its exit status.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill only sends a signal, to the process this test started.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|r| r.unwrap())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // SAFETY: as above; kill_on_drop then SIGKILLs whatever is left.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
    }
}
