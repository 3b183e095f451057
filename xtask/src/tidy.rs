//! The repository's shape rules as ordinary tests, in the manner of
//! rust-analyzer's xtask tidy tests: `cargo test -p xtask` checks them, and
//! so does `cargo xtask ci`, whose test run covers every workspace member.
//!
//! Rust sources are parsed with `syn` (full syntax, visitor; spans carry
//! line numbers), so a function is measured from its `fn` keyword to its
//! closing brace whatever braces its strings, comments and macros hold.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Attribute, Meta, Token};

/// The longest a module may be, counted up to its `#[cfg(test)]` module.
const MAX_MODULE_LINES: usize = 600;

/// The longest a non-test function may be, from `fn` to its closing brace.
const MAX_FN_LINES: usize = 80;

/// The functions longer than [`MAX_FN_LINES`] that were already there when
/// the rule came (`path::fn_name`). The list may only shrink: the test fails
/// when a listed function is gone or short enough, so that its entry goes
/// too, and nothing new is added here; split a long function into named steps
/// instead.
const LONG_FN_ALLOWLIST: &[&str] = &[
    "crates/backend-consul/src/client.rs::send",
    "crates/backend-etcd/src/config.rs::from_descriptor_in",
    "crates/backend-etcd/src/registration.rs::hold_lease",
    "crates/backend-k8s/src/client.rs::new",
    "crates/e2e/src/bin/recovery.rs::main",
    "crates/e2e/src/bin/scale.rs::main",
    "crates/e2e/src/bin/soak.rs::main",
    "crates/e2e/src/chaos_target.rs::start",
    "crates/e2e/src/chaos_target.rs::inject",
    "crates/provider-api/src/diff.rs::diff_into",
    "crates/testkit/src/conformance.rs::run_conformance",
    "crates/testkit/src/etcd_cluster.rs::spawn",
    "xtask/src/bench.rs::criterion_rows",
    "xtask/src/bench.rs::run",
];

/// The files every network backend has, so that knowing one backend means
/// knowing all (`registration.rs` too where the backend registers members).
const BACKEND_FILES: &[&str] = &[
    "lib.rs",
    "config.rs",
    "client.rs",
    "stream.rs",
    "decode.rs",
    "provider.rs",
    "probe.rs",
    "error.rs",
];

/// The network backends, and whether each registers members.
const NETWORK_BACKENDS: &[(&str, bool)] = &[
    ("crates/backend-consul", true),
    ("crates/backend-k8s", false),
    ("crates/backend-etcd", true),
];

/// Where checkouts and the documents beside them live on a machine:
/// nothing in the repository may point there. (System paths such as
/// `/etc/passwd` or a cache directory's default are named as data, not as
/// references, and stay allowed.)
const MACHINE_PATHS: &[&str] = &["/work/", "/root/", "/home/"];

#[test]
fn modules_are_at_most_600_lines() {
    let mut long = Vec::new();
    for source in library_sources() {
        let lines = source.lines_before_tests();
        if lines > MAX_MODULE_LINES {
            long.push(format!("{}: {lines} lines", source.rel));
        }
    }
    assert!(
        long.is_empty(),
        "modules over {MAX_MODULE_LINES} lines (before their #[cfg(test)] module); \
         split them by responsibility:\n  {}",
        long.join("\n  ")
    );
}

#[test]
fn functions_are_at_most_80_lines() {
    let mut lengths = Vec::new();
    for source in library_sources() {
        let mut visitor = FnLengths {
            rel: &source.rel,
            found: &mut lengths,
        };
        visitor.visit_file(&source.syntax);
    }
    let long: BTreeSet<&str> = lengths
        .iter()
        .filter(|(_, lines)| *lines > MAX_FN_LINES)
        .map(|(name, _)| name.as_str())
        .collect();
    let mut problems = Vec::new();
    for (name, lines) in &lengths {
        if *lines > MAX_FN_LINES && !LONG_FN_ALLOWLIST.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: {lines} lines (at most {MAX_FN_LINES}); split it into named steps"
            ));
        }
    }
    for listed in LONG_FN_ALLOWLIST {
        if !long.contains(listed) {
            problems.push(format!(
                "{listed}: gone or now at most {MAX_FN_LINES} lines; \
                 remove it from LONG_FN_ALLOWLIST in xtask/src/tidy.rs"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_mod_rs() {
    let found: Vec<String> = repo_files(&["rs"])
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "mod.rs"))
        .map(|path| relative(&path))
        .collect();
    assert!(
        found.is_empty(),
        "mod.rs files (name the module's file after the module instead, `foo.rs` beside `foo/`):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn every_allow_has_a_reason() {
    let mut found = Vec::new();
    for path in repo_files(&["rs"]) {
        let rel = relative(&path);
        let syntax = parse(&path, &rel);
        let mut visitor = AllowsWithoutReason {
            rel: &rel,
            found: &mut found,
        };
        visitor.visit_file(&syntax);
    }
    assert!(
        found.is_empty(),
        "lint attributes without `reason = \"...\"` (say why the lint does not apply):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn network_backends_have_the_same_files() {
    let root = repo_root();
    let mut missing = Vec::new();
    for (backend, registers) in NETWORK_BACKENDS {
        let src = root.join(backend).join("src");
        let registration: &[&str] = if *registers {
            &["registration.rs"]
        } else {
            &[]
        };
        for file in BACKEND_FILES.iter().chain(registration) {
            if !src.join(file).is_file() {
                missing.push(format!("{backend}/src/{file}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "network backends share one file set ({}, plus registration.rs where the \
         backend registers members); missing:\n  {}",
        BACKEND_FILES.join(", "),
        missing.join("\n  ")
    );
}

#[test]
fn docs_and_comments_stay_inside_the_repository() {
    let root = repo_root();
    let documents: BTreeSet<String> = repo_files(&["md"])
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
        .collect();
    let mut found = Vec::new();
    for path in repo_files(&["rs", "md", "toml"]) {
        let rel = relative(&path);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let dir = path.parent().unwrap_or(&root);
        for (index, line) in text.lines().enumerate() {
            let Some(prose) = prose_of(&path, line) else {
                continue;
            };
            for word in prose.split(|c: char| !is_path_char(c)) {
                let word = word.trim_end_matches(['.', ':']);
                if let Some(why) = points_outside(word, dir, &root, &documents) {
                    found.push(format!("{rel}:{}: `{word}` {why}", index + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "docs and comments speak only about the repository (name a section, \
         e.g. `CONTRACTS §4`, not a file elsewhere):\n  {}",
        found.join("\n  ")
    );
}

/// Why `word` points outside the repository, if it does.
fn points_outside(
    word: &str,
    dir: &Path,
    root: &Path,
    documents: &BTreeSet<String>,
) -> Option<&'static str> {
    let path = word.rsplit(':').next().unwrap_or(word);
    if MACHINE_PATHS.iter().any(|prefix| path.starts_with(prefix)) {
        return Some("is a path on a machine, not in the repository");
    }
    // A word with a scheme is a URL or a secret reference
    // (`file:../../etc/passwd` is the input of a test, not a reference).
    if word.contains("../") && !word.contains(':') && escapes(&dir.join(word), root) {
        return Some("leads out of the repository");
    }
    let name = word.rsplit('/').next().unwrap_or(word);
    let is_document = name.strip_suffix(".md").is_some_and(|stem| {
        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    });
    if is_document && !documents.contains(name) {
        return Some("names a document that is not in the repository");
    }
    None
}

/// Whether `path` (joined, not yet normalized) climbs above `root`.
fn escapes(path: &Path, root: &Path) -> bool {
    let mut depth: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return true;
                }
            }
            Component::CurDir => {}
            other => depth.push(other),
        }
    }
    let normalized: PathBuf = depth.iter().collect();
    !normalized.starts_with(root)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':')
}

/// The prose of one line: all of a Markdown line, the comment of a Rust or
/// TOML line.
fn prose_of<'a>(path: &Path, line: &'a str) -> Option<&'a str> {
    match path.extension()?.to_str()? {
        "md" => Some(line),
        "rs" => line.find("//").map(|at| &line[at..]),
        "toml" => line.find('#').map(|at| &line[at..]),
        _ => None,
    }
}

/// One parsed Rust source of a crate's `src/` (or xtask's).
struct Source {
    rel: String,
    text: String,
    syntax: syn::File,
}

impl Source {
    /// The module's lines up to its `#[cfg(test)]` module (all of them
    /// without one).
    fn lines_before_tests(&self) -> usize {
        self.syntax
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Mod(module) if is_test(&module.attrs) => {
                    Some(module.span().start().line.saturating_sub(1))
                }
                _ => None,
            })
            .unwrap_or_else(|| self.text.lines().count())
    }
}

/// The non-test Rust sources: every file under `crates/*/src` and
/// `xtask/src`, except the files of out-of-line `#[cfg(test)] mod x;`
/// modules.
fn library_sources() -> Vec<Source> {
    let root = repo_root();
    let mut sources: Vec<Source> = repo_files(&["rs"])
        .into_iter()
        .filter_map(|path| {
            let rel = relative(&path);
            let parts: Vec<&str> = rel.split('/').collect();
            let library = matches!(
                parts.as_slice(),
                ["crates", _, "src", ..] | ["xtask", "src", ..]
            );
            library.then(|| {
                let text =
                    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
                let syntax = parse(&path, &rel);
                Source { rel, text, syntax }
            })
        })
        .collect();
    let test_files: BTreeSet<String> = sources
        .iter()
        .flat_map(|source| out_of_line_test_modules(&root, source))
        .collect();
    sources.retain(|source| !test_files.contains(&source.rel));
    sources
}

/// The files of `source`'s out-of-line `#[cfg(test)] mod x;` modules.
fn out_of_line_test_modules(root: &Path, source: &Source) -> Vec<String> {
    let path = root.join(&source.rel);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let parent = path.parent().unwrap_or(root);
    let dir = if matches!(stem, "lib" | "main") {
        parent.to_path_buf()
    } else {
        parent.join(stem)
    };
    source
        .syntax
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(module) if module.content.is_none() && is_test(&module.attrs) => {
                Some(relative(&dir.join(format!("{}.rs", module.ident))))
            }
            _ => None,
        })
        .collect()
}

/// Whether the attributes make an item test-only (`#[cfg(test)]`, or a
/// test function: `#[test]`, `#[tokio::test]`).
fn is_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        let cfg_test = path.is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string() == "test");
        cfg_test
            || path
                .segments
                .last()
                .is_some_and(|last| last.ident == "test")
    })
}

/// Collects `path::fn_name` and the line count of every non-test function.
struct FnLengths<'a> {
    rel: &'a str,
    found: &'a mut Vec<(String, usize)>,
}

impl FnLengths<'_> {
    fn record(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let first = sig.fn_token.span.start().line;
        let last = block.brace_token.span.close().start().line;
        self.found.push((
            format!("{}::{}", self.rel, sig.ident),
            last.saturating_sub(first) + 1,
        ));
    }
}

impl<'ast> Visit<'ast> for FnLengths<'_> {
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        if !is_test(&module.attrs) {
            visit::visit_item_mod(self, module);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_test(&item.attrs) {
            visit::visit_item_impl(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            self.record(&item.sig, &item.block);
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !is_test(&item.attrs) {
            self.record(&item.sig, &item.block);
            visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.record(&item.sig, block);
        }
        visit::visit_trait_item_fn(self, item);
    }
}

/// Collects every `allow`/`expect` lint attribute (also inside
/// `cfg_attr`) that gives no `reason`.
struct AllowsWithoutReason<'a> {
    rel: &'a str,
    found: &'a mut Vec<String>,
}

impl<'ast> Visit<'ast> for AllowsWithoutReason<'_> {
    fn visit_attribute(&mut self, attr: &'ast Attribute) {
        if lacks_reason(&attr.meta) {
            self.found.push(format!(
                "{}:{}: #[{}]",
                self.rel,
                attr.span().start().line,
                attr.meta
                    .path()
                    .segments
                    .last()
                    .map_or_else(String::new, |s| s.ident.to_string())
            ));
        }
        visit::visit_attribute(self, attr);
    }
}

/// Whether `meta` is a lint level without `reason = "..."`, or a
/// `cfg_attr` holding one.
fn lacks_reason(meta: &Meta) -> bool {
    let Meta::List(list) = meta else {
        return false;
    };
    let Ok(nested) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
        return false;
    };
    let path = &list.path;
    if path.is_ident("allow") || path.is_ident("expect") {
        !nested
            .iter()
            .any(|meta| matches!(meta, Meta::NameValue(pair) if pair.path.is_ident("reason")))
    } else if path.is_ident("cfg_attr") {
        nested.iter().skip(1).any(lacks_reason)
    } else {
        false
    }
}

fn parse(path: &Path, rel: &str) -> syn::File {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
    syn::parse_file(&text)
        .unwrap_or_else(|e| panic!("cannot parse {rel}:{}: {e}", e.span().start().line))
}

fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn relative(path: &Path) -> String {
    let root = repo_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Directories that hold no sources of the repository: build output, the
/// fuzzers' working state, anything hidden (`.git`, `.cargo`).
const SKIPPED: &[&str] = &[
    "target",
    "fuzz/target",
    "fuzz/work",
    "fuzz/corpus",
    "fuzz/artifacts",
    "fuzz/coverage",
];

/// Every file of the repository whose extension is one of `extensions`.
fn repo_files(extensions: &[&str]) -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                if !SKIPPED.contains(&relative(&path).as_str()) {
                    pending.push(path);
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
