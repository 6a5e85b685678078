//! `crds/` is generated from the Rust types and committed; this fails when they disagree.
use std::path::Path;

#[test]
fn the_committed_crds_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let problems = match lockstep::crdgen::drift(&dir) {
        Ok(problems) => problems,
        Err(e) => panic!("cannot compare {} with the types: {e:#}", dir.display()),
    };
    assert!(
        problems.is_empty(),
        "crds/ is out of date with src/api:\n  {}\nRegenerate it with `cargo run -- crds --out-dir crds` and commit the result.",
        problems.join("\n  ")
    );
}
