//! Memory estimates, made before anything large is allocated.
//!
//! A run's memory is the sum of its parts, each estimated from sizes known before allocation:
//!
//! | part | bytes (s = bytes per scalar: 4 in f32, 8 in f64) |
//! |---|---|
//! | data | the source's rows x (features + targets) in its stored type, plus what loading and conversion hold at once (see [`crate::data::DataSpec::estimate`]) |
//! | parameters | P s, P = sum over layers of fan_in fan_out (+ fan_out with biases) |
//! | gradients | P s |
//! | optimizer state | k P s (k = 0 sgd, 1 momentum/Nesterov/RMSprop, 2 Adam/AdamW) |
//! | workspace | forward and backward activations of one batch: 4 B (sum of widths) s, and the training copy of the data in the run's precision |
//! | diagnostics | spectra and symmetry work on the largest weight matrix (3 fan_in fan_out 8) |
//! | records | the metric records and the files made from them: about 8 per evaluation and 12 per layer at each recorded step, 256 bytes each |
//!
//! The limit is the smaller of the cgroup's memory limit (v2 `memory.max`, v1
//! `memory.limit_in_bytes`, less what the group already uses) and the kernel's `MemAvailable`,
//! unless `--max-memory` gives one. What exceeds it is refused with the estimate and the limit,
//! so nothing aborts on allocation. Every module that allocates adds its share here.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes as a person reads them: `1.5 GiB`, `320 MiB`, `12 KiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a size: a plain number of bytes or a number with a unit `K`, `M`, `G`, `T` (powers
/// of 1024; `KiB`/`KB`/`k` spellings accepted), e.g. `512M`, `2.5G`, `16GiB`.
pub fn parse_size(field: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = |why: &str| Error::spec(field, text, why.to_string());
    let value: f64 = number
        .parse()
        .map_err(|_| bad("expected a size such as 512M, 4G or 2000000000 (bytes)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        _ => return Err(bad("unknown unit (use K, M, G or T)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(bad("too large (at most 16 EiB)"));
    }
    if bytes < 1.0 {
        return Err(bad("must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// Where a memory limit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// `--max-memory` (or `max_memory` in TOML).
    Flag,
    /// The cgroup's limit less its current use.
    Cgroup,
    /// `MemAvailable` of /proc/meminfo.
    MemAvailable,
    /// Nothing could be read (not Linux): no limit but the address space.
    Unknown,
}

/// The memory a run (or a sweep's parallel runs together) may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: LimitSource,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.source {
            LimitSource::Flag => "--max-memory",
            LimitSource::Cgroup => "free under the cgroup's memory limit",
            LimitSource::MemAvailable => "MemAvailable",
            LimitSource::Unknown => "the address space",
        };
        write!(f, "{} ({from})", human(self.bytes))
    }
}

impl MemoryLimit {
    /// `--max-memory` when given, else what the machine has available now.
    pub fn resolve(max_memory: Option<&str>) -> Result<MemoryLimit> {
        match max_memory {
            Some(text) => Ok(MemoryLimit {
                bytes: parse_size("--max-memory", text)?,
                source: LimitSource::Flag,
            }),
            None => Ok(MemoryLimit::machine()),
        }
    }

    /// The smaller of the cgroup's free memory and `MemAvailable`.
    pub fn machine() -> MemoryLimit {
        let cgroup = cgroup_free().map(|bytes| MemoryLimit {
            bytes,
            source: LimitSource::Cgroup,
        });
        let available = mem_available().map(|bytes| MemoryLimit {
            bytes,
            source: LimitSource::MemAvailable,
        });
        match (cgroup, available) {
            (Some(c), Some(a)) => {
                if c.bytes < a.bytes {
                    c
                } else {
                    a
                }
            }
            (Some(l), None) | (None, Some(l)) => l,
            (None, None) => MemoryLimit {
                bytes: u64::MAX,
                source: LimitSource::Unknown,
            },
        }
    }

    /// The share of each of `jobs` parallel runs.
    pub fn divided(self, jobs: usize) -> MemoryLimit {
        MemoryLimit {
            bytes: self.bytes / jobs.max(1) as u64,
            source: self.source,
        }
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The cgroup's memory limit less its current use, the tightest over the group and its
/// ancestors (v2 and v1), when there is a limit.
fn cgroup_free() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path_for = |controller: &str| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == controller || controllers.split(',').any(|c| c == controller))
                .then(|| path.trim_start_matches('/').to_string())
        })
    };
    let read = |p: &Path| -> Option<u64> {
        let text = std::fs::read_to_string(p).ok()?;
        text.trim().parse().ok()
    };
    // Inside a container the group's own files are usually at the mount's root; on a host they
    // are under the group's path. Try both.
    let candidates = |root: &str, rel: Option<String>| {
        let mut dirs = vec![Path::new(root).to_path_buf()];
        if let Some(rel) = rel.filter(|r| !r.is_empty()) {
            dirs.insert(0, Path::new(root).join(rel));
        }
        dirs
    };
    // The tightest of the group and its ancestors (Slurm and systemd limit a job's or a
    // slice's group, not the task's own): walk up to the mount's root.
    let tightest = |root: &str, rel: Option<String>, limit: &str, usage: &str| {
        let mut best: Option<u64> = None;
        for start in candidates(root, rel) {
            let mut dir = start.as_path();
            loop {
                if let Some(max) = read(&dir.join(limit)) {
                    // v1 writes "no limit" as a page-rounded i64::MAX; v2 as "max" (no number).
                    if max < 1 << 60 {
                        let used = read(&dir.join(usage)).unwrap_or(0);
                        let free = max.saturating_sub(used);
                        best = Some(best.map_or(free, |b| b.min(free)));
                    }
                }
                match dir.parent() {
                    Some(p) if p.starts_with(root) => dir = p,
                    _ => break,
                }
            }
        }
        best
    };
    let v2 = tightest(
        "/sys/fs/cgroup",
        path_for(""),
        "memory.max",
        "memory.current",
    );
    let v1 = tightest(
        "/sys/fs/cgroup/memory",
        path_for("memory"),
        "memory.limit_in_bytes",
        "memory.usage_in_bytes",
    );
    match (v2, v1) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An estimate, part by part (saturating: an absurd size estimates as `u64::MAX`, never wraps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub parts: Vec<(&'static str, u64)>,
}

impl MemoryEstimate {
    /// Adds `bytes` to the part `name` (created on first use).
    pub fn add(&mut self, name: &'static str, bytes: u64) {
        match self.parts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, b)) => *b = b.saturating_add(bytes),
            None => self.parts.push((name, bytes)),
        }
    }

    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |acc, (_, b)| acc.saturating_add(*b))
    }

    /// Refuses an estimate above `limit`: `what: needs about X (data A, parameters B, ...), more
    /// than the limit Y (source); ...`.
    pub fn check(&self, field: &str, what: &str, limit: MemoryLimit) -> Result<()> {
        let total = self.total();
        if total <= limit.bytes {
            return Ok(());
        }
        let parts = self
            .parts
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(n, b)| format!("{n} {}", human(*b)))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match limit.source {
            LimitSource::Flag => "raise --max-memory if the machine has more",
            _ => "make it smaller, or set --max-memory if you know better",
        };
        Err(Error::config(
            field,
            format!(
                "{what} needs about {} ({parts}), more than the {limit} available; {hint}",
                human(total)
            ),
        ))
    }
}

/// `a * b` in bytes, saturating.
pub fn bytes(count: u64, each: u64) -> u64 {
    count.saturating_mul(each)
}

/// Product of sizes, saturating.
pub fn product(sizes: &[usize]) -> u64 {
    sizes
        .iter()
        .fold(1u64, |acc, &s| acc.saturating_mul(s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("f", "512").unwrap(), 512);
        assert_eq!(parse_size("f", "4K").unwrap(), 4096);
        assert_eq!(parse_size("f", "1.5g").unwrap(), 1536 * 1024 * 1024);
        assert_eq!(parse_size("f", "16GiB").unwrap(), 16 << 30);
        for bad in ["", "-1G", "4X", "G", "0"] {
            assert!(parse_size("--max-memory", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes_read_well() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(32_000_000_000_000), "29.1 TiB");
        assert_eq!(human(300 << 20), "300 MiB");
    }

    #[test]
    fn estimates_saturate_and_name_their_parts() {
        let mut e = MemoryEstimate::default();
        e.add("data", u64::MAX);
        e.add("parameters", 10);
        assert_eq!(e.total(), u64::MAX);
        let limit = MemoryLimit {
            bytes: 1 << 30,
            source: LimitSource::Flag,
        };
        let msg = e
            .check("--data", "the data", limit)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("--data: the data needs about"), "{msg}");
        assert!(msg.contains("1.0 GiB (--max-memory)"), "{msg}");
        let mut small = MemoryEstimate::default();
        small.add("data", 1 << 20);
        small.check("--data", "the data", limit).unwrap();
    }

    #[test]
    fn the_machine_has_a_limit_on_linux() {
        let l = MemoryLimit::machine();
        if cfg!(target_os = "linux") {
            assert_ne!(l.source, LimitSource::Unknown);
            assert!(l.bytes > 0);
        }
    }
}
