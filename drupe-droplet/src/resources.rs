//! Reads this node's resources from the operating system. The CPU limit
//! comes from the cgroup; speed and own CPU use need history, so the
//! droplet's monitor fills them in (see `monitor`).

use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use std::path::Path;

/// CPU limit and count, memory and the disk of `data_dir`, now; speed 0
/// (not measured) and load 0 (the host's load average is not this node's:
/// see [`crate::speed`] and [`crate::cgroup`] for both).
pub fn measure(data_dir: Option<&Path>) -> NodeResources {
    let cpu_limit = crate::cgroup::cpu_limit();
    let (free, total) = memory().unwrap_or((0, 0));
    let (disk_free, disk_total) = disk(data_dir.unwrap_or(Path::new("."))).unwrap_or((0, 0));
    NodeResources {
        node: String::new(),
        cpu_count: crate::speed::cpu_count(cpu_limit),
        cpu_limit,
        cpu_load: 0.0,
        memory_free_bytes: free,
        memory_total_bytes: total,
        measured_at_unix_millis: jupiter_common::clock::unix_nanos() / 1_000_000,
        address: String::new(),
        disk_free_bytes: disk_free,
        disk_total_bytes: disk_total,
        reachable: true,
        ..Default::default()
    }
}

/// (available, total) bytes: `/proc/meminfo`, capped by this process's
/// cgroup limit, since in a container meminfo shows the whole host.
fn memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    let (available, total) = (field("MemAvailable:")?, field("MemTotal:")?);
    Some(match cgroup_memory() {
        Some((limit, used)) if limit < total => (available.min(limit.saturating_sub(used)), limit),
        _ => (available, total),
    })
}

/// (limit, usage) bytes of this process's memory cgroup, v2 or v1.
fn cgroup_memory() -> Option<(u64, u64)> {
    let read = |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    if let Some(limit) = read("/sys/fs/cgroup/memory.max") {
        return Some((limit, read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    }
    let limit = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?;
    Some((
        limit,
        read("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0),
    ))
}

/// (available to us, total) bytes of the file system holding `dir`.
fn disk(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    Some((stat.f_bavail as u64 * block, stat.f_blocks as u64 * block))
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_something_plausible() {
        let r = super::measure(Some(std::path::Path::new("/")));
        assert!(r.cpu_count >= 1);
        assert!(r.memory_total_bytes > 0, "MemTotal read from /proc/meminfo");
        assert!(r.memory_free_bytes <= r.memory_total_bytes);
        assert!(r.disk_total_bytes > 0, "statvfs of /");
        assert!(r.disk_free_bytes <= r.disk_total_bytes);
    }
}
