//! The pid file: written once the server listens, removed when the master
//! exits through any path that returns (workers `_exit` and never drop it).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A written pid file; removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Write `pid` and a newline to `path`.
    ///
    /// The file is written beside the target and renamed over it, so a
    /// reader never sees it empty or half written.
    ///
    /// # Errors
    ///
    /// The directory is missing or not writable.
    pub fn create(path: &Path, pid: u32) -> io::Result<PidFile> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(format!("{pid}\n").as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(PidFile { path: path.to_path_buf() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove pid file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let dir = std::env::temp_dir().join(format!("oserver-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.pid");
        let pf = PidFile::create(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        drop(pf);
        assert!(!path.exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error() {
        let path = Path::new("/nonexistent/oserver/o.pid");
        assert!(PidFile::create(path, 1).is_err());
    }
}
