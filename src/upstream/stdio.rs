//! The stdio transport: an upstream MCP server run as a child process, spoken to with
//! newline-delimited JSON-RPC on its stdin and stdout. The child runs without a shell, in its own
//! process group, with exactly the environment the spec names; its stderr goes to tracing,
//! rate limited and with every secret value masked. Closing the connection ends the process
//! (stdin closed → SIGTERM to the group → SIGKILL) and always reaps it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, watch};

use super::child::{ChildDir, resolve_program};
use super::lines::{read_line_bounded, read_line_with_tail};
use super::{
    Core, Handshake, HttpTransport, Pending, ServerInfo, UpstreamError, outcome, response_id,
    serialize, server_info,
};
use crate::config::Secret;
use crate::mcp::{RpcError, jsonrpc};

/// How long a child may take to exit on its own after its stdin closed, then after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(1500);
/// At most this many stderr lines per second reach the log; the rest are counted and dropped.
const STDERR_LINES_PER_SEC: u32 = 50;
/// A stderr line is logged up to this many bytes; the rest is read and thrown away.
const STDERR_LINE_MAX: usize = 4096;
/// At most this many stderr bytes per second reach the log.
const STDERR_BYTES_PER_SEC: usize = 64 * 1024;

/// What to run for one stdio upstream. Debug never shows env values.
#[derive(Clone)]
pub struct StdioSpec {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    /// The child's whole environment: nothing else is inherited.
    pub env: BTreeMap<String, Secret>,
    /// Where a bare command name is looked up: never a value a credential could set.
    pub search_path: OsString,
    /// The target's directory; none: a private scratch directory for this process.
    pub cwd: Option<PathBuf>,
    /// Values masked in the child's stderr before it is logged (resolved credentials).
    pub redact: Vec<Secret>,
    /// Per request.
    pub timeout: Duration,
    /// The longest stdout line taken from it (`gateway.max_upstream_message`).
    pub max_message: usize,
}

impl fmt::Debug for StdioSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioSpec")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("search_path", &self.search_path)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub(super) struct StdioConn {
    core: Arc<Core>,
    stdin: Mutex<Option<ChildStdin>>,
    pending: Pending,
    pid: u32,
    /// How the process ended, once it did (crash or close).
    exit: OnceLock<String>,
    /// Flipped when the child has been reaped.
    reaped: watch::Sender<bool>,
}

impl StdioConn {
    pub(super) async fn spawn(
        core: &Arc<Core>,
        spec: &StdioSpec,
        handshake: &Handshake,
    ) -> Result<(Arc<Self>, ServerInfo), UpstreamError> {
        let program = resolve_program(&spec.command, &spec.search_path, spec.cwd.as_deref())
            .map_err(|e| UpstreamError::Connect(format!("cannot start {:?}: {e}", spec.command)))?;
        let dir = ChildDir::new(spec.cwd.as_deref()).map_err(|e| {
            UpstreamError::Connect(format!(
                "cannot start {:?}: no working directory: {e}",
                spec.command
            ))
        })?;
        let mut cmd = Command::new(&program);
        cmd.args(&spec.args)
            .current_dir(dir.path())
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v.expose())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: signals reach whatever it spawned (npx → node), and a Ctrl-C
            // meant for the gateway does not reach it.
            .process_group(0)
            .kill_on_drop(true);
        let gateway = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                // A gateway that dies without cleaning up (SIGKILL, OOM) takes the child along.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // It may have died before the prctl took effect.
                if libc::getppid() != gateway {
                    return Err(std::io::Error::other("the gateway exited"));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| UpstreamError::Connect(format!("cannot start {:?}: {e}", spec.command)))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let conn = Arc::new(Self {
            core: core.clone(),
            stdin: Mutex::new(stdin),
            pending: Pending::default(),
            pid,
            exit: OnceLock::new(),
            reaped: watch::Sender::new(false),
        });
        tokio::spawn(log_stderr(
            spec.name.clone(),
            pid,
            stderr,
            spec.redact.clone(),
        ));
        tokio::spawn(conn.clone().read(stdout));
        tokio::spawn(conn.clone().supervise(child, dir));
        match conn.initialize(handshake, spec.timeout).await {
            Ok(server) => Ok((conn, server)),
            Err(e) => {
                conn.shutdown().await;
                Err(match e {
                    UpstreamError::Closed => conn.exited_error(),
                    e => e,
                })
            }
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// How the process ended, if it has.
    pub(super) fn exit_status(&self) -> Option<&str> {
        self.exit.get().map(String::as_str)
    }

    async fn initialize(
        &self,
        handshake: &Handshake,
        timeout: Duration,
    ) -> Result<ServerInfo, UpstreamError> {
        let id = self.core.next_id();
        let body = serialize(&jsonrpc::request(
            id.clone(),
            "initialize",
            Some(handshake.params()),
        ));
        let result = tokio::time::timeout(timeout, self.call(&id, body))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        let server = server_info(result, HttpTransport::Stdio)?;
        self.send(serialize(&jsonrpc::notification(
            "notifications/initialized",
            None,
        )))
        .await?;
        Ok(server)
    }

    /// Demultiplexes stdout until it ends: responses to their waiting requests, the rest to the
    /// gateway. Lines that are not JSON (a chatty server) are logged and skipped.
    async fn read(self: Arc<Self>, stdout: tokio::process::ChildStdout) {
        let mut lines = BufReader::new(stdout);
        let (mut buf, mut tail) = (Vec::new(), Vec::new());
        let closed = self.core.closed_signal();
        let work = async {
            loop {
                // Bounded: an endless line is read and thrown away, never held whole.
                let max = self.core.max_message;
                match read_line_with_tail(&mut lines, max + 1, &mut buf, &mut tail, 256).await {
                    Ok(None) | Err(_) => break,
                    Ok(Some(total)) if total > max => {
                        tracing::warn!(target: "reflow::upstream", upstream = %self.core.name, bytes = total, max, "dropping a stdout line over gateway.max_upstream_message");
                        // Its request fails now with the reason, rather than at its timeout.
                        if let Some(id) = super::limits::oversized_id(&buf, &tail) {
                            let error = jsonrpc::error_response(
                                id,
                                &RpcError::internal(super::limits::too_large_message(max)),
                            );
                            if let Some(waiter) =
                                response_id(&error).and_then(|id| self.pending.take(id))
                            {
                                let _ = waiter.send(error);
                            }
                        }
                        continue;
                    }
                    Ok(Some(_)) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let message: Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(_) => {
                        tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, "ignoring a stdout line that is not JSON");
                        continue;
                    }
                };
                match response_id(&message).map(|id| self.pending.take(id)) {
                    Some(Some(waiter)) => {
                        let _ = waiter.send(message);
                    }
                    Some(None) => {
                        tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, "ignoring a response nobody waits for")
                    }
                    None => self.core.deliver(message, None).await,
                }
            }
        };
        tokio::select! {
            _ = closed => {}
            _ = work => {}
        }
        self.core.close();
        self.pending.clear();
    }

    /// Owns the child: waits for it to exit, or ends it when the connection closes. Either way
    /// it is reaped, its group is killed, and waiting requests fail at once.
    /// A scratch directory goes with it, once nothing runs in it any more.
    async fn supervise(self: Arc<Self>, mut child: Child, dir: ChildDir) {
        let closed = self.core.closed_signal();
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = closed => None,
        };
        let status = match exited {
            Some(status) => {
                drop(self.stdin.lock().await.take());
                status
            }
            None => self.stop(&mut child).await,
        };
        let text = match status {
            Ok(s) => describe_status(s),
            Err(e) => format!("could not be waited for: {e}"),
        };
        if !self.core.is_closed() {
            tracing::warn!(target: "reflow::upstream", upstream = %self.core.name, pid = self.pid, status = %text, "the stdio upstream exited");
        }
        let _ = self.exit.set(text);
        // Anything the leader left behind in its group goes too.
        signal_group(self.pid, libc::SIGKILL);
        self.core.close();
        self.pending.clear();
        drop(dir);
        self.reaped.send_replace(true);
    }

    /// Stdin closed → wait → SIGTERM to the group → wait → SIGKILL; returns once reaped.
    async fn stop(&self, child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
        // A writer stuck on a full pipe holds the lock: then go on to the signals.
        if let Ok(mut stdin) = tokio::time::timeout(EXIT_GRACE, self.stdin.lock()).await {
            drop(stdin.take());
        }
        if let Ok(status) = tokio::time::timeout(EXIT_GRACE, child.wait()).await {
            return status;
        }
        signal_group(self.pid, libc::SIGTERM);
        if let Ok(status) = tokio::time::timeout(EXIT_GRACE, child.wait()).await {
            return status;
        }
        signal_group(self.pid, libc::SIGKILL);
        let _ = child.start_kill();
        child.wait().await
    }

    /// Ends the process and waits until it is reaped.
    pub(super) async fn shutdown(&self) {
        self.core.close();
        let mut rx = self.reaped.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    fn exited_error(&self) -> UpstreamError {
        match self.exit.get() {
            Some(status) => UpstreamError::Exited(status.clone()),
            None => UpstreamError::Closed,
        }
    }

    pub(super) async fn call(&self, id: &Value, body: Bytes) -> Result<Value, UpstreamError> {
        let (_guard, answer) = self.pending.insert(id);
        if self.core.is_closed() {
            return Err(self.exited_error());
        }
        self.send(body).await?;
        match answer.await {
            Ok(message) => outcome(message),
            Err(_) => {
                // The reader may notice EOF a moment before the supervisor reaps the child.
                let mut rx = self.reaped.subscribe();
                let _ = tokio::time::timeout(Duration::from_millis(200), rx.wait_for(|r| *r)).await;
                Err(self.exited_error())
            }
        }
    }

    /// Writes one message and its newline; a write to a gone process is `Closed`.
    pub(super) async fn send(&self, body: Bytes) -> Result<(), UpstreamError> {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(self.exited_error());
        };
        let written = async {
            pipe.write_all(&body).await?;
            pipe.write_all(b"\n").await?;
            pipe.flush().await
        };
        written.await.map_err(|_| self.exited_error())
    }
}

fn describe_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg only sends a signal; the group is the child's own (process_group(0)).
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Logs the child's stderr line by line, at most `STDERR_LINES_PER_SEC` a second, with every
/// secret value masked.
async fn log_stderr(
    name: String,
    pid: u32,
    stderr: tokio::process::ChildStderr,
    redact: Vec<Secret>,
) {
    let mut reader = BufReader::new(stderr);
    // Kept beyond the cut so that a secret straddling it is still whole when masked.
    let longest = redact.iter().map(|s| s.expose().len()).max().unwrap_or(0);
    let mut buf = Vec::new();
    let mut window = Instant::now();
    let (mut shown, mut shown_bytes, mut dropped) = (0u32, 0usize, 0u64);
    while let Ok(Some(total)) =
        read_line_bounded(&mut reader, STDERR_LINE_MAX + longest, &mut buf).await
    {
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::info!(target: "reflow::upstream::stderr", upstream = %name, pid, dropped, "stderr lines dropped (rate limit)");
            }
            window = Instant::now();
            (shown, shown_bytes, dropped) = (0, 0, 0);
        }
        let size = total.min(STDERR_LINE_MAX);
        if shown >= STDERR_LINES_PER_SEC || shown_bytes + size > STDERR_BYTES_PER_SEC {
            dropped += 1;
            continue;
        }
        shown += 1;
        shown_bytes += size;
        let line = cut_line(&mask(&String::from_utf8_lossy(&buf), &redact), total);
        tracing::info!(target: "reflow::upstream::stderr", upstream = %name, pid, "{line}");
    }
    if dropped > 0 {
        tracing::info!(target: "reflow::upstream::stderr", upstream = %name, pid, dropped, "stderr lines dropped (rate limit)");
    }
}

/// A masked line cut to `STDERR_LINE_MAX` bytes (on a character boundary), saying how much of
/// the original `total` bytes was left out.
fn cut_line(masked: &str, total: usize) -> String {
    if masked.len() <= STDERR_LINE_MAX && total <= STDERR_LINE_MAX {
        return masked.to_string();
    }
    let mut end = STDERR_LINE_MAX.min(masked.len());
    while !masked.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} … [{} bytes cut]",
        &masked[..end],
        total.saturating_sub(end)
    )
}

/// `line` with every occurrence of every secret value replaced by `***`.
pub(crate) fn mask(line: &str, secrets: &[Secret]) -> String {
    let mut out = line.to_string();
    for s in secrets {
        let v = s.expose();
        if !v.is_empty() && out.contains(v) {
            out = out.replace(v, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_endless_stderr_line_costs_bounded_memory_and_is_cut_after_masking() {
        let secret = Secret::new("TOPSECRET-VALUE".into());
        // The secret straddles the cut: it must be masked, not half shown.
        let mut line = "x".repeat(STDERR_LINE_MAX - 5);
        line.push_str(secret.expose());
        line.push_str(&"y".repeat(10 * 1024 * 1024));
        let input = format!("{line}\nshort line\n");
        let mut reader = BufReader::new(input.as_bytes());
        let keep = STDERR_LINE_MAX + secret.expose().len();
        let mut buf = Vec::new();
        let total = read_line_bounded(&mut reader, keep, &mut buf)
            .await
            .unwrap();
        assert_eq!(total, Some(line.len()));
        assert!(buf.len() <= keep, "kept {} bytes", buf.len());
        let shown = cut_line(
            &mask(
                &String::from_utf8_lossy(&buf),
                std::slice::from_ref(&secret),
            ),
            line.len(),
        );
        assert!(
            !shown.contains("TOPSE"),
            "no part of the secret: …{}",
            &shown[shown.len() - 60..]
        );
        assert!(
            shown.ends_with("bytes cut]"),
            "{}",
            &shown[shown.len() - 40..]
        );
        assert!(shown.len() < STDERR_LINE_MAX + 64);
        let next = read_line_bounded(&mut reader, keep, &mut buf)
            .await
            .unwrap();
        assert_eq!((next, buf.as_slice()), (Some(10), b"short line".as_slice()));
        assert_eq!(
            read_line_bounded(&mut reader, keep, &mut buf)
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn mask_replaces_every_secret_value() {
        let secrets = vec![Secret::new("s3cret".into()), Secret::new(String::new())];
        assert_eq!(
            mask("token=s3cret again s3cret", &secrets),
            "token=*** again ***"
        );
        assert_eq!(mask("nothing here", &secrets), "nothing here");
    }

    /// Captures what the stderr logger writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stderr_is_logged_masked_and_rate_limited() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            rt.block_on(async {
                // A test-only shell: 1 secret line, then 200 more in one burst.
                let mut child = Command::new("/bin/sh")
                    .args(["-c", "echo token=s3cret-value >&2; i=0; while [ $i -lt 200 ]; do echo burst $i >&2; i=$((i+1)); done"])
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let stderr = child.stderr.take().unwrap();
                log_stderr(
                    "fx".into(),
                    child.id().unwrap(),
                    stderr,
                    vec![Secret::new("s3cret-value".into())],
                )
                .await;
                child.wait().await.unwrap();
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("token=***"), "{text}");
        assert!(
            !text.contains("s3cret-value"),
            "a secret reached the log: {text}"
        );
        let shown = text.lines().filter(|l| l.contains("burst")).count();
        assert!(
            shown < STDERR_LINES_PER_SEC as usize,
            "at most {STDERR_LINES_PER_SEC} lines a second: {shown}"
        );
        assert!(text.contains("dropped"), "the drop is reported: {text}");
    }
}
