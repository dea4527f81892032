//! Confines request paths to the workspace: relative or absolute, never outside it, not even through a symlink.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// The workspace root, canonical, so that containment is a plain prefix test.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Creates the root if it is missing.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Workspace {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a request path (relative to the root, or absolute) to an absolute path inside the workspace.
    ///
    /// `..` is applied lexically and may not climb out. The deepest part of the path that exists is then resolved
    /// by the OS, so that a symlink inside the workspace pointing out of it is refused too. (A race with someone
    /// swapping in a symlink afterwards is out of scope: whoever can do that can already run commands here.)
    pub fn resolve(&self, path: &str) -> Result<PathBuf, Error> {
        if path.is_empty() || path.contains('\0') {
            return Err(Error::BadRequest("path must be a non-empty string".into()));
        }
        let outside = || Error::BadRequest(format!("path {path:?} is outside the workspace"));
        let mut resolved = PathBuf::new();
        for component in self.root.join(path).components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if !resolved.pop() {
                        return Err(outside());
                    }
                }
                other => resolved.push(other),
            }
        }
        if !resolved.starts_with(&self.root) {
            return Err(outside());
        }
        let existing = resolved
            .ancestors()
            .find(|p| p.symlink_metadata().is_ok())
            .expect("the workspace root exists");
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(resolved),
            Ok(_) => Err(outside()),
            Err(_) => Err(Error::BadRequest(format!(
                "path {path:?} goes through a broken symlink"
            ))),
        }
    }

    /// Resolves a path that must be an existing directory (a process's working directory).
    pub fn resolve_dir(&self, path: &str) -> Result<PathBuf, Error> {
        let dir = self.resolve(path)?;
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::BadRequest(format!(
                "cwd {path:?} is not a directory"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (Workspace, PathBuf) {
        let base = std::env::temp_dir().join(format!("vf-ws-test-{}", uuid::Uuid::new_v4()));
        let ws = Workspace::open(&base.join("ws")).unwrap();
        (ws, base)
    }

    #[test]
    fn inside_paths_resolve_and_escapes_are_refused() {
        let (ws, base) = scratch();
        let root = ws.root().to_path_buf();
        assert_eq!(ws.resolve("a/b.txt").unwrap(), root.join("a/b.txt"));
        assert_eq!(ws.resolve("./a/../b").unwrap(), root.join("b"));
        assert_eq!(
            ws.resolve(root.join("x").to_str().unwrap()).unwrap(),
            root.join("x")
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "..", "", "a\0b"] {
            assert!(
                matches!(ws.resolve(bad), Err(Error::BadRequest(_))),
                "{bad:?}"
            );
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn symlinks_out_of_the_workspace_are_refused() {
        let (ws, base) = scratch();
        let root = ws.root().to_path_buf();
        std::fs::create_dir(base.join("outside")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("in-target"), root.join("dangling")).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("in")).unwrap();
        assert!(ws.resolve("out/x").is_err());
        assert!(ws.resolve("out/new/deeper/x").is_err());
        assert!(ws.resolve("dangling").is_err());
        assert_eq!(ws.resolve("in/x").unwrap(), root.join("in/x"));
        assert!(ws.resolve_dir("in").is_ok());
        assert!(ws.resolve_dir("in/x").is_err());
        std::fs::remove_dir_all(base).unwrap();
    }
}
