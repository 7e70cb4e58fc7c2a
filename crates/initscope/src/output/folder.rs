//! The `--out` rule, one for every command, and the durable, replace-safe writers behind it.
//!
//! - A missing or empty folder is used.
//! - initscope's own folders carry a marker file, [`MARKER`], naming their kind (run, sweep,
//!   study). A run folder is replaced only with `--force`, and only after the new output is
//!   complete (written beside it, flushed, then swapped in by renames); sweeps and studies resume
//!   into their own folders.
//! - Derived files regenerated from a folder's records (`report.html`) are rewritten without
//!   `--force`.
//! - Anything else that exists is refused, with or without `--force`: a folder holding files
//!   initscope did not write, a file where a folder should be, and the targets that are never
//!   outputs: `/`, the home folder, the working folder and its parents (`.`, `..`, `sub/..`),
//!   all judged on the path resolved to its real location.
//!
//! A run folder is replaceable only when everything in it is something a run writes
//! ([`RUN_ENTRIES`]); a marker copied into a foreign folder does not make it one. The final step
//! re-checks the target and renames with `RENAME_NOREPLACE` (nothing there) or `RENAME_EXCHANGE`
//! (replacing, then verifying what was swapped out, and swapping back if it is not a run), so a
//! folder that appears or changes while a run trains is never clobbered.
//!
//! Temporaries are named `.NAME.tmp-HOST-PID` beside their target. Those whose process no longer
//! runs on this host (and, for folders, that carry the marker) are removed by later writers;
//! another host's temporaries are never touched, since its processes cannot be seen from here.

use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The marker file of an initscope folder; its content names the kind.
pub const MARKER: &str = ".initscope";

/// The kinds of folder initscope writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderKind {
    /// One training run (`train --out`, or one run inside a sweep).
    Run,
    /// A grid of runs (`sweep --out`).
    Sweep,
    /// The canonical comparison (`study --out`): a sweep with its grid and report.
    Study,
}

impl FolderKind {
    pub fn name(self) -> &'static str {
        match self {
            FolderKind::Run => "run",
            FolderKind::Sweep => "sweep",
            FolderKind::Study => "study",
        }
    }

    fn parse(text: &str) -> Option<FolderKind> {
        match text.trim() {
            "run" => Some(FolderKind::Run),
            "sweep" => Some(FolderKind::Sweep),
            "study" => Some(FolderKind::Study),
            _ => None,
        }
    }

    /// The marker file's bytes: `kind = "run"` and the version that wrote it (TOML).
    pub fn marker(self) -> Vec<u8> {
        format!(
            "# written by initscope: this folder is an initscope {}; --force may replace it\nkind = \"{}\"\nversion = \"{}\"\n",
            self.name(),
            self.name(),
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes()
    }

    /// Sweeps and studies share a layout (sweep.json, run folders, runs.csv), so either resumes
    /// into the other's folder (sweep.json decides whether it is the same grid).
    fn resumes_into(self, existing: FolderKind) -> bool {
        self != FolderKind::Run && existing != FolderKind::Run
    }
}

/// What a path holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    Missing,
    /// A folder with nothing in it (initscope's own temporaries and Slurm logs aside).
    Empty,
    /// A folder initscope wrote, of this kind.
    Initscope(FolderKind),
    /// A folder holding entries initscope did not write; the first such entry.
    Foreign(String),
    /// Something that is not a folder.
    NotAFolder,
}

/// What a run folder may hold: its files, its report, its marker. A folder holding anything
/// else is not replaced by `--force`.
pub const RUN_ENTRIES: &[&str] = &[
    MARKER,
    "config.json",
    "metrics.csv",
    "weights.safetensors",
    "summary.json",
    "histograms.json",
    super::EVENT_FILE,
    "report.html",
];

/// Whether `name` is one of initscope's temporaries (`.NAME.tmp-HOST-PID`, `.NAME.old-HOST-PID`),
/// or a log that the script of `initscope slurm` has Slurm open in the sweep folder before the
/// first shard starts (`slurm-JOB_TASK.out`, `slurm-merge-JOB.out`): entries a sweep folder may
/// hold before it is marked.
fn ignorable_in_sweep(name: &str) -> bool {
    temporary_owner(name).is_some() || (name.starts_with("slurm-") && name.ends_with(".out"))
}

/// The (host, pid) of an initscope temporary's name `.X.tmp-HOST-PID` or `.X.old-HOST-PID`.
fn temporary_owner(name: &str) -> Option<(&str, u32)> {
    if !name.starts_with('.') {
        return None;
    }
    let (rest, pid) = name.rsplit_once('-')?;
    let pid = pid.parse::<u32>().ok()?;
    let (_, host) = rest
        .rsplit_once(".tmp-")
        .or_else(|| rest.rsplit_once(".old-"))?;
    (!host.is_empty()).then_some((host, pid))
}

/// Reads a small regular file (a marker or a record), refusing FIFOs, devices and anything
/// larger than `max` bytes.
fn read_small(path: &Path, max: u64) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    fs::read_to_string(path).ok()
}

/// The kind named by `dir`'s marker. Sweep folders written before markers existed are recognised
/// by a `sweep.json` that is initscope's sweep record (with `grid.toml`, a study).
pub fn marker_kind(dir: &Path) -> Option<FolderKind> {
    if let Some(text) = read_small(&dir.join(MARKER), 4096) {
        return text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "kind")
                .then(|| FolderKind::parse(v.trim().trim_matches('"')))
                .flatten()
        });
    }
    let record = read_small(&dir.join("sweep.json"), 1 << 30)?;
    let value: serde_json::Value = serde_json::from_str(&record).ok()?;
    let is_record = value.get("axes").is_some_and(|a| a.is_array())
        && value.get("runs").is_some_and(|r| r.is_array());
    is_record.then(|| {
        if dir.join("grid.toml").is_file() {
            FolderKind::Study
        } else {
            FolderKind::Sweep
        }
    })
}

/// What `path` holds now, as an output folder of `kind`. A run folder counts as initscope's only
/// when every entry is one of [`RUN_ENTRIES`] (then also without a marker, as runs written before
/// markers existed); sweep and study folders may also hold temporaries and Slurm logs while they
/// are new.
pub fn inspect(path: &Path, kind: FolderKind) -> Result<Existing> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(Error::io(path, e)),
    }
    if !path.is_dir() {
        return Ok(Existing::NotAFolder);
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        names.push(
            entry
                .map_err(|e| Error::io(path, e))?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    let marked = marker_kind(path);
    let foreign_to_run = names.iter().find(|n| !RUN_ENTRIES.contains(&n.as_str()));
    match marked {
        Some(FolderKind::Run) => Ok(match foreign_to_run {
            Some(name) => Existing::Foreign(name.clone()),
            None => Existing::Initscope(FolderKind::Run),
        }),
        Some(k) => Ok(Existing::Initscope(k)),
        None if names.is_empty() => Ok(Existing::Empty),
        None if foreign_to_run.is_none()
            && names.iter().any(|n| n == "config.json")
            && names.iter().any(|n| n == "summary.json") =>
        {
            Ok(Existing::Initscope(FolderKind::Run))
        }
        None => match names
            .iter()
            .find(|n| kind == FolderKind::Run || !ignorable_in_sweep(n))
        {
            Some(name) => Ok(Existing::Foreign(name.clone())),
            None => Ok(Existing::Empty),
        },
    }
}

/// `path` made absolute and resolved: every existing prefix to its real path (symbolic links
/// followed), `.` and `..` applied, so `.`, `sub/..` and a link to the home folder all resolve
/// to what they name.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let mut out = PathBuf::new();
    for c in cwd.join(path).components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    Ok(out)
}

/// Refuses the targets that are never outputs: `/`, the home folder, and the working folder or
/// any of its parents.
fn refuse_forbidden(path: &Path, real: &Path) -> Result<()> {
    let cwd = std::env::current_dir()
        .and_then(fs::canonicalize)
        .map_err(|e| Error::io(".", e))?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| fs::canonicalize(h).ok());
    let what = if real.parent().is_none() {
        Some("the root folder")
    } else if home.as_deref() == Some(real) {
        Some("the home folder")
    } else if cwd == real {
        Some("the working folder")
    } else if cwd.starts_with(real) {
        Some("a parent of the working folder")
    } else {
        None
    };
    match what {
        Some(what) => Err(Error::file(
            path,
            format!(
                "is {what} ({}); --out must name a new folder or one initscope wrote",
                real.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Checks `path` as the `--out` folder of a command that writes a folder of `kind`, and returns
/// what it holds. See the module's rule.
pub fn check_out_dir(path: &Path, kind: FolderKind, force: bool) -> Result<Existing> {
    let real = resolve(path)?;
    refuse_forbidden(path, &real)?;
    let existing = inspect(&real, kind)?;
    match &existing {
        Existing::Missing | Existing::Empty => {}
        Existing::NotAFolder => {
            return Err(Error::file(
                path,
                "exists and is not a folder; --out must name a folder",
            ))
        }
        Existing::Initscope(k) if kind.resumes_into(*k) => {}
        Existing::Initscope(FolderKind::Run) if kind == FolderKind::Run => {
            if !force {
                return Err(Error::file(
                    path,
                    "holds an initscope run; use --force to replace it",
                ));
            }
        }
        Existing::Initscope(k) => {
            return Err(Error::file(
                path,
                format!(
                    "holds an initscope {}, not a {}; choose another --out",
                    k.name(),
                    kind.name()
                ),
            ))
        }
        Existing::Foreign(name) => {
            return Err(Error::file(
                path,
                format!(
                    "holds files initscope did not write (e.g. '{name}'); --out must name a new or empty folder or one initscope wrote{}",
                    if force { " (--force only replaces initscope's own folders)" } else { "" }
                ),
            ))
        }
    }
    Ok(existing)
}

/// Whether a process with this id runs on this machine (Linux: /proc). Elsewhere every process
/// counts as running, so nothing is removed that might still be written.
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// This machine's name as temporaries carry it (letters, digits, `-` and `_`), so that writers
/// on machines sharing a file system never judge each other's processes.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let clean: String = raw
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if clean.is_empty() {
            "host".to_string()
        } else {
            clean
        }
    })
}

/// The temporary sibling of `path` for this process: `.NAME.tmp-HOST-PID` (`what` = tmp | old).
fn temp_sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = format!(".{name}.{what}-{}-{}", host(), std::process::id());
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

/// Whether the entry `name` in `dir` is a killed writer's leftover: an initscope temporary of
/// this host whose process is gone, and, when it is a folder, one that carries the marker (so a
/// user's `.results.old-2023/` never qualifies).
fn is_stale(dir: &Path, name: &str) -> bool {
    let Some((owner, pid)) = temporary_owner(name) else {
        return false;
    };
    if owner != host() || process_alive(pid) {
        return false;
    }
    let p = dir.join(name);
    !p.is_dir() || p.join(MARKER).is_file()
}

/// Removes killed writers' leftovers in `dir` (see `is_stale`): safe for any process to call,
/// whoever else writes there, since only this host's dead processes' temporaries qualify.
pub fn remove_stale_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_stale(dir, &name) {
            let p = entry.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Removes killed writers' leftovers beside `path` (see [`remove_stale_in`]).
pub fn remove_stale_siblings(path: &Path) {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => remove_stale_in(p),
        _ => remove_stale_in(Path::new(".")),
    }
}

/// Flushes a folder's entry list to disk (a no-op where folders cannot be opened).
fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match fs::File::open(dir) {
        Ok(f) => f.sync_all().map_err(|e| Error::io(dir, e)),
        Err(_) => Ok(()),
    }
}

/// Writes `bytes` to a new file and flushes it to disk.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// A folder written under its temporary name, not yet in place (see [`Staged::commit`]).
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    real: PathBuf,
    shown: PathBuf,
    kind: FolderKind,
    /// Whether an existing initscope folder of the same kind may be replaced.
    force: bool,
}

/// How a staged folder reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Every file and the folder are flushed as they are written (one run: a few fsyncs).
    EachFile,
    /// Nothing is flushed while writing; [`commit_group`] flushes a whole group with one
    /// `syncfs` before renaming them (sweeps of tiny runs, where per-file fsyncs would dominate).
    /// Where `syncfs` does not exist this is the same as `EachFile`.
    Group,
}

/// Writes the folder `dir` of `kind` with `files` (and its marker) under a temporary sibling
/// name, after removing killed writers' leftovers beside it. Errors name `dir`, not the
/// temporary; on failure the temporary is removed.
pub fn stage_dir(
    dir: &Path,
    kind: FolderKind,
    files: &[(&str, Vec<u8>)],
    flush: Flush,
    force: bool,
) -> Result<Staged> {
    remove_stale_siblings(&resolve(dir)?);
    stage_dir_in_cleared(dir, kind, files, flush, force)
}

/// [`stage_dir`] without the scan of `dir`'s parent for leftovers, for a caller that cleared it
/// once beforehand ([`remove_stale_in`]): a sweep stages thousands of run folders in one parent,
/// and a scan for each made staging quadratic (a quarter of a 2000-run sweep of tiny nets).
pub fn stage_dir_in_cleared(
    dir: &Path,
    kind: FolderKind,
    files: &[(&str, Vec<u8>)],
    flush: Flush,
    force: bool,
) -> Result<Staged> {
    let real = resolve(dir)?;
    if let Some(parent) = real.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_sibling(&real, "tmp");
    let durable = flush == Flush::EachFile || !cfg!(target_os = "linux");
    let write = |path: &Path, bytes: &[u8]| {
        if durable {
            write_durably(path, bytes)
        } else {
            fs::write(path, bytes).map_err(|e| Error::io(path, e))
        }
    };
    let result = (|| {
        fs::create_dir(&tmp).map_err(|e| Error::io(dir, e))?;
        write(&tmp.join(MARKER), &kind.marker()).map_err(|e| renamed(e, &tmp, dir))?;
        for (i, (name, bytes)) in files.iter().enumerate() {
            write(&tmp.join(name), bytes).map_err(|e| renamed(e, &tmp, dir))?;
            if i == 0 {
                test_hook_stall();
            }
        }
        if durable {
            sync_dir(&tmp)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Staged {
            tmp,
            real,
            shown: dir.to_path_buf(),
            kind,
            force,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

impl Staged {
    /// Puts the folder in place (see `Staged::swap_in`) and flushes its parent's entry list.
    pub fn commit(self) -> Result<()> {
        let parent = self.real.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.swap_in()?;
        sync_dir(&parent)
    }

    /// Renames the complete temporary folder to its target, judging the target again now (it may
    /// have appeared or changed while the run trained): a missing or empty target is taken with
    /// `RENAME_NOREPLACE`; an initscope folder that `--force` may replace is exchanged with
    /// `RENAME_EXCHANGE`, what came out is checked to be that folder (and swapped back if it is
    /// not), and only then removed. The temporary is removed on failure.
    fn swap_in(self) -> Result<()> {
        let result = (|| {
            let existing = check_out_dir(&self.real, self.kind, self.force)
                .map_err(|e| reworded(e, &self.real, &self.shown))?;
            match existing {
                Existing::Missing => rename_noreplace(&self.tmp, &self.real, &self.shown),
                Existing::Empty => {
                    // remove_dir refuses a folder that is no longer empty.
                    fs::remove_dir(&self.real).map_err(|e| Error::io(&self.shown, e))?;
                    rename_noreplace(&self.tmp, &self.real, &self.shown)
                }
                _ => {
                    exchange(&self.tmp, &self.real, &self.shown)?;
                    // `tmp` now holds what was there: it must be what was allowed.
                    if inspect(&self.tmp, self.kind)? != Existing::Initscope(self.kind) {
                        exchange(&self.tmp, &self.real, &self.shown)?;
                        return Err(Error::file(
                            &self.shown,
                            "changed while this run was written; nothing was replaced",
                        ));
                    }
                    fs::remove_dir_all(&self.tmp).map_err(|e| Error::io(&self.shown, e))
                }
            }
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
        result
    }
}

/// Commits folders staged with [`Flush::Group`]: one `syncfs` of their file system makes every
/// file durable, then each is renamed into place and the parents' entry lists are flushed. A
/// crash before the renames leaves only temporaries, which later writers remove. On failure every
/// folder of the group not yet in place is removed and the error says how many were lost.
pub fn commit_group(group: Vec<Staged>) -> Result<()> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let count = group.len();
    let synced = sync_file_system(&first.tmp).map_err(|e| reworded(e, &first.tmp, &first.shown));
    let mut parents: Vec<PathBuf> = Vec::new();
    let mut failure = synced.err();
    let mut lost = 0;
    for staged in group {
        if failure.is_some() {
            let _ = fs::remove_dir_all(&staged.tmp);
            lost += 1;
            continue;
        }
        let parent = staged.real.parent().map(Path::to_path_buf);
        match staged.swap_in() {
            Ok(()) => parents.extend(parent.filter(|p| !parents.contains(p))),
            Err(e) => {
                lost += 1;
                failure = Some(e);
            }
        }
    }
    for p in &parents {
        sync_dir(p)?;
    }
    match failure {
        None => Ok(()),
        Some(e) => Err(Error::config(
            "--out",
            format!("{lost} of {count} finished runs could not be put in place: {e}"),
        )),
    }
}

/// Flushes the whole file system holding `path` (Linux `syncfs`); elsewhere the files were
/// flushed one by one as they were written.
fn sync_file_system(path: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let dir = fs::File::open(path).map_err(|e| Error::io(path, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(path, e.into()))?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
    Ok(())
}

/// Renames `from` to `to` unless `to` exists (Linux `renameat2` with `RENAME_NOREPLACE`; where the
/// file system lacks it, a plain rename, which also refuses a non-empty folder).
fn rename_noreplace(from: &Path, to: &Path, shown: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                return Err(Error::file(
                    shown,
                    "was created by another process while this run was written; nothing was replaced",
                ))
            }
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(Error::io(shown, e.into())),
        }
    }
    if to.exists() {
        return Err(Error::file(
            shown,
            "was created by another process while this run was written; nothing was replaced",
        ));
    }
    fs::rename(from, to).map_err(|e| Error::io(shown, e))
}

/// Swaps `a` and `b` atomically (Linux `RENAME_EXCHANGE`); where the file system lacks it, by
/// three renames through a third name.
fn exchange(a: &Path, b: &Path, shown: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(Error::io(shown, e.into())),
        }
    }
    let via = temp_sibling(b, "old");
    fs::rename(b, &via).map_err(|e| Error::io(shown, e))?;
    if let Err(e) = fs::rename(a, b) {
        let _ = fs::rename(&via, b);
        return Err(Error::io(shown, e));
    }
    fs::rename(&via, a).map_err(|e| Error::io(shown, e))
}

/// An error that names `real` (the resolved path), told with the user's spelling instead.
fn reworded(e: Error, real: &Path, shown: &Path) -> Error {
    match e {
        Error::File { path, reason } if path == real => Error::File {
            path: shown.to_path_buf(),
            reason,
        },
        other => renamed(other, real, shown),
    }
}

/// Writes the folder `dir` of `kind` with `files` (and its marker): everything goes into a
/// temporary sibling first, each file and the folder flushed to disk, then put in place by
/// `Staged::swap_in`, which judges the target again and never clobbers what `--force` does not
/// allow. A failure at any point leaves the old folder or the new one, never neither. Errors
/// name `dir`, not the temporary.
pub fn write_dir_atomically(
    dir: &Path,
    kind: FolderKind,
    files: &[(&str, Vec<u8>)],
    force: bool,
) -> Result<()> {
    stage_dir(dir, kind, files, Flush::EachFile, force)?.commit()
}

/// An error about a temporary path, told about the user's path instead.
fn renamed(e: Error, tmp: &Path, shown: &Path) -> Error {
    match e {
        Error::Io { path, err } => Error::Io {
            path: path
                .strip_prefix(tmp)
                .map(|rel| shown.join(rel))
                .unwrap_or_else(|_| shown.to_path_buf()),
            err,
        },
        other => other,
    }
}

/// Writes one file durably and atomically: a flushed temporary sibling, then a rename. Stale
/// temporaries of the same file left by killed writers are removed first. Errors name `path`.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    remove_stale_siblings(path);
    let tmp = temp_sibling(path, "tmp");
    let result = write_durably(&tmp, bytes)
        .map_err(|e| renamed(e, &tmp, path))
        .and_then(|_| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)))
        .and_then(|_| sync_dir(path.parent().unwrap_or(Path::new("."))));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates (or reuses) the sweep or study folder `dir` after [`check_out_dir`] allowed it, and
/// writes its marker when it has none.
pub fn open_sweep_dir(dir: &Path, kind: FolderKind) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let marker = dir.join(MARKER);
    if !marker.is_file() {
        // Shards of one array may race to write it: whoever wins, one marker is there.
        if let Err(e) = write_file_atomically(&marker, &kind.marker()) {
            if !marker.is_file() {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether `path` is an HTML report initscope wrote (so regenerating it needs no `--force`).
pub fn is_initscope_report(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.contains("<p class=\"note\">Written by initscope "))
}

/// Test hook: with `INITSCOPE_TEST_STALL_WRITE_MS` set, a folder's writer pauses after its first
/// file, so a test can kill the process in the middle of writing and check the recovery. Unset
/// (always, outside tests) it does nothing.
fn test_hook_stall() {
    if let Some(ms) = std::env::var_os("INITSCOPE_TEST_STALL_WRITE_MS")
        .and_then(|v| v.to_str()?.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
