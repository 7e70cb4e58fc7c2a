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
//! Temporaries are named `.NAME.tmp-PID` beside their target; those left by a process that no
//! longer runs are removed by the next writer of the same target.

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

/// Whether `name` is one of initscope's temporaries (`.NAME.tmp-PID`, `.NAME.old-PID`), or a
/// log that the script of `initscope slurm` has Slurm write into the sweep folder before the
/// first shard starts (`slurm-JOB_TASK.out`, `slurm-merge-JOB.out`).
fn is_temporary(name: &str) -> bool {
    (name.starts_with('.') && (name.contains(".tmp-") || name.contains(".old-")))
        || (name.starts_with("slurm-") && name.ends_with(".out"))
}

/// The kind named by `dir`'s marker. Folders written before markers existed are recognised by
/// their records: `sweep.json` (a sweep; with `grid.toml` a study).
pub fn marker_kind(dir: &Path) -> Option<FolderKind> {
    if let Ok(text) = fs::read_to_string(dir.join(MARKER)) {
        return text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "kind")
                .then(|| FolderKind::parse(v.trim().trim_matches('"')))
                .flatten()
        });
    }
    if dir.join("sweep.json").is_file() {
        return Some(if dir.join("grid.toml").is_file() {
            FolderKind::Study
        } else {
            FolderKind::Sweep
        });
    }
    None
}

/// What `path` holds now.
pub fn inspect(path: &Path) -> Result<Existing> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(Error::io(path, e)),
    }
    if !path.is_dir() {
        return Ok(Existing::NotAFolder);
    }
    if let Some(kind) = marker_kind(path) {
        return Ok(Existing::Initscope(kind));
    }
    for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let name = entry
            .map_err(|e| Error::io(path, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !is_temporary(&name) {
            return Ok(Existing::Foreign(name));
        }
    }
    Ok(Existing::Empty)
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
    let existing = inspect(&real)?;
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

/// The temporary sibling of `path` for this process: `.NAME.tmp-PID`.
fn temp_sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = format!(".{name}.{what}-{}", std::process::id());
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

/// Removes a killed writer's leftovers beside `path`: `.NAME.tmp-PID` and `.NAME.old-PID` of
/// `path` itself, and (outside sweep folders) any other `.X.tmp-PID` or `.X.old-PID` folder that
/// carries initscope's marker (a run folder being written or swapped out), whose process no
/// longer runs on this machine.
pub fn remove_stale_siblings(path: &Path) {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    // Inside a sweep, shards on other machines may be writing their own runs: only the sweep's
    // sole owner clears those (see `sweep::run`), so here only `path`'s own leftovers go.
    let broad = marker_kind(parent).is_none();
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let p = entry.path();
        let ours = file.starts_with(&prefix) || (broad && p.join(MARKER).is_file());
        if !ours || !file.starts_with('.') {
            continue;
        }
        let pid = ["tmp-", "old-"].iter().find_map(|tag| {
            let (_, pid) = file.rsplit_once(&format!(".{tag}"))?;
            pid.parse::<u32>().ok()
        });
        if pid.is_some_and(|p| !process_alive(p)) {
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
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
/// name. Errors name `dir`, not the temporary; on failure the temporary is removed.
pub fn stage_dir(
    dir: &Path,
    kind: FolderKind,
    files: &[(&str, Vec<u8>)],
    flush: Flush,
) -> Result<Staged> {
    let real = resolve(dir)?;
    remove_stale_siblings(&real);
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
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

impl Staged {
    /// Puts the folder in place (see [`swap_in`]) and flushes its parent's entry list.
    pub fn commit(self) -> Result<()> {
        let result = swap_in(&self.tmp, &self.real, &self.shown);
        if result.is_err() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
        result?;
        sync_dir(self.real.parent().unwrap_or(Path::new("/")))
    }
}

/// Commits folders staged with [`Flush::Group`]: one `syncfs` of their file system makes every
/// file durable, then each is renamed into place and the parents' entry lists are flushed. A
/// crash before the renames leaves only temporaries, which the next writer removes.
pub fn commit_group(group: Vec<Staged>) -> Result<()> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    {
        let dir = fs::File::open(&first.tmp).map_err(|e| Error::io(&first.shown, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(&first.shown, e.into()))?;
    }
    let mut parents: Vec<PathBuf> = Vec::new();
    let mut failure = None;
    for staged in group {
        if failure.is_some() {
            let _ = fs::remove_dir_all(&staged.tmp);
            continue;
        }
        let parent = staged.real.parent().map(Path::to_path_buf);
        match swap_in(&staged.tmp, &staged.real, &staged.shown) {
            Ok(()) => parents.extend(parent.filter(|p| !parents.contains(p))),
            Err(e) => {
                let _ = fs::remove_dir_all(&staged.tmp);
                failure = Some(e);
            }
        }
    }
    for p in &parents {
        sync_dir(p)?;
    }
    failure.map_or(Ok(()), Err)
}

/// Writes the folder `dir` of `kind` with `files` (and its marker): everything goes into a
/// temporary sibling first, each file and the folder flushed to disk, then renamed into place.
/// An existing `dir` (which [`check_out_dir`] must have allowed) is swapped out only then and
/// removed last, so a failure at any point leaves the old folder or the new one, never neither.
/// Errors name `dir`, not the temporary.
pub fn write_dir_atomically(dir: &Path, kind: FolderKind, files: &[(&str, Vec<u8>)]) -> Result<()> {
    stage_dir(dir, kind, files, Flush::EachFile)?.commit()
}

/// Renames the complete `tmp` to `real`; an existing `real` is first renamed aside and removed
/// only after the new folder is in place (and put back if that fails).
fn swap_in(tmp: &Path, real: &Path, shown: &Path) -> Result<()> {
    let old = temp_sibling(real, "old");
    let had_old = match inspect(real)? {
        Existing::Missing => false,
        Existing::Empty => {
            fs::remove_dir(real).map_err(|e| Error::io(shown, e))?;
            false
        }
        _ => {
            fs::rename(real, &old).map_err(|e| Error::io(shown, e))?;
            true
        }
    };
    if let Err(e) = fs::rename(tmp, real) {
        if had_old {
            let _ = fs::rename(&old, real);
        }
        return Err(Error::io(shown, e));
    }
    if had_old {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
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
