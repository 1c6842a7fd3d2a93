//! The store on disk: KDS documents under the paths of [`Document::store_path`]. It is the
//! node's cache of what it fetched and the offline store an operator imports; either way its
//! files are the host's to write, so what is read from it is checked by the caller like a
//! download, and bounded in size.

use crate::document::Document;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest document read from disk or the network: a VCEK is ~1.3 KiB, a chain ~4 KiB,
/// a CRL a few KiB.
pub(crate) const MAX_DOCUMENT: usize = 256 * 1024;

/// A directory of KDS documents.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
}

impl CertStore {
    /// The store in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> CertStore {
        CertStore { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `doc` is kept.
    pub fn path_of(&self, doc: &Document) -> PathBuf {
        self.dir.join(&doc.store_path)
    }

    /// The stored bytes of `doc`, if there are any. A file above the size bound, or one that
    /// cannot be read, is reported as an error (and ignored by the client).
    pub fn read(&self, doc: &Document) -> Result<Option<Vec<u8>>, String> {
        let path = self.path_of(doc);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() > MAX_DOCUMENT {
            return Err(format!(
                "{}: larger than {MAX_DOCUMENT} bytes",
                path.display()
            ));
        }
        Ok(Some(bytes))
    }

    /// Keeps `bytes` as `doc`: written to a temporary file and renamed, so a reader never
    /// sees half a certificate.
    pub fn write(&self, doc: &Document, bytes: &[u8]) -> std::io::Result<()> {
        self.write_file(&doc.store_path, bytes)
    }

    /// Writes `bytes` to `rel` below the store, the same way. Refuses to go through a symbolic
    /// link below the store directory: the disk is the host's, and a link it planted must not
    /// turn a write here into one elsewhere in the guest.
    pub fn write_file(&self, rel: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(rel);
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        let mut walked = self.dir.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            if !matches!(part, std::path::Component::Normal(_)) {
                return Err(std::io::Error::other(format!(
                    "{}: not a plain path below the store",
                    rel.display()
                )));
            }
            walked.push(part);
            if std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(std::io::Error::other(format!(
                    "{} is a symbolic link",
                    walked.display()
                )));
            }
        }
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{}.tmp", rand::random::<u64>()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Every document file below the store, relative to it (for imports), in a stable order.
    pub fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                    if let Ok(rel) = entry.path().strip_prefix(&self.dir) {
                        out.push(rel.to_path_buf());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
