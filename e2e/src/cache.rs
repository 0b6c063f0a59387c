//! Where downloads and builds are cached (outside the repository, keyed by version) and where a
//! running testbed keeps its state. May touch: environment variables only.

use std::path::PathBuf;

/// The cache root: `$OXBOW_CACHE_DIR`, else `$HOME/.cache/oxbow`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OXBOW_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("oxbow")
}

/// The folder of a running testbed: `$OXBOW_TESTBED_DIR`, else `/tmp/oxbow-testbed`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("OXBOW_TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/oxbow-testbed"))
}

/// The repository root (the workspace holding this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives inside the workspace")
        .to_path_buf()
}
