//! Child processes that do not outlive the process that started them: a
//! role killed with SIGKILL takes its task processes (and a killed
//! jupiterctl its supervised roles) with it, instead of leaving them to
//! write into a queue its successor is already using.
//!
//! The kernel does this with PR_SET_PDEATHSIG, which must be set in the
//! child. Setting it between fork and exec (a `pre_exec` hook) forces a
//! real fork of the whole role, whose cost grows with its memory: page
//! tables copied, then every page the role writes before the child's exec
//! copied again. A worker starts one process per task run, so that cost is
//! paid per input. When util-linux's `setpriv` is there, [`command`] starts
//! `setpriv --pdeathsig KILL -- /bin/sh -c CHECK PARENT PROGRAM ARGS…`
//! instead: no hook, so the standard library uses posix_spawn (a vfork
//! that shares memory); `setpriv` sets the signal and execs the shell in
//! the same process, which execs the program only if its parent is still
//! PARENT. That check closes the window in which the parent died before
//! the signal was set (the shell's `$PPID` is read after it), as the fork
//! hook's `getppid` does; a test kills parents in that window.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

/// How [`command`] ties a child to its starter on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tie {
    /// Through `setpriv` and a POSIX shell at these paths, started by
    /// posix_spawn.
    Setpriv { setpriv: PathBuf, sh: PathBuf },
    /// Through a hook between fork and exec.
    Fork,
}

/// Where util-linux installs `setpriv`.
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];
/// The shell that checks the parent, then becomes the program.
const SH: &str = "/bin/sh";
/// Run by the shell with `$0` the parent's pid and `$@` the program and
/// its arguments.
const CHECK: &str = r#"[ "$PPID" = "$0" ] && exec "$@""#;

/// The way children are tied on this machine, found once: `setpriv` if it
/// runs with `--pdeathsig` (util-linux 2.33 or later), unless
/// `JUPITER_CHILD_SPAWN=fork` asks for the fork hook.
pub fn tie() -> &'static Tie {
    static TIE: OnceLock<Tie> = OnceLock::new();
    TIE.get_or_init(|| {
        if std::env::var(crate::env::CHILD_SPAWN).is_ok_and(|v| v == "fork") {
            return Tie::Fork;
        }
        let sh = Path::new(SH);
        if executable(sh).is_err() {
            return Tie::Fork;
        }
        SETPRIV
            .iter()
            .map(Path::new)
            .find(|setpriv| {
                std::process::Command::new(setpriv)
                    .args(setpriv_args(sh))
                    .arg(setpriv)
                    .arg("--version")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })
            .map_or(Tie::Fork, |setpriv| Tie::Setpriv {
                setpriv: setpriv.to_path_buf(),
                sh: sh.to_path_buf(),
            })
    })
}

/// `setpriv`'s arguments that set the death signal, then have the shell
/// check the parent and exec the program and arguments that follow.
fn setpriv_args(sh: &Path) -> [OsString; 7] {
    [
        "--pdeathsig".into(),
        "KILL".into(),
        "--".into(),
        sh.into(),
        "-c".into(),
        CHECK.into(),
        std::process::id().to_string().into(),
    ]
}

/// A command for `program` whose process is SIGKILLed when the thread that
/// spawns it ends. Spawn it from a long-lived thread (a tokio runtime's
/// workers, not `spawn_blocking`), whose end is the process's end.
///
/// A program that cannot be found or run is an error here, as it would be
/// at spawn: `setpriv` would only find out after the spawn succeeded.
pub fn command(program: impl AsRef<OsStr>) -> io::Result<Command> {
    let program = program.as_ref();
    if let Tie::Setpriv { setpriv, sh } = tie() {
        // A relative path with a slash is relative to the folder the
        // command will be given, unknown here: such programs take the fork.
        if let Some(resolved) = resolve(program)? {
            let mut command = Command::new(setpriv);
            command.args(setpriv_args(sh)).arg(resolved);
            return Ok(command);
        }
    }
    let mut command = Command::new(program);
    die_with_parent(&mut command);
    Ok(command)
}

/// The executable file `program` names, looked up in `PATH` when it is a
/// bare name; `None` for a relative path with a slash.
fn resolve(program: &OsStr) -> io::Result<Option<PathBuf>> {
    let path = Path::new(program);
    if path.is_absolute() {
        return executable(path).map(|()| Some(path.to_path_buf()));
    }
    if path.components().count() > 1 || program.is_empty() {
        return Ok(None);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_absolute() && executable(candidate).is_ok())
        .map(Some)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// Fails as exec would on a missing or non-executable `path`.
fn executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }
}

/// Makes the kernel SIGKILL the child when the thread that started it
/// ends, by a hook between fork and exec. For commands that need a hook
/// of their own anyway (the supervisor's descriptor passing); others take
/// [`command`].
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork
    // and exec.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the line above took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process is gone"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_found_in_path_and_missing_ones_refused() {
        let sh = resolve(OsStr::new("sh")).unwrap().unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        let missing = resolve(OsStr::new("no-such-program-jupiter")).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(resolve(OsStr::new("./run.sh")).unwrap(), None);
        let absent = resolve(OsStr::new("/no/such/program")).unwrap_err();
        assert_eq!(absent.raw_os_error(), Some(libc::ENOENT));
        let plain = tempfile::NamedTempFile::new().unwrap();
        let not_exec = resolve(plain.path().as_os_str()).unwrap_err();
        assert_eq!(not_exec.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn setpriv_is_taken_where_util_linux_has_it() {
        let wanted_fork = std::env::var(crate::env::CHILD_SPAWN).is_ok_and(|v| v == "fork");
        if Path::new(SETPRIV[0]).exists() && !wanted_fork {
            let setpriv = SETPRIV[0].into();
            assert_eq!(
                tie(),
                &Tie::Setpriv {
                    setpriv,
                    sh: SH.into()
                }
            );
        }
    }

    /// The child really has the death signal, whichever way it was set:
    /// its own /proc status cannot show it, so it asks the kernel itself.
    #[tokio::test]
    async fn the_child_carries_the_death_signal() {
        let python = resolve(OsStr::new("python3")).unwrap().unwrap();
        let mut cmd = command(&python).unwrap();
        cmd.args([
            "-c",
            "import ctypes,signal; s=ctypes.c_int(); \
             ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print(s.value)",
        ]);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            libc::SIGKILL.to_string()
        );
    }
}
