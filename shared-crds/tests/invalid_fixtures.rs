//! The invalid fixtures of `e2e/tests/fixtures/invalid/`, checked offline: each is refused by the
//! generated CRD schema or its CEL rules at the field its `# expect:` line names, so that the e2e
//! test against the real API server tests what the fixture claims. Reads those files only.

mod offline;

#[test]
fn there_are_enough_fixtures() {
    assert!(offline::invalid_fixtures().len() >= 12);
}

#[test]
fn each_fixture_is_rejected_at_the_expected_field() {
    for f in offline::invalid_fixtures() {
        let name = f.file.display();
        match f.documents.as_slice() {
            [created] => {
                let admission = offline::admit(created, None);
                assert!(
                    admission.rejects_as(&f.expect),
                    "{name}: expected `{}`, got {:?}",
                    f.expect,
                    admission.rejections
                );
            }
            [created, updated] => {
                let first = offline::admit(created, None);
                assert!(
                    first.rejections.is_empty(),
                    "{name}: the first document must be accepted: {:?}",
                    first.rejections
                );
                let admission = offline::admit(updated, Some(created));
                assert!(
                    admission.rejects_as(&f.expect),
                    "{name}: expected `{}` on update, got {:?}",
                    f.expect,
                    admission.rejections
                );
            }
            other => panic!(
                "{name}: expected one or two documents, found {}",
                other.len()
            ),
        }
    }
}

#[test]
fn fixtures_use_unique_names() {
    let mut names: Vec<String> = offline::invalid_fixtures()
        .iter()
        .map(|f| {
            f.documents[0]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "fixture resources share a name");
}
