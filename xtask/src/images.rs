//! Images by digest: `images.lock` (written by `make publish`) names each image's
//! digest, and every reference to a Kiln image in the Argo templates and the
//! Kubernetes manifests must be that digest. `pin` rewrites the references from the
//! lock; `check` (in `make lint-manifests`) fails when one differs or names a tag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::{Error, Result, read};

/// The lock file, at the workspace root.
pub const LOCK: &str = "images.lock";

/// The folders whose YAML references images.
const MANIFEST_DIRS: [&str; 2] = ["argo", "infra/k8s"];

/// Images the lock may lack, with the reason: their references keep a tag until a
/// publish that builds them writes their digest.
const UNPINNED: [(&str, &str); 1] = [(
    "kiln-train-cuda",
    "its CUDA base cannot be pulled where images.lock is made",
)];

/// Reads `images.lock`: `kiln-NAME sha256:HEX` lines, `#` comments.
pub fn parse_lock(text: &str) -> Result<BTreeMap<String, String>> {
    let digest = Regex::new("^sha256:[0-9a-f]{64}$").expect("a valid regex");
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(name), Some(d), None) if name.starts_with("kiln-") && digest.is_match(d) => {
                out.insert(name.to_string(), d.to_string());
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "{LOCK}:{}: expected `kiln-NAME sha256:HEX`, found `{line}`",
                    n + 1
                )));
            }
        }
    }
    Ok(out)
}

/// The YAML files under the manifest folders.
pub fn manifests(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for dir in MANIFEST_DIRS {
        walk(&root.join(dir), &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn digest_ref() -> Regex {
    Regex::new(r"\b(kiln-[a-z][a-z-]*)@(sha256:[0-9a-f]{64})").expect("a valid regex")
}

/// `text` with every `kiln-NAME@sha256:…` reference set to the lock's digest.
pub fn pin_text(text: &str, lock: &BTreeMap<String, String>) -> String {
    digest_ref()
        .replace_all(text, |c: &regex::Captures| {
            let name = &c[1];
            let digest = lock.get(name).map_or(&c[2], String::as_str);
            format!("{name}@{digest}")
        })
        .into_owned()
}

/// What is wrong with `text`'s image references: a digest the lock does not hold, an
/// image the lock does not name, or a Kiln image referenced by tag.
pub fn problems(file: &str, text: &str, lock: &BTreeMap<String, String>) -> Vec<String> {
    let tagged =
        Regex::new(r#"image:\s*"?[^\s"]*/(kiln-[a-z][a-z-]*):[^\s"@]+"?"#).expect("a valid regex");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        for c in digest_ref().captures_iter(line) {
            match lock.get(&c[1]) {
                Some(d) if d == &c[2] => {}
                Some(d) => out.push(format!(
                    "{at}: {} is pinned to {} but {LOCK} says {d} (make pin-images)",
                    &c[1], &c[2]
                )),
                None => out.push(format!("{at}: {} is not in {LOCK}", &c[1])),
            }
        }
        for c in tagged.captures_iter(line) {
            let name = &c[1];
            if lock.contains_key(name) || !UNPINNED.iter().any(|(n, _)| *n == name) {
                out.push(format!(
                    "{at}: {name} is referenced by tag; a cluster runs digests (make pin-images)"
                ));
            }
        }
    }
    out
}

/// Pins (or with `check`, checks) every manifest against the lock. Returns the files
/// rewritten, or the problems found.
pub fn run(root: &Path, check: bool) -> Result<Vec<String>> {
    let lock = parse_lock(&read(&root.join(LOCK))?)?;
    let mut report = Vec::new();
    for path in manifests(root)? {
        let text = read(&path)?;
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if check {
            report.extend(problems(&name, &text, &lock));
        } else {
            let pinned = pin_text(&text, &lock);
            if pinned != text {
                std::fs::write(&path, pinned).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                report.push(name);
            }
        }
    }
    Ok(report)
}

/// The images the lock may lack, with why (for the lint's message).
pub fn unpinned() -> impl Iterator<Item = String> {
    UNPINNED.iter().map(|(n, why)| format!("{n} ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> BTreeMap<String, String> {
        parse_lock(&format!(
            "# c\nkiln-prepare sha256:{}\nkiln-serve sha256:{}\n",
            "a".repeat(64),
            "b".repeat(64)
        ))
        .unwrap()
    }

    #[test]
    fn references_are_pinned_to_the_lock() {
        let text = format!(
            "image: \"r/kiln-prepare@sha256:{}\"\nimage: x/kiln-serve@sha256:{}\n",
            "0".repeat(64),
            "b".repeat(64)
        );
        let pinned = pin_text(&text, &lock());
        assert!(pinned.contains(&format!("kiln-prepare@sha256:{}", "a".repeat(64))));
        assert!(problems("f", &pinned, &lock()).is_empty());
        let stale = problems("f", &text, &lock());
        assert_eq!(stale.len(), 1);
        assert!(
            stale[0].starts_with("f:1: kiln-prepare is pinned to"),
            "{stale:?}"
        );
    }

    #[test]
    fn tags_and_unknown_images_are_problems() {
        let found = problems(
            "f",
            &format!(
                "image: ghcr.io/k/kiln-serve:0.1.0\nimage: r/kiln-train-cuda:{{{{t}}}}\nv: kiln-nope@sha256:{}\n",
                "c".repeat(64)
            ),
            &lock(),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("kiln-serve is referenced by tag"));
        assert!(found[1].contains("kiln-nope is not in images.lock"));
        assert!(parse_lock("kiln-x latest\n").is_err());
    }
}
