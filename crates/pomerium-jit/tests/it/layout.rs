//! The release build's code layout: `hot-code.ld`, which `build.rs` passes
//! to the linker of release builds (`scripts/hot-code.sh` makes it).

use std::path::Path;

#[test]
fn the_hot_code_script_lists_the_request_path_for_release_links() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(dir.join("hot-code.ld")).expect("hot-code.ld");
    let body = script
        .split_once("SECTIONS {\n  .text.hot : {\n")
        .expect("one output section, .text.hot")
        .1;
    // Inserted before the default layout, not replacing it.
    assert!(
        body.trim_end().ends_with("}\n} INSERT BEFORE .text;"),
        "the script must end with INSERT BEFORE .text"
    );
    let lines: Vec<&str> = body.lines().take_while(|l| l.trim() != "}").collect();
    // First the C library's code, when it is linked in statically (the
    // production build), then the functions.
    let (libc, lines) = lines.split_first().expect("a section with lines");
    assert_eq!(libc.trim(), "*libc.a:*(.text .text.*)");
    // `*(.text.NAME .text.unlikely.NAME)`: a function, wherever LLVM put it.
    let patterns: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.trim()
                .strip_prefix("*(.text.")
                .and_then(|p| p.strip_suffix(')'))
                .and_then(|p| p.split_once(" .text.unlikely."))
                .filter(|(name, again)| name == again)
                .map(|(name, _)| name)
                .unwrap_or_else(|| panic!("not a function's section patterns: {l}"))
        })
        .collect();
    assert!(patterns.len() > 1000, "{} functions", patterns.len());
    for p in &patterns {
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_$.*".contains(c)),
            "a character a linker script would read otherwise: {p}"
        );
        // Only a Rust symbol's hash is left open.
        assert!(
            !p.contains('*') || (p.ends_with("17h*") && p.matches('*').count() == 1),
            "{p}"
        );
    }
    // The code every request runs is among it.
    for krate in [
        "5hyper",
        "5tokio",
        "7jit_web",
        "12jit_identity",
        "11jit_service",
    ] {
        assert!(
            patterns
                .iter()
                .any(|p| p.starts_with(&format!("_ZN{krate}"))),
            "nothing of {krate}"
        );
    }
    let build = std::fs::read_to_string(dir.join("build.rs")).expect("build.rs");
    assert!(
        build.contains("\"hot-code.ld\"") && build.contains("cargo::rustc-link-arg-bins=-Wl,-T,")
    );
}
