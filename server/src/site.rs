//! Where the compiled site (wasm, JS, CSS, assets) is, and the Leptos options that point at it.
//!
//! The site directory is `site_dir` from the config (or `PITWALL_SITE`), else `site/` next to the
//! binary, so a release build runs without cargo-leptos, the source tree or its variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use leptos::config::LeptosOptions;

/// The output name the wasm, JS and CSS files carry (set by cargo-leptos at compile time).
const OUTPUT_NAME: &str = match option_env!("LEPTOS_OUTPUT_NAME") {
    Some(name) => name,
    None => "pitwall",
};
/// The folder inside the site directory with the hashed wasm, JS and CSS.
pub const PKG_DIR: &str = "pkg";
const HASH_FILE: &str = "hash.txt";

/// The site directory could not be found or is incomplete.
#[derive(Debug, thiserror::Error)]
#[error("site directory {}: {reason}; set `site_dir` in pitwall.toml or PITWALL_SITE, or put `site/` next to the binary", path.display())]
pub struct Error {
    path: PathBuf,
    reason: &'static str,
}

/// The located site.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site directory.
    pub root: PathBuf,
    /// The file naming the hashed asset files, when assets are hashed.
    hash_file: Option<PathBuf>,
}

impl Site {
    /// Finds the site from the configured directory or next to the binary.
    pub fn locate(configured: Option<&Path>) -> Result<Self, Error> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let root = match configured {
            Some(dir) => dir.to_path_buf(),
            None => exe_dir.clone().unwrap_or_default().join("site"),
        };
        let root = std::path::absolute(&root).unwrap_or(root);
        if !root.join(PKG_DIR).is_dir() {
            return Err(Error {
                path: root,
                reason: "it has no pkg/ folder (build with `cargo leptos build`)",
            });
        }
        // cargo-leptos writes hash.txt next to the binary; a deployed site may carry it itself.
        let hash_file = [
            exe_dir.map(|d| d.join(HASH_FILE)),
            Some(root.join(HASH_FILE)),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file());
        Ok(Self { root, hash_file })
    }

    /// Leptos options for serving this site on `addr`.
    pub fn leptos_options(&self, addr: SocketAddr) -> LeptosOptions {
        LeptosOptions::builder()
            .output_name(OUTPUT_NAME)
            .site_root(self.root.to_string_lossy().into_owned())
            .site_pkg_dir(PKG_DIR)
            .site_addr(addr)
            .hash_files(self.hash_file.is_some())
            .hash_file(
                self.hash_file
                    .as_ref()
                    .map_or_else(
                        || HASH_FILE.to_owned(),
                        |p| p.to_string_lossy().into_owned(),
                    )
                    .into(),
            )
            .build()
    }
}
