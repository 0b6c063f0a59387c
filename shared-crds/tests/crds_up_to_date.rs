//! Fails when `manifests/crds/` differs from what the Rust types generate: the CRDs users install
//! must be the ones the operators are built against. Reads `manifests/crds/` only.

mod offline;

const HOW_TO_FIX: &str = "run `cargo run -p shared-crds --bin crdgen` and commit manifests/crds/";

#[test]
fn committed_crds_match_the_types() {
    let dir = offline::workspace().join("manifests/crds");
    for m in shared_crds::crd_manifests() {
        let path = dir.join(&m.file_name);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}): {HOW_TO_FIX}", path.display()));
        assert!(
            committed == m.yaml,
            "{} is out of date: {HOW_TO_FIX}",
            path.display()
        );
    }
}

#[test]
fn no_stale_crd_files() {
    let dir = offline::workspace().join("manifests/crds");
    let generated: Vec<String> = shared_crds::crd_manifests()
        .into_iter()
        .map(|m| m.file_name)
        .collect();
    for file in offline::yaml_files(&dir) {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            generated.contains(&name),
            "{name} is not generated any more: {HOW_TO_FIX}"
        );
    }
}

#[test]
fn the_install_bundle_holds_the_same_crds() {
    let path = offline::workspace()
        .join("manifests/install")
        .join(shared_crds::INSTALL_CRDS_FILE);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {HOW_TO_FIX}", path.display()));
    assert!(
        committed == shared_crds::install_crds_yaml(),
        "{} is out of date: {HOW_TO_FIX}",
        path.display()
    );
}
