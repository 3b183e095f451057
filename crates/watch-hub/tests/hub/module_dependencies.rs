//! The files of `src/` outside `delivery/` import each other in layers, as
//! the list at the top of `lib.rs` says: no file imports from its own layer
//! or one above it, so the imports have no cycle.

use std::collections::BTreeMap;
use std::path::Path;

/// Layer of each module, from the `// N. a, b, c` lines of `lib.rs`.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("// ") else {
            continue;
        };
        let Some((number, names)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(layer) = number.parse::<usize>() else {
            continue;
        };
        let names = names.split(" (").next().unwrap_or(names);
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let before = layers.insert(name.to_owned(), layer);
            assert!(before.is_none(), "{name} is listed twice in lib.rs");
        }
    }
    layers
}

/// The code of a file without its comment lines (doc links are not imports).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment of every `crate::` path in `code` (one per item
/// of a `crate::{a::X, b::Y}` group).
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|item| ident(item.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|segment| !segment.is_empty());
    out
}

#[test]
fn files_outside_delivery_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&code_with_comments(&src.join("lib.rs")));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                files.push((name.clone(), inner.unwrap().path()));
            }
        } else if name != "lib" {
            files.push((name, path));
        }
    }
    let mut problems = Vec::new();
    let mut edges = 0;
    for (module, path) in &files {
        let Some(&own) = layers.get(module) else {
            problems.push(format!("{module} is not in the layer list of lib.rs"));
            continue;
        };
        for target in crate_paths(&code(path)) {
            if target == *module {
                continue;
            }
            match layers.get(&target) {
                None => problems.push(format!(
                    "{}: `crate::{target}` is not a module of the list (import through \
                     the module's path, so that the dependency shows)",
                    path.display()
                )),
                Some(&layer) if layer >= own => problems.push(format!(
                    "{}: {module} (layer {own}) imports {target} (layer {layer})",
                    path.display()
                )),
                Some(_) => edges += 1,
            }
        }
    }
    println!(
        "{} files, {} modules in {} layers, {edges} imports checked",
        files.len(),
        layers.len(),
        layers.values().max().unwrap_or(&0)
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn code_with_comments(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
