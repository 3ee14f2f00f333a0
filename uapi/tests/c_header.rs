// SPDX-License-Identifier: MIT OR Apache-2.0

//! Checks that `uapi/vmm.h` and the Rust ABI tables in `uapi/src/lib.rs`
//! agree, in both directions.
//!
//! Rust -> C: a generated C file includes `vmm.h` and `_Static_assert`s every
//! struct size, field offset and size, ioctl number, constant and feature bit
//! from the Rust tables; the C compiler must accept it.
//!
//! C -> Rust: every struct and macro the header defines must exist in the
//! Rust tables.
//!
//! A negative test proves the generated assertions can fail.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmm_uapi::{CreateFlags, Features, StructLayout, CONSTANTS, IOCTLS, STRUCTS};

/// Absolute path of `uapi/vmm.h`.
fn header_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vmm.h")
}

/// The include guard `vmm.h` must use.
const GUARD: &str = "_UAPI_VMM_H";

/// Appends one `_Static_assert(expr, "expr")` line.
fn assert_line(out: &mut String, expr: &str) {
    let msg = expr.replace('\\', "\\\\").replace('"', "\\\"");
    out.push_str(&format!("_Static_assert({expr}, \"{msg}\");\n"));
}

/// C source asserting everything the Rust tables say. `size_of` gives the
/// size asserted for each struct (the real one, except in the negative test).
fn assertion_source(size_of: impl Fn(&StructLayout) -> usize) -> String {
    let mut out = String::new();
    out.push_str(&format!("#include \"{}\"\n", header_path().display()));
    out.push_str("#include <stddef.h>\n\n");

    for s in STRUCTS {
        let c = s.c_name;
        assert_line(&mut out, &format!("sizeof(struct {c}) == {}", size_of(s)));
        for f in s.fields {
            let n = f.name;
            assert_line(&mut out, &format!("offsetof(struct {c}, {n}) == {}", f.offset));
            assert_line(&mut out, &format!("sizeof(((struct {c} *)0)->{n}) == {}", f.size));
        }
    }
    for (name, value) in IOCTLS {
        assert_line(&mut out, &format!("{name} == {value}ULL"));
    }
    for (name, value) in CONSTANTS {
        assert_line(&mut out, &format!("{name} == {value}ULL"));
    }
    for (name, flag) in Features::all().iter_names() {
        assert_line(&mut out, &format!("VMM_FEATURE_{name} == {}ULL", flag.bits()));
    }
    // Every create flag has its VMM_CREATE_* constant (listed in CONSTANTS).
    for (name, flag) in CreateFlags::all().iter_names() {
        assert_line(&mut out, &format!("VMM_CREATE_{name} == {}ULL", flag.bits()));
    }
    out
}

/// Result of compiling a C file.
struct Compiled {
    ok: bool,
    stderr: String,
    path: PathBuf,
}

/// Writes `src` to a fresh temp dir (named after `tag` and the process id)
/// and runs `$CC -std=c11 -Wall -Werror -fsyntax-only` on it. The dir is
/// removed on success and kept on failure for inspection.
fn compile(tag: &str, src: &str) -> Compiled {
    let dir = std::env::temp_dir().join(format!("vmm-uapi-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join("check.c");
    fs::write(&path, src).expect("write C source");

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut words = cc.split_whitespace();
    let prog = words.next().unwrap_or("cc");
    let out = Command::new(prog)
        .args(words)
        .args(["-std=c11", "-Wall", "-Werror", "-fsyntax-only"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run C compiler `{cc}`: {e}"));
    let ok = out.status.success();
    if ok {
        let _ = fs::remove_dir_all(&dir);
    }
    Compiled { ok, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), path }
}

#[test]
fn header_matches_rust_abi() {
    let r = compile("c-header", &assertion_source(|s| s.size));
    assert!(
        r.ok,
        "vmm.h disagrees with uapi/src/lib.rs (source kept at {}):\n{}",
        r.path.display(),
        r.stderr
    );
}

#[test]
fn wrong_size_is_caught() {
    // Same assertions, but one struct's size is off by 8 bytes.
    let victim = STRUCTS[STRUCTS.len() - 1].c_name;
    let src = assertion_source(|s| if s.c_name == victim { s.size + 8 } else { s.size });
    let r = compile("c-header-negative", &src);
    assert!(!r.ok, "the C compiler accepted a wrong size for struct {victim}");
    let expect = format!("sizeof(struct {victim})");
    assert!(
        r.stderr.contains(&expect),
        "compile failed, but not on the planted assertion `{expect}`:\n{}",
        r.stderr
    );
    let _ = fs::remove_dir_all(r.path.parent().unwrap());
}

/// Whether `c` can appear in a C identifier.
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Names of the structs `text` defines (`struct NAME {`).
fn defined_structs(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("struct") {
        let before_ok = !text[..text.len() - rest.len() + i].ends_with(is_ident);
        rest = &rest[i + "struct".len()..];
        let after_kw = rest.trim_start();
        if !before_ok || after_kw.len() == rest.len() {
            continue; // part of a longer identifier
        }
        let end = after_kw.find(|c| !is_ident(c)).unwrap_or(after_kw.len());
        let (name, tail) = after_kw.split_at(end);
        if !name.is_empty() && tail.trim_start().starts_with('{') {
            found.push(name);
        }
    }
    found
}

/// Names of the macros `text` defines (`#define NAME` at a line start).
fn defined_macros(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().strip_prefix('#')?.trim_start();
            let line = line.strip_prefix("define")?;
            let name = line.trim_start();
            if name.len() == line.len() {
                return None; // e.g. `#defined`
            }
            let end = name.find(|c| !is_ident(c)).unwrap_or(name.len());
            Some(&name[..end])
        })
        .collect()
}

#[test]
fn header_defines_nothing_extra() {
    let path = header_path();
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));

    assert!(
        text.starts_with("/* SPDX-License-Identifier: MIT OR Apache-2.0 */\n"),
        "vmm.h must start with its SPDX line"
    );
    assert!(text.contains(&format!("#ifndef {GUARD}\n")), "vmm.h lacks its include guard");

    let structs: HashSet<&str> = STRUCTS.iter().map(|s| s.c_name).collect();
    let defined = defined_structs(&text);
    for name in &defined {
        assert!(structs.contains(name), "vmm.h defines struct {name}, which lib.rs lacks");
    }
    assert_eq!(defined.len(), STRUCTS.len(), "struct definitions in vmm.h: {defined:?}");

    let features: Vec<String> =
        Features::all().iter_names().map(|(n, _)| format!("VMM_FEATURE_{n}")).collect();
    let mut allowed: HashSet<&str> = HashSet::new();
    allowed.extend(IOCTLS.iter().map(|(n, _)| *n));
    allowed.extend(CONSTANTS.iter().map(|(n, _)| *n));
    allowed.extend(features.iter().map(String::as_str));
    allowed.insert(GUARD);

    let macros = defined_macros(&text);
    let mut seen = HashSet::new();
    for name in &macros {
        assert!(allowed.contains(name), "vmm.h defines {name}, which lib.rs lacks");
        assert!(seen.insert(*name), "vmm.h defines {name} twice");
    }
    // The forward check compiles every one of these; this only guards the
    // parser above against silently finding nothing.
    assert_eq!(macros.len(), allowed.len(), "macros in vmm.h: {macros:?}");
}

#[test]
fn header_parsers_work() {
    let text = "struct vmm_a {\n};\nstruct vmm_b\n{ int x; };\nstruct vmm_c *p;\n\
                mystruct vmm_d {\n#define VMM_X 1\n# define VMM_Y(a) a\n#defined Z\n";
    assert_eq!(defined_structs(text), ["vmm_a", "vmm_b"]);
    assert_eq!(defined_macros(text), ["VMM_X", "VMM_Y"]);
}
