//! Path confinement: every path `pack` writes and `verify` reads stays inside
//! the project root, in normal form, and off symbolic links; and a bundle is
//! never evidence of itself.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::util;

/// Rejects absolute paths, `..`, `.`, empty components and NUL bytes.
pub(super) fn check_rel_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return Err("absolute path".into());
    }
    if path.contains('\0') {
        return Err("NUL byte in path".into());
    }
    for part in path.split(['/', '\\']) {
        match part {
            ".." => return Err("`..` component escapes the project root".into()),
            "." | "" => return Err("path is not in normal form".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Rejects a path with a symbolic link in any component: a link could point
/// anywhere, and pack never lists one.
pub(super) fn check_no_escape(root: &Path, path: &str) -> std::result::Result<(), String> {
    let mut p = root.to_path_buf();
    for part in path.split('/') {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&p);
                let root = std::fs::canonicalize(root);
                let escapes = match (target, root) {
                    (Ok(t), Ok(r)) => !t.starts_with(r),
                    _ => true,
                };
                return Err(if escapes {
                    "symbolic link escapes the project root".into()
                } else {
                    "symbolic link (evidence lists regular files only)".into()
                });
            }
            Ok(_) => {}
            Err(_) => return Ok(()), // missing: reported as missing by the read
        }
    }
    Ok(())
}

/// The bundle file being written and its temporary files, which are never
/// listed in (or counted as extra to) their own manifest.
///
/// The bundle's directory is resolved through symbolic links first, so a
/// bundle written through a linked directory (`--out link/b.json` with `link`
/// pointing into the packed directory) is still recognised. Only names of
/// exactly the shape [`util::write_atomic`] gives its temporary files are
/// skipped: any other file, whatever its name, is evidence.
pub(super) struct OwnBundle {
    pub(super) rel: Option<String>,
    pub(super) tmp_prefix: Option<String>,
}

impl OwnBundle {
    pub(super) fn new(root: &Path, out: &Path) -> OwnBundle {
        let resolved = match (out.parent(), out.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent).ok().map(|p| p.join(name)),
            _ => None,
        };
        let rel = std::fs::canonicalize(root)
            .ok()
            .zip(resolved)
            .and_then(|(root, out)| lexical_rel(&root, &out))
            .or_else(|| lexical_rel(root, out));
        let tmp_prefix = rel.as_ref().map(|r| {
            let (parent, name) = r.rsplit_once('/').unwrap_or(("", r));
            let prefix = util::tmp_prefix(name.as_ref());
            if parent.is_empty() {
                prefix
            } else {
                format!("{parent}/{prefix}")
            }
        });
        OwnBundle { rel, tmp_prefix }
    }

    pub(super) fn skips(&self, rel: &str) -> bool {
        self.rel.as_deref() == Some(rel)
            || self
                .tmp_prefix
                .as_deref()
                .is_some_and(|p| util::is_tmp_name(rel, p))
    }
}

/// `path` relative to `root` as a `/`-separated string, if it lies lexically
/// under it (both are made absolute first).
fn lexical_rel(root: &Path, path: &Path) -> Option<String> {
    let abs = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                c => out.push(c),
            }
        }
        Some(out)
    };
    let (root, path) = (abs(root)?, abs(path)?);
    let rel = path.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Validates `--dir` and returns it as a `/`-separated relative path.
pub(super) fn relative_dir(dir: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in dir.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .with_context(|| format!("--dir {}: not valid UTF-8", dir.display()))?,
            ),
            Component::CurDir => {}
            _ => bail!(
                "--dir {}: must be a relative path inside the project root, without `..`",
                dir.display()
            ),
        }
    }
    if parts.is_empty() {
        bail!(
            "--dir {}: must name a directory below the project root",
            dir.display()
        );
    }
    Ok(parts.join("/"))
}

/// Refuses a packed directory reached through a symbolic link: `verify`
/// rejects every path through a link, and a link could lead pack outside the
/// project root.
pub(super) fn check_real_dir(root: &Path, dir: &str) -> Result<()> {
    let mut top = root.to_path_buf();
    for (i, part) in dir.split('/').enumerate() {
        top.push(part);
        let meta = std::fs::symlink_metadata(&top)
            .with_context(|| format!("cannot read directory {dir}"))?;
        if meta.file_type().is_symlink() {
            bail!(
                "{dir}: {} is a symbolic link; evidence is packed from a real directory \
                 inside the project root",
                dir.split('/').take(i + 1).collect::<Vec<_>>().join("/")
            );
        }
        if !meta.is_dir() {
            bail!("{dir} is not a directory");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        for bad in [
            "/etc/passwd",
            "out/../../x",
            "out//x",
            "./out/x",
            "",
            "C:/x",
            "out/\0",
        ] {
            assert!(check_rel_path(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(check_rel_path("out/a b/é.txt").is_ok());
    }
}
