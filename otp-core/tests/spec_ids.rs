//! Every specification case id that otp-core's code, docs and tests cite (`GS-13`, `INIT-02`,
//! `D1`, …) is defined in `otp-core/SPEC.md`, so that a citation always leads somewhere.

use std::collections::BTreeSet;
use std::path::Path;

const SECTIONS: [&str; 11] = [
    "RST", "INT", "STR", "SHD", "ADM", "INIT", "NEST", "DYN", "TASK", "REG", "GS",
];

/// Whether `token` has the shape of a case id: `SECTION-NN` or `DN`/`DNN`.
fn is_case_id(token: &str) -> bool {
    if let Some((section, number)) = token.split_once('-') {
        return SECTIONS.contains(&section)
            && (1..=3).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit());
    }
    token.len() >= 2
        && token.len() <= 3
        && token.starts_with('D')
        && token[1..].bytes().all(|b| b.is_ascii_digit())
}

fn case_ids(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|token| is_case_id(token))
}

/// The ids SPEC.md defines: case headings (`### GS-13 — …`) and divergences (`- **D1. …`).
fn defined_ids(spec: &str) -> BTreeSet<String> {
    spec.lines()
        .filter_map(|line| {
            let heading = line.strip_prefix("### ").map(|rest| rest.split(' ').next());
            let divergence = line.strip_prefix("- **").map(|rest| rest.split('.').next());
            heading.or(divergence).flatten()
        })
        .filter(|token| is_case_id(token))
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_case_id_cited_in_the_code_is_defined_in_the_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("SPEC.md")).expect("otp-core/SPEC.md");
    let defined = defined_ids(&spec);
    assert!(
        defined.contains("GS-13") && defined.contains("D1"),
        "{defined:?}"
    );

    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let mut undefined = Vec::new();
    let mut cited = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for id in case_ids(&text) {
            cited += 1;
            if !defined.contains(id) {
                undefined.push(format!("{id} in {}", file.display()));
            }
        }
    }
    assert!(
        cited > 100,
        "only {cited} citations found: is the scan broken?"
    );
    assert!(
        undefined.is_empty(),
        "cited but not defined in SPEC.md: {undefined:?}"
    );
}

// The guarantees page (src/semantics.rs) names the tests that pin each row: every name it
// gives is a test function in tests/ (or a loom model beside the code, in src/)
#[test]
fn every_test_named_on_the_guarantees_page_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("src/semantics.rs")).unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("tests"), &mut files);
    rust_files(&root.join("src"), &mut files);
    let tests: String = files
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect();
    let named: Vec<&str> = page
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| name.len() > 15 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    assert!(
        named.len() > 40,
        "only {} test names found on the page",
        named.len()
    );
    let missing: Vec<&&str> = named
        .iter()
        .filter(|name| !tests.contains(&format!("fn {name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "named on the guarantees page, not a test: {missing:?}"
    );
}
