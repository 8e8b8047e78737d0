//! Where a stdio child starts from: its program, looked up only on a search path the admin or the
//! gateway chose (never on one a credential could set), and its working directory, the target's
//! own or a private scratch directory per process (never the gateway's, which holds its data).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The program to execute for `command`: an absolute path as is; a path with a slash relative
/// to `cwd` (the target's directory); a bare name as the first executable file of that name in
/// `search_path`. The result is absolute, so the child's own PATH plays no part in the lookup.
pub fn resolve_program(
    command: &str,
    search_path: &OsStr,
    cwd: Option<&Path>,
) -> Result<PathBuf, String> {
    let as_given = Path::new(command);
    if as_given.is_absolute() {
        return Ok(as_given.to_path_buf());
    }
    if command.contains('/') {
        return match cwd {
            Some(dir) => Ok(dir.join(as_given)),
            None => Err(format!(
                "{command:?} is a relative path and the target has no cwd to resolve it against \
                 (give an absolute path or set cwd)"
            )),
        };
    }
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            format!(
                "{command:?} was not found on the search path {:?} (the target's own PATH if it \
                 sets one, else the gateway's); give an absolute path",
                search_path.to_string_lossy()
            )
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A child's working directory: the target's, or a fresh directory only the gateway's user can
/// enter (mode 0700), removed when the value is dropped, after the child has been reaped.
pub enum ChildDir {
    Fixed(PathBuf),
    Scratch(TempDir),
}

impl ChildDir {
    pub fn new(configured: Option<&Path>) -> std::io::Result<Self> {
        match configured {
            Some(dir) => Ok(Self::Fixed(dir.to_path_buf())),
            None => tempfile::Builder::new()
                .prefix("reflow-stdio-")
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir()
                .map(Self::Scratch),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Fixed(p) => p,
            Self::Scratch(t) => t.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_on_the_given_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("mytool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(resolve_program("mytool", &path, None).unwrap(), tool);
        // Not on the path given: not found, whatever the process's own PATH says.
        let err = resolve_program("mytool", OsStr::new("/usr/bin"), None).unwrap_err();
        assert!(err.contains("mytool") && err.contains("/usr/bin"), "{err}");
    }

    #[test]
    fn a_file_without_execute_bits_and_relative_path_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert!(resolve_program("plain", &path, None).is_err());
        // "." on a search path would make the lookup depend on the gateway's cwd.
        assert!(resolve_program("sh", OsStr::new(".:bin"), None).is_err());
    }

    #[test]
    fn absolute_and_relative_paths() {
        assert_eq!(
            resolve_program("/bin/sh", OsStr::new(""), None).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve_program("./run.sh", OsStr::new(""), Some(Path::new("/srv/app"))).unwrap(),
            PathBuf::from("/srv/app/./run.sh")
        );
        assert!(resolve_program("./run.sh", OsStr::new("/bin"), None).is_err());
    }

    #[test]
    fn a_scratch_dir_is_private_and_goes_away() {
        let dir = ChildDir::new(None).unwrap();
        let path = dir.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_ne!(path, std::env::current_dir().unwrap());
        drop(dir);
        assert!(!path.exists());
    }
}
