//! Writes the CRDs of `shared-crds` as YAML, one file per CRD, into the folder given (default
//! `manifests/crds` of the workspace), and removes stale `*.yaml` files there. Without an
//! argument it also writes all of them as one file into the install bundle
//! (`manifests/install/00-crds.yaml`). May touch: those folders only.

use std::{fs, path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("manifests")
                .join("crds")
        });
    let bundle = std::env::args_os().nth(1).is_none().then(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("manifests")
            .join("install")
            .join(shared_crds::INSTALL_CRDS_FILE)
    });
    if let Some(path) = &bundle {
        if let Err(e) = fs::write(path, shared_crds::install_crds_yaml()) {
            eprintln!("crdgen: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    match write_all(&dir) {
        Ok(written) => {
            for file in written {
                println!("wrote {}", dir.join(file).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    fs::create_dir_all(dir)?;
    let manifests = shared_crds::crd_manifests();
    // A CRD that is no longer generated must not linger in the install manifests.
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".yaml") && !manifests.iter().any(|m| m.file_name == name) {
            fs::remove_file(&path)?;
        }
    }
    let mut written = Vec::new();
    for m in manifests {
        fs::write(dir.join(&m.file_name), &m.yaml)?;
        written.push(m.file_name);
    }
    Ok(written)
}
