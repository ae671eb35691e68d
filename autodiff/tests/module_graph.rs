//! The module import graph of `autodiff/src` has no cycle, and the kernels import nothing of
//! the tape or the rules.
//!
//! The graph is read from the source with plain file reading: every `crate::…` path in code
//! (`use` lines, groups `crate::{a, b::c}` and inline paths such as `crate::kernels::buffers::
//! collect(…)`), outside comments and outside test code (`#[cfg(test)]` modules and the files
//! they name), since a test may use any part of the crate as a dev-dependency would. A node is
//! a top-level module (`src/tape.rs`, `src/op/…`), except under `src/kernels/`, where each
//! kernel (`kernels::buffers`, `kernels::small_gemm`, `kernels::fast_math`) is its own node.
//! A name the crate root re-exports (`crate::Matrix`) counts as the module it comes from.
//!
//! `AUTODIFF_SOURCE_DIR` points the test at another source tree (to show it fails on a layout
//! with a cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Node → the nodes it imports from.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// What a kernel may import, besides other kernels.
const KERNEL_MAY_IMPORT: [&str; 3] = ["matrix", "shape", "error"];

fn source_dir() -> PathBuf {
    match std::env::var_os("AUTODIFF_SOURCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The node of a file, from its path relative to `src` (`None` for the crate root).
fn node_of_file(relative: &Path) -> Option<String> {
    let parts: Vec<String> =
        relative.iter().map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [root] if root == "lib" => None,
        [kernels, kernel, ..] if kernels == "kernels" && kernel != "mod" => {
            Some(format!("kernels::{kernel}"))
        }
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

/// The node a path after `crate::` names (`kernels::buffers::collect` → `kernels::buffers`),
/// with `reexports` resolving names the root re-exports.
fn node_of_path(path: &str, reexports: &BTreeMap<String, String>) -> Option<String> {
    let mut segments = path.split("::").map(str::trim).filter(|s| !s.is_empty());
    let first = segments.next()?;
    if first == "kernels" {
        return Some(match segments.next() {
            Some(kernel) if kernel.chars().next().is_some_and(char::is_lowercase) => {
                format!("kernels::{kernel}")
            }
            _ => "kernels".to_string(),
        });
    }
    if let Some(node) = reexports.get(first) {
        return Some(node.clone());
    }
    Some(first.to_string())
}

/// The code of a file without comments and test code: lines after a `#[cfg(test)]` on a
/// module block are dropped up to the block's closing brace, and `mod name;` after a
/// `#[cfg(test)]` is returned as a test file's name.
fn code_lines(text: &str) -> (Vec<String>, Vec<String>) {
    let mut code = Vec::new();
    let mut test_files = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            let Some(next) = lines.next() else { break };
            let next = next.trim();
            let item = next.trim_start_matches("pub(crate) ").trim_start_matches("pub ");
            if let Some(name) = item.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                test_files.push(name.trim().to_string());
                continue;
            }
            // Skip the item to its matching closing brace.
            let mut depth = next.matches('{').count() as i64 - next.matches('}').count() as i64;
            while depth > 0 {
                let Some(inner) = lines.next() else { break };
                depth += inner.matches('{').count() as i64 - inner.matches('}').count() as i64;
            }
            continue;
        }
        // Drop a trailing comment.
        let without_comment = match line.find("//") {
            Some(k) => &line[..k],
            None => line,
        };
        code.push(without_comment.to_string());
    }
    (code, test_files)
}

/// The paths after every `crate::` in `code`, groups expanded (`crate::{a::b, c}` → `a::b`,
/// `c`; nested groups keep their first segment).
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(k) = rest.find("crate::") {
        // `$crate::` or a longer identifier ending in `crate` is not the crate root.
        let before = rest[..k].chars().next_back();
        rest = &rest[k + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        paths.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth >= 1 {
                    item.push(c);
                }
            }
            paths.push(item);
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].to_string());
        }
    }
    paths.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// Names the crate root re-exports (`pub use tape::{Tape, Var};`) → the node they come from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let no_names = BTreeMap::new();
    let (code, _) = code_lines(lib);
    for statement in code.join("\n").split(';') {
        let statement = statement.trim();
        let Some(path) = statement.strip_prefix("pub use ") else { continue };
        let Some(node) = node_of_path(path, &no_names) else { continue };
        let tail = path.rsplit("::").next().unwrap_or(path);
        let list = tail.trim_start_matches('{').trim_end_matches('}');
        // `a::{b, c}` re-exports the modules `b`, `c` of `a`; `a::B` the item `B`.
        if let Some(inner) = path.split_once("::{").map(|(_, inner)| inner) {
            for name in inner.trim_end_matches('}').split(',') {
                let name = name.split(" as ").last().unwrap_or(name).trim();
                if node == "kernels" && name.chars().next().is_some_and(char::is_lowercase) {
                    names.insert(name.to_string(), format!("kernels::{name}"));
                } else if !name.is_empty() && name != "self" {
                    names.insert(name.to_string(), node.clone());
                }
            }
        } else if !list.is_empty() {
            names.insert(list.to_string(), node);
        }
    }
    names
}

/// The import graph of the source tree at `src`.
fn module_graph(src: &Path) -> Graph {
    let lib = fs::read_to_string(src.join("lib.rs")).expect("reading lib.rs");
    let reexports = root_reexports(&lib);
    let files = rust_files(src);
    // Files that are test modules (`#[cfg(test)] mod tests;` in their parent).
    let mut test_files = BTreeSet::new();
    let mut code_of = BTreeMap::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("reading a source file");
        let (code, tests) = code_lines(&text);
        let dir = if file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs") {
            file.parent().expect("parent").to_path_buf()
        } else {
            file.with_extension("")
        };
        for name in tests {
            test_files.insert(dir.join(format!("{name}.rs")));
            test_files.insert(dir.join(&name).join("mod.rs"));
        }
        code_of.insert(file.clone(), code.join("\n"));
    }
    let mut graph = Graph::new();
    for (file, code) in &code_of {
        let relative = file.strip_prefix(src).expect("file under src");
        let Some(from) = node_of_file(relative) else { continue };
        let edges = graph.entry(from.clone()).or_default();
        if test_files.contains(file) {
            continue;
        }
        for path in crate_paths(code) {
            if let Some(to) = node_of_path(&path, &reexports) {
                if to != from && !(from.starts_with("kernels::") && to == "kernels") {
                    edges.insert(to);
                }
            }
        }
    }
    graph
}

/// A cycle of `graph` as its nodes in order (the first repeated at the end), if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

fn drawing(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(from, to)| {
            format!("  {from} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_module_import_graph_has_no_cycle() {
    let src = source_dir();
    let graph = module_graph(&src);
    println!("import graph of {}:\n{}", src.display(), drawing(&graph));
    // The reader found the crate's layers (a reader that found nothing would pass vacuously).
    for (from, to) in
        [("tape", "op"), ("backward", "tape"), ("dual", "scalar"), ("matrix", "shape")]
    {
        if graph.contains_key(from) && graph.contains_key(to) {
            assert!(graph[from].contains(to), "expected {from} -> {to}:\n{}", drawing(&graph));
        }
    }
    assert!(graph.len() >= 10, "too few modules read:\n{}", drawing(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}\n{}", cycle.join(" -> "), drawing(&graph));
    }
}

#[test]
fn kernels_import_nothing_of_the_tape_or_the_rules() {
    let graph = module_graph(&source_dir());
    let kernels: Vec<_> = graph.keys().filter(|n| n.starts_with("kernels::")).collect();
    assert!(kernels.len() >= 3, "kernels not found:\n{}", drawing(&graph));
    for kernel in kernels {
        for to in &graph[kernel] {
            assert!(
                to.starts_with("kernels::") || KERNEL_MAY_IMPORT.contains(&to.as_str()),
                "{kernel} imports {to}: a kernel may import only {KERNEL_MAY_IMPORT:?} and kernels"
            );
        }
    }
}

/// The reader and the cycle finder on inputs with a known answer.
#[test]
fn the_reader_and_the_cycle_finder_on_known_inputs() {
    let code = "use crate::{Dual, tape::{self, Var}, kernels::buffers};\n\
                let x = crate::kernels::small_gemm::gemm(a); // crate::check\n\
                $crate::ignored; notcrate::ignored;";
    let (lines, tests) = code_lines(code);
    assert!(tests.is_empty());
    assert_eq!(
        crate_paths(&lines.join("\n")),
        ["Dual", "tape::{self, Var}", "kernels::buffers", "kernels::small_gemm::gemm"]
    );
    let (lines, tests) = code_lines(
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn f() {}\n}\n#[cfg(test)]\nmod more;\nuse crate::c;",
    );
    assert_eq!(crate_paths(&lines.join("\n")), ["a", "c"]);
    assert_eq!(tests, ["more"]);
    let reexports = root_reexports("pub use kernels::{buffers, fast_math};\npub use tape::{Tape, Var};\npub use var::conv::Conv2d;");
    assert_eq!(node_of_path("Tape", &reexports).as_deref(), Some("tape"));
    assert_eq!(node_of_path("Conv2d", &reexports).as_deref(), Some("var"));
    assert_eq!(node_of_path("buffers::give", &reexports).as_deref(), Some("kernels::buffers"));
    assert_eq!(
        node_of_file(Path::new("kernels/small_gemm/dual.rs")).as_deref(),
        Some("kernels::small_gemm")
    );
    assert_eq!(node_of_file(Path::new("op/unary.rs")).as_deref(), Some("op"));

    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
