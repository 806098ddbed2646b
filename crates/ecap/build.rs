//! Embeds the built browser app (`frontend/dist`, made by `npm run build`) in
//! the binary. Without a build the table is empty and `/` explains how to make
//! one; `cargo build` never needs Node.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../frontend/dist");
    // Created when missing, so Cargo has a directory to watch (a missing path
    // would re-run this script, and rebuild the crate, on every build).
    let _ = std::fs::create_dir_all(&dist);
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    files(&dist, &mut found);
    found.sort();
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for path in &found {
        let Ok(rel) = path.strip_prefix(&dist) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.ends_with(".gz") || rel.ends_with(".br") || rel.starts_with('.') {
            continue;
        }
        let variant = |ext: &str| {
            let p = PathBuf::from(format!("{}.{ext}", path.display()));
            if p.is_file() {
                format!("Some(include_bytes!({:?}))", p.display().to_string())
            } else {
                "None".to_owned()
            }
        };
        let _ = writeln!(
            code,
            "    Asset {{ path: {rel:?}, body: include_bytes!({:?}), gzip: {}, br: {} }},",
            path.display().to_string(),
            variant("gz"),
            variant("br"),
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("assets.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
