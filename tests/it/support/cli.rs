//! Running the built `reflow` binary against a test database, with a clean environment.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::TestDb;

/// Where the CLI finds its database and data dir; every invocation passes both explicitly.
pub struct Target {
    pub url: String,
    pub data_dir: PathBuf,
}

impl Target {
    pub fn of(db: &TestDb) -> Self {
        Self {
            url: db.url.clone(),
            data_dir: db.dir.path().join("data"),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None, &[]).await
    }

    pub async fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, Some(stdin), &[]).await
    }

    pub async fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut full: Vec<String> = vec![
            "--database-url".into(),
            self.url.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        run_reflow(&full, stdin, env).await
    }
}

pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "reflow {:?}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn fails(&self, code: i32, stderr_has: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}:\n{}",
            self.describe()
        );
        assert!(
            self.stderr.contains(stderr_has),
            "stderr should contain {stderr_has:?}:\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }
}

/// Runs the binary with a clean environment: PATH and HOME only, plus `env`.
pub async fn run_reflow(args: &[String], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var_os("HOME").unwrap_or_else(|| "/nonexistent".into()),
        )
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn reflow");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out: Output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("reflow {args:?} did not finish within 60 s"))
        .unwrap();
    Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Target {
    /// Starts `reflow serve --port 0` on this database; returns the process (killed when
    /// dropped) and its base URL once it listens. Its log is drained so it never blocks.
    pub async fn serve(&self) -> (tokio::process::Child, String) {
        self.serve_with_env(&[]).await
    }

    /// `serve` with extra environment variables (the rest of the environment is cleared).
    pub async fn serve_with_env(&self, env: &[(&str, &str)]) -> (tokio::process::Child, String) {
        use tokio::io::AsyncBufReadExt;
        let mut child = self.spawn_with_env(&["serve", "--port", "0"], env);
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("MCP endpoint http://127.0.0.1:").map(|i| i + 13)
                    && let Some(tx) = tx.take()
                {
                    let url = &line[at..];
                    let end = url.find("/mcp").unwrap_or(url.len());
                    let _ = tx.send(url[..end].to_string());
                }
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("reflow serve printed its address within 60 s")
            .expect("reflow serve exited before listening");
        (child, base)
    }

    /// Starts `reflow` with this database and piped stdout, for long-running commands.
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.spawn_with_env(args, &[])
    }

    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"));
        cmd.arg("--database-url")
            .arg(&self.url)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn reflow")
    }
}
