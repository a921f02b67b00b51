//! The shape of the library, checked: no source file over 600 lines, wgpu
//! named only inside the GPU backend's folder, and no dependency cycle
//! between the top-level modules (a module reaches another through
//! `crate::NAME` paths in its code; comments do not count).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    (root, files)
}

/// The code of a file without its comments (line and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`None` for lib.rs and main.rs).
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

#[test]
fn no_source_file_is_over_600_lines() {
    let (_, files) = src();
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 600 lines: {long:?}");
}

#[test]
fn wgpu_is_named_only_in_the_gpu_backend() {
    let (root, files) = src();
    let outside: Vec<String> = files
        .iter()
        .filter(|f| module_of(&root, f).as_deref() != Some("gpu"))
        .filter(|f| {
            let c = code(&std::fs::read_to_string(f).unwrap());
            c.contains("wgpu::") || c.contains("use wgpu")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        outside.is_empty(),
        "wgpu named outside src/gpu: {outside:?}"
    );
}

#[test]
fn top_level_modules_have_no_dependency_cycle() {
    let (root, files) = src();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&root, f) else {
            continue;
        };
        let c = code(&std::fs::read_to_string(f).unwrap());
        let entry = deps.entry(m.clone()).or_default();
        for (i, _) in c.match_indices("crate::") {
            let rest = &c[i + 7..];
            let name: String = rest
                .chars()
                .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                .collect();
            // `crate::{a, b}` and re-exports at the root (`crate::Error`) are not modules.
            if !name.is_empty()
                && name != m
                && name.chars().next().is_some_and(|ch| ch.is_lowercase())
            {
                entry.insert(name);
            }
        }
        // `use crate::{a::X, b::Y}` lists modules inside braces.
        for (i, _) in c.match_indices("crate::{") {
            let inner: String = c[i + 8..].chars().take_while(|&ch| ch != '}').collect();
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                    .collect();
                if !name.is_empty()
                    && name != m
                    && name.chars().next().is_some_and(|ch| ch.is_lowercase())
                {
                    entry.insert(name);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(p) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[p..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for d in deps.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in deps.keys() {
        if let Some(cycle) = visit(m, &deps, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}\nall edges: {deps:#?}", cycle.join(" -> "));
        }
    }
    // The interface depends on no backend.
    let backend = &deps["backend"];
    for b in ["gpu", "cpu", "kernel", "net"] {
        assert!(!backend.contains(b), "backend depends on {b}: {backend:?}");
    }
}

#[test]
fn the_subgroup_kernel_is_its_generators_output() {
    // shaders/matmul_sg8.wgsl's unrolled body is written by a script; the
    // checked-in file must be exactly what the script writes.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/gen_matmul_sg8.py"))
        .output()
        .expect("python3 runs the generator (CI installs Python)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::read_to_string(root.join("shaders/matmul_sg8.wgsl")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == file,
        "shaders/matmul_sg8.wgsl differs from scripts/gen_matmul_sg8.py's output: regenerate it"
    );
}
