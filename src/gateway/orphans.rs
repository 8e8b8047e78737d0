//! Children an earlier run of this gateway left behind (it was SIGKILLed before it could stop
//! them, and a child that ignores SIGTERM, or a grandchild, survived): found at start by the
//! recorded pid and process start time, so an unrelated process that reused the pid is never
//! touched, and killed with their process group.

use chrono::{DateTime, Utc};

/// How far the kernel's start time may be from the recorded one: the row is written a moment
/// after the spawn.
const START_SLACK_SECS: i64 = 5;

/// When `pid` started, from /proc: its start tick after boot, plus the boot time.
fn process_start(pid: u32) -> Option<DateTime<Utc>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; starttime is field 22 (index 19 here).
    let (_, rest) = stat.rsplit_once(')')?;
    let ticks: i64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    let millis = boot * 1000 + ticks * 1000 / hz as i64;
    DateTime::from_timestamp_millis(millis)
}

/// Kills the process group of `pid` if that process is the one started at `started_at`.
/// Returns whether it was found alive and killed.
pub(super) fn kill_leftover(pid: u32, started_at: DateTime<Utc>) -> bool {
    let Some(start) = process_start(pid) else {
        return false;
    };
    if (start - started_at).num_seconds().abs() > START_SLACK_SECS {
        return false;
    }
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signals only the group the child was started in (process_group(0)): itself and
    // whatever it spawned.
    unsafe { libc::killpg(pgid, libc::SIGKILL) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_started_recently_and_a_wrong_start_time_protects_it() {
        let me = std::process::id();
        let start = process_start(me).expect("our own start time");
        let age = Utc::now() - start;
        assert!(age.num_seconds() >= 0 && age.num_days() < 1, "{start}");
        // A recorded start an hour off is another process that reused the pid: left alone.
        assert!(!kill_leftover(me, start - chrono::Duration::hours(1)));
    }

    #[test]
    fn a_leftover_child_is_killed_with_its_group() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let started = process_start(child.id()).unwrap();
        assert!(kill_leftover(child.id(), started));
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
    }
}
