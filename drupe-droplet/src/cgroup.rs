//! This node's CPU share and its own CPU use, from the process's cgroup.
//!
//! Inside a container `/sys/fs/cgroup` is the container's own cgroup, so its
//! quota is the node's CPU limit and its usage counter the node's own CPU
//! use — the host's load average would count every other container too.
//! Both cgroup v1 (`cpu.cfs_quota_us` / `cpuacct.usage`) and v2 (`cpu.max` /
//! `cpu.stat`) are read.
//!
//! On a host without a container (the local backend) `/sys/fs/cgroup` is the
//! root cgroup: no quota, and its usage is the whole machine's. There the
//! limit is the cores this process may run on and the node's own use is
//! this process's CPU time: a local-backend node is a set of processes on a
//! shared host, and the droplet is the only one of them it can name.
//!
//! The parsers take file contents, so they are tested with fixtures.

use std::path::{Path, PathBuf};

/// What stops reading the cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: cannot parse {text:?}")]
    Parse { what: &'static str, text: String },
    #[error("this process's CPU time: {0}")]
    Clock(#[source] std::io::Error),
}

/// Where the node's CPU limit and use are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// cgroup v2: `cpu.max` and `cpu.stat` in one folder.
    V2(PathBuf),
    /// cgroup v1: the `cpu` controller's folder (quota) and `cpuacct`'s (usage).
    V1 { cpu: PathBuf, cpuacct: PathBuf },
    /// The root cgroup (no container): no quota; own use = this process's.
    Host,
}

impl Source {
    /// The source seen from this process.
    pub fn detect() -> Self {
        Self::detect_in(Path::new("/sys/fs/cgroup"))
    }

    /// The source under a cgroup mount point `root`.
    pub fn detect_in(root: &Path) -> Self {
        // v2's root cgroup has no cpu.max; every child cgroup with the cpu
        // controller has one, so its presence means "a container".
        if root.join("cgroup.controllers").is_file() {
            return if root.join("cpu.max").is_file() {
                Self::V2(root.to_path_buf())
            } else {
                Self::Host
            };
        }
        let dir = |names: &[&str], file: &str| {
            names
                .iter()
                .map(|n| root.join(n))
                .find(|d| d.join(file).is_file())
        };
        let cpu = dir(&["cpu,cpuacct", "cpu"], "cpu.cfs_quota_us");
        let cpuacct = dir(&["cpu,cpuacct", "cpuacct"], "cpuacct.usage");
        match (cpu, cpuacct) {
            // Only a hierarchy's root holds release_agent; a container sees
            // its own cgroup bind-mounted there, without it.
            (Some(cpu), Some(cpuacct)) if !cpuacct.join("release_agent").exists() => {
                Self::V1 { cpu, cpuacct }
            }
            _ => Self::Host,
        }
    }

    /// The cgroup's CPU quota in CPUs (0.25 = a quarter of a core), or None
    /// when there is none.
    pub fn quota(&self) -> Result<Option<f64>, CgroupError> {
        match self {
            Self::V2(dir) => parse_v2_max(&read(&dir.join("cpu.max"))?),
            Self::V1 { cpu, .. } => parse_v1_quota(
                &read(&cpu.join("cpu.cfs_quota_us"))?,
                &read(&cpu.join("cpu.cfs_period_us"))?,
            ),
            Self::Host => Ok(None),
        }
    }

    /// The node's own cumulative CPU time, nanoseconds.
    pub fn usage_nanos(&self) -> Result<u64, CgroupError> {
        match self {
            Self::V2(dir) => parse_v2_usage(&read(&dir.join("cpu.stat"))?),
            Self::V1 { cpuacct, .. } => parse_v1_usage(&read(&cpuacct.join("cpuacct.usage"))?),
            Self::Host => process_cpu_nanos(),
        }
    }

    /// CPUs this node may use: the quota, capped by the cores it may run
    /// on; the cores when there is no quota or it cannot be read.
    pub fn cpu_limit(&self) -> f64 {
        let cores = cores() as f64;
        match self.quota() {
            Ok(Some(quota)) => quota.min(cores),
            Ok(None) => cores,
            Err(e) => {
                tracing::debug!(error = %e, "no CPU quota read; the limit is the core count");
                cores
            }
        }
    }
}

/// CPUs this node may use (see [`Source::cpu_limit`]).
pub fn cpu_limit() -> f64 {
    Source::detect().cpu_limit()
}

/// Cores this process may be scheduled on (its affinity mask, so a
/// `--cpuset-cpus` container counts only its own).
pub fn cores() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and sched_getaffinity
    // writes at most size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } == 0;
    let count = if ok { unsafe { libc::CPU_COUNT(&set) } } else { 0 };
    if count > 0 {
        count as usize
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: CPUs, None for
/// `-1` (no quota).
pub fn parse_v1_quota(quota: &str, period: &str) -> Result<Option<f64>, CgroupError> {
    let quota: i64 = parse_number("cpu.cfs_quota_us", quota)?;
    let period: u64 = parse_number("cpu.cfs_period_us", period)?;
    if quota < 0 {
        return Ok(None);
    }
    if period == 0 {
        return Err(CgroupError::Parse {
            what: "cpu.cfs_period_us",
            text: "0".into(),
        });
    }
    Ok(Some(quota as f64 / period as f64))
}

/// cgroup v2 `cpu.max` (`"max 100000"` or `"25000 100000"`): CPUs, None for
/// `max`.
pub fn parse_v2_max(text: &str) -> Result<Option<f64>, CgroupError> {
    let bad = || CgroupError::Parse {
        what: "cpu.max",
        text: text.into(),
    };
    let mut fields = text.split_whitespace();
    let quota = fields.next().ok_or_else(bad)?;
    // The period may be left out; the kernel's default is 100 ms.
    let period: u64 = match fields.next() {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 100_000,
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota: u64 = quota.parse().map_err(|_| bad())?;
    if period == 0 {
        return Err(bad());
    }
    Ok(Some(quota as f64 / period as f64))
}

/// cgroup v1 `cpuacct.usage`: nanoseconds.
pub fn parse_v1_usage(text: &str) -> Result<u64, CgroupError> {
    parse_number("cpuacct.usage", text)
}

/// cgroup v2 `cpu.stat`'s `usage_usec`: nanoseconds.
pub fn parse_v2_usage(text: &str) -> Result<u64, CgroupError> {
    text.lines()
        .find_map(|line| line.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|usec| usec.saturating_mul(1000))
        .ok_or_else(|| CgroupError::Parse {
            what: "cpu.stat usage_usec",
            text: text.chars().take(200).collect(),
        })
}

fn parse_number<T: std::str::FromStr>(what: &'static str, text: &str) -> Result<T, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        what,
        text: text.into(),
    })
}

/// CPU time of every thread of this process so far, nanoseconds.
pub fn process_cpu_nanos() -> Result<u64, CgroupError> {
    clock_nanos(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread so far, nanoseconds: it does not advance
/// while the thread waits for a core or is throttled by its quota.
pub fn thread_cpu_nanos() -> Result<u64, CgroupError> {
    clock_nanos(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_nanos(clock: libc::clockid_t) -> Result<u64, CgroupError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call's duration.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(CgroupError::Clock(std::io::Error::last_os_error()));
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_quota_in_cpus_and_none_without_one() {
        assert_eq!(parse_v1_quota("25000\n", "100000\n").unwrap(), Some(0.25));
        assert_eq!(parse_v1_quota("150000", "100000").unwrap(), Some(1.5));
        assert_eq!(parse_v1_quota("-1\n", "100000\n").unwrap(), None);
        assert!(parse_v1_quota("lots", "100000").is_err());
        assert!(parse_v1_quota("25000", "0").is_err());
    }

    #[test]
    fn v2_max_in_cpus_and_none_for_max() {
        assert_eq!(parse_v2_max("25000 100000\n").unwrap(), Some(0.25));
        assert_eq!(parse_v2_max("50000 50000").unwrap(), Some(1.0));
        assert_eq!(parse_v2_max("max 100000\n").unwrap(), None);
        assert_eq!(parse_v2_max("200000").unwrap(), Some(2.0));
        assert!(parse_v2_max("").is_err());
        assert!(parse_v2_max("25000 0").is_err());
    }

    #[test]
    fn usage_counters_in_nanoseconds() {
        assert_eq!(parse_v1_usage("584344846410\n").unwrap(), 584_344_846_410);
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n";
        assert_eq!(parse_v2_usage(stat).unwrap(), 1_234_567_000);
        assert!(parse_v2_usage("user_usec 5\n").is_err());
        assert!(parse_v1_usage("").is_err());
    }

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("temporary folder");
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("folder");
            std::fs::write(path, text).expect("fixture file");
        }
        root
    }

    #[test]
    fn a_v1_container_reads_its_quota_and_usage() {
        let root = fixture(&[
            ("cpu/cpu.cfs_quota_us", "50000\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
            ("cpuacct/cpuacct.usage", "42\n"),
        ]);
        let source = Source::detect_in(root.path());
        assert!(matches!(source, Source::V1 { .. }), "{source:?}");
        assert_eq!(source.quota().unwrap(), Some(0.5));
        assert_eq!(source.usage_nanos().unwrap(), 42);
        assert_eq!(source.cpu_limit(), 0.5f64.min(cores() as f64));
    }

    #[test]
    fn a_v2_container_reads_its_quota_and_usage() {
        let root = fixture(&[
            ("cgroup.controllers", "cpu memory\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.stat", "usage_usec 7\n"),
        ]);
        let source = Source::detect_in(root.path());
        assert_eq!(source, Source::V2(root.path().to_path_buf()));
        assert_eq!(source.quota().unwrap(), None);
        assert_eq!(source.usage_nanos().unwrap(), 7000);
        assert_eq!(source.cpu_limit(), cores() as f64, "no quota: the cores");
    }

    #[test]
    fn root_cgroups_are_the_host() {
        let v1 = fixture(&[
            ("cpu/cpu.cfs_quota_us", "-1\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
            ("cpuacct/cpuacct.usage", "42\n"),
            ("cpuacct/release_agent", "\n"),
        ]);
        assert_eq!(Source::detect_in(v1.path()), Source::Host);
        let v2 = fixture(&[("cgroup.controllers", "cpu\n"), ("cpu.stat", "usage_usec 7\n")]);
        assert_eq!(Source::detect_in(v2.path()), Source::Host);
        let nothing = fixture(&[]);
        assert_eq!(Source::detect_in(nothing.path()), Source::Host);
        assert!(Source::Host.usage_nanos().unwrap() > 0, "this process's CPU time");
    }

    #[test]
    fn this_process_has_a_plausible_limit() {
        let limit = cpu_limit();
        assert!(limit > 0.0 && limit <= cores() as f64, "{limit}");
    }
}
