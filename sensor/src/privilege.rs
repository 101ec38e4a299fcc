//! Dropping root after `live` has loaded, attached and bound.
//!
//! Loading the XDP program, attaching it and binding AF_XDP sockets need CAP_BPF, CAP_NET_ADMIN and
//! CAP_NET_RAW. Nothing after that does: since Linux 6.5 `bpf()` on an already open map fd (the
//! counters, the own-address maps) checks only the fd, the bpf_link goes away when its fd is closed,
//! and the rings, the alarm file and the sockets are open fds. So the process switches to an
//! unprivileged user, which (without PR_SET_KEEPCAPS) clears the permitted and effective capability
//! sets of every thread: glibc runs setgroups/setresgid/setresuid on all threads of the process.

use std::ffi::{CStr, CString};
use std::io;

/// Whom to run as after the privileged set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("user `{0}` does not exist (create it, e.g. `useradd --system --no-create-home dnsentry`, or pass --user)")]
    NoSuchUser(String),
    #[error("looking up user `{user}`: {source}")]
    Lookup { user: String, source: io::Error },
    #[error("{what} failed while dropping privileges to `{user}`: {source}")]
    Syscall { what: &'static str, user: String, source: io::Error },
    #[error("privileges still held after switching to `{user}`: {what}")]
    StillPrivileged { user: String, what: String },
}

/// The user the sensor drops to when none is configured: `dnsentry` when it exists, else `nobody`.
pub const DEFAULT_USERS: [&str; 2] = ["dnsentry", "nobody"];

/// Looks up `name` in the user database (getpwnam_r; NSS included).
pub fn lookup(name: &str) -> Result<Option<Account>, PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::NoSuchUser(name.to_string()))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data; getpwnam_r writes strings into `buf`, which outlives `pw`'s use.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    loop {
        let rc =
            unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        match rc {
            0 => break,
            // A huge entry (NSS): retry with a larger buffer, up to 1 MiB.
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => {
                let source = io::Error::from_raw_os_error(rc);
                return Err(PrivilegeError::Lookup { user: name.to_string(), source });
            }
        }
    }
    if out.is_null() {
        return Ok(None);
    }
    // SAFETY: pw_name points into `buf` and is NUL-terminated (getpwnam_r succeeded).
    let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned();
    Ok(Some(Account { name, uid: pw.pw_uid, gid: pw.pw_gid }))
}

/// Resolves the configured user: "" picks the first of [`DEFAULT_USERS`] that exists; "root"
/// means keep privileges (returns `None`).
pub fn resolve(user: &str) -> Result<Option<Account>, PrivilegeError> {
    match user {
        "root" => Ok(None),
        "" => {
            for u in DEFAULT_USERS {
                if let Some(a) = lookup(u)? {
                    return Ok(Some(a));
                }
            }
            Err(PrivilegeError::NoSuchUser(DEFAULT_USERS[0].to_string()))
        }
        u => lookup(u)?.map(Some).ok_or_else(|| PrivilegeError::NoSuchUser(u.to_string())),
    }
}

fn check(rc: libc::c_int, what: &'static str, user: &str) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Syscall { what, user: user.to_string(), source: io::Error::last_os_error() })
    }
}

/// Switches every thread of the process to `a` (supplementary groups, gid, uid) and checks that
/// no capability is left and that root cannot be regained.
pub fn drop_to(a: &Account) -> Result<(), PrivilegeError> {
    let user = a.name.as_str();
    // SAFETY: plain syscalls through glibc, which applies them to all threads.
    unsafe {
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)", user)?;
        check(libc::setgroups(1, &a.gid), "setgroups", user)?;
        check(libc::setresgid(a.gid, a.gid, a.gid), "setresgid", user)?;
        check(libc::setresuid(a.uid, a.uid, a.uid), "setresuid", user)?;
    }
    if a.uid != 0 {
        let held = capabilities_held_after_exits().map_err(|e| PrivilegeError::Syscall {
            what: "reading /proc/self/task/*/status",
            user: user.to_string(),
            source: e,
        })?;
        if let Some(what) = held {
            return Err(PrivilegeError::StillPrivileged { user: user.to_string(), what });
        }
    }
    // SAFETY: a probe; on success we are still root, which is reported as an error.
    if a.uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(PrivilegeError::StillPrivileged {
            user: user.to_string(),
            what: "setuid(0) succeeded".into(),
        });
    }
    Ok(())
}

/// [`capabilities_held`], looked at again while a thread still reports capabilities, for up to
/// 100 ms: a thread that was exiting during the switch (a metrics connection just served) is
/// skipped by it and keeps its old credentials until it is gone, while a thread that really kept
/// them stays.
fn capabilities_held_after_exits() -> io::Result<Option<String>> {
    let mut held = capabilities_held()?;
    for _ in 0..20 {
        if held.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        held = capabilities_held()?;
    }
    Ok(held)
}

/// The first thread of this process still holding an effective, permitted or ambient capability,
/// described; `None` when no thread holds any.
pub fn capabilities_held() -> io::Result<Option<String>> {
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("status");
        let Ok(s) = std::fs::read_to_string(&path) else { continue }; // the thread ended
        for key in ["CapEff:", "CapPrm:", "CapAmb:"] {
            let v = s
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {key} line")))?;
            if v != 0 {
                return Ok(Some(format!("{} {key} {v:016x}", path.display())));
            }
        }
    }
    Ok(None)
}

/// Why map access through open fds would still need privileges after the drop, if it would:
/// before Linux 6.5 every `bpf()` command is refused to unprivileged callers unless
/// `kernel.unprivileged_bpf_disabled` is 0.
pub fn bpf_needs_privilege() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= (6, 5) {
        return None;
    }
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled").unwrap_or_default();
    match sysctl.trim() {
        "0" => None,
        v => Some(format!(
            "kernel {}.{} < 6.5 with kernel.unprivileged_bpf_disabled={v}",
            version.0, version.1
        )),
    }
}

/// Once everything privileged is done (program attached, sockets bound, listeners and files
/// open): switches to `account` when the kernel lets the rest run unprivileged, and says so; with
/// no account (`root`) keeps root. Where `bpf()` would still need privilege (Linux < 6.5 with
/// unprivileged BPF disabled) it logs why and keeps root, so the XDP counters keep working.
pub fn drop_after_setup(account: Option<&Account>) -> Result<(), PrivilegeError> {
    match (account, bpf_needs_privilege()) {
        (Some(a), None) => {
            drop_to(a)?;
            tracing::warn!(user = %a.name, uid = a.uid, "dropped privileges: no capabilities are left");
        }
        (Some(a), Some(why)) => tracing::error!(
            user = %a.name,
            "not dropping privileges: {why}; the XDP counters and own-address map could not be \
             updated without root. Use Linux >= 6.5 or sysctl kernel.unprivileged_bpf_disabled=0"
        ),
        (None, _) => tracing::warn!("--user root: keeping root and every capability"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_users() {
        assert_eq!(resolve("root").unwrap(), None);
        let nobody = resolve("nobody").unwrap().unwrap();
        assert_eq!(nobody.uid, 65534);
        // The default exists on any Debian host: `dnsentry` if created, else `nobody`.
        let d = resolve("").unwrap().unwrap();
        assert!(DEFAULT_USERS.contains(&d.name.as_str()));
        assert!(matches!(resolve("no-such-user-dnsentry"), Err(PrivilegeError::NoSuchUser(_))));
        assert!(matches!(resolve("bad\0name"), Err(PrivilegeError::NoSuchUser(_))));
    }

    #[test]
    fn capability_scan_reads_every_thread() {
        // Whatever this test runs as, the scan must succeed; as root it finds capabilities.
        let held = capabilities_held().unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(held.is_some());
        }
    }
}
