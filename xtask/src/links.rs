//! The manual's link check.
//!
//! [`check_book`] reads the HTML mdBook wrote and checks every internal link: the page
//! or file it names exists inside the book, and its `#anchor` is an id on that page.
//! Checking the rendered pages (not the Markdown) checks what a reader clicks, with the
//! heading ids mdBook really generated. Links with a scheme (`https:`, `mailto:`) are
//! not followed: the check runs offline.
//!
//! [`check_markdown`] checks a Markdown file outside the book (the README): every link
//! is relative, stays inside the repository and names a file that exists, and an
//! anchor names one of that file's headings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, Result, read};

/// One broken link: where it is, what it says, and why it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub page: PathBuf,
    pub target: String,
    pub reason: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: link `{}`: {}",
            self.page.display(),
            self.target,
            self.reason
        )
    }
}

static HREF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\s(?:href|src)\s*=\s*"([^"]*)""#).expect("a valid pattern"));
static ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\s(?:id|name)\s*=\s*"([^"]*)""#).expect("a valid pattern"));
static SCHEME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*:").expect("a valid pattern"));

/// Every broken internal link of a built book (the folder mdBook wrote), and how many
/// internal links were checked.
pub fn check_book(book: &Path) -> Result<(Vec<BrokenLink>, usize)> {
    let book = book.canonicalize().map_err(|source| Error::Io {
        path: book.to_path_buf(),
        source,
    })?;
    let mut pages = Vec::new();
    walk(&book, &mut pages)?;
    pages.sort();
    if !pages
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "html"))
    {
        return Err(Error::Invalid(format!(
            "{}: no HTML page: build the book first (make docs)",
            book.display()
        )));
    }
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut texts = Vec::new();
    for page in pages
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
    {
        let text = read(page)?;
        let page_ids = ID
            .captures_iter(&text)
            .map(|c| decode(&c[1]))
            .collect::<BTreeSet<_>>();
        ids.insert(page.clone(), page_ids);
        texts.push((page.clone(), text));
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for (page, text) in &texts {
        let relative = page.strip_prefix(&book).unwrap_or(page).to_path_buf();
        for capture in HREF.captures_iter(text) {
            let target = decode(&capture[1]);
            if SCHEME.is_match(&target) || target.starts_with("//") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let path = path.split('?').next().unwrap_or("");
            let fail = |reason: String| BrokenLink {
                page: relative.clone(),
                target: target.clone(),
                reason,
            };
            let resolved = if path.is_empty() {
                page.clone()
            } else {
                // A path from the site's root (mdBook's 404 page links `/`) is
                // read from the book's root.
                let (base, path) = match path.strip_prefix('/') {
                    Some(rest) => (book.as_path(), rest),
                    None => (page.parent().unwrap_or(&book), path),
                };
                let Some(resolved) = resolve(base, &percent_decode(path)) else {
                    broken.push(fail("leaves the book".to_string()));
                    continue;
                };
                if !resolved.starts_with(&book) {
                    broken.push(fail("leaves the book".to_string()));
                    continue;
                }
                let resolved = if resolved.is_dir() {
                    resolved.join("index.html")
                } else {
                    resolved
                };
                if !resolved.is_file() {
                    broken.push(fail("no such page or file in the book".to_string()));
                    continue;
                }
                resolved
            };
            if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
                match ids.get(&resolved) {
                    Some(page_ids) if page_ids.contains(fragment) => {}
                    Some(_) => broken.push(fail(format!(
                        "no anchor `#{fragment}` on {}",
                        resolved.strip_prefix(&book).unwrap_or(&resolved).display()
                    ))),
                    None => broken.push(fail(format!(
                        "an anchor into {}, which is not an HTML page",
                        resolved.strip_prefix(&book).unwrap_or(&resolved).display()
                    ))),
                }
            }
        }
    }
    Ok((broken, checked))
}

static MD_LINK: LazyLock<Regex> = LazyLock::new(|| {
    // [text](target) and ![alt](target), the target up to a space or the closing paren.
    Regex::new(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[^)]*)?\)").expect("a valid pattern")
});
static MD_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$").expect("a valid pattern"));
static AUTOLINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<([A-Za-z][A-Za-z0-9+.-]*:[^>\s]+)>").expect("a valid pattern"));

/// Every broken link of a Markdown file outside the book: a link with a scheme (it
/// leaves the repository), one that climbs out of `root`, one to a missing file, or an
/// anchor that is not a heading of the Markdown file it names. Code blocks and code
/// spans are not links.
pub fn check_markdown(file: &Path, root: &Path) -> Result<(Vec<BrokenLink>, usize)> {
    let text = read(file)?;
    let root = root.canonicalize().map_err(|source| Error::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let prose = strip_code(&text);
    let mut targets: Vec<String> = MD_LINK
        .captures_iter(&prose)
        .chain(MD_REF.captures_iter(&prose))
        .map(|c| c[1].to_string())
        .collect();
    targets.extend(AUTOLINK.captures_iter(&prose).map(|c| c[1].to_string()));
    targets.extend(HREF.captures_iter(&prose).map(|c| decode(&c[1])));
    let name = file.file_name().map(PathBuf::from).unwrap_or_default();
    let mut broken = Vec::new();
    let dir = file.parent().unwrap_or(Path::new("."));
    for target in &targets {
        let fail = |reason: &str| BrokenLink {
            page: name.clone(),
            target: target.clone(),
            reason: reason.to_string(),
        };
        if SCHEME.is_match(target) || target.starts_with("//") {
            broken.push(fail("points outside the repository"));
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            Some(file.to_path_buf())
        } else {
            resolve(dir, &percent_decode(path))
        };
        let Some(resolved) = resolved.and_then(|r| r.canonicalize().ok()) else {
            broken.push(fail("no such file in the repository"));
            continue;
        };
        if !resolved.starts_with(&root) {
            broken.push(fail("points outside the repository"));
            continue;
        }
        if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
            let is_markdown = resolved.extension().is_some_and(|e| e == "md");
            let found = is_markdown
                && markdown_anchors(&read(&resolved)?).contains(&fragment.to_lowercase());
            if !found {
                broken.push(fail("no heading with that anchor"));
            }
        }
    }
    Ok((broken, targets.len()))
}

/// The anchors a Markdown file's headings get (GitHub's and mdBook's rule for plain
/// text: lower case, punctuation dropped, spaces to hyphens, repeats numbered).
pub fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in strip_fences(text).lines() {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if level == 0 || level > 6 || !trimmed[level..].starts_with(' ') {
            continue;
        }
        let slug: String = trimmed[level..]
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = counts.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    anchors
}

/// Markdown with its fenced code blocks blanked out (their lines are not headings).
fn strip_fences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Markdown with fenced code blocks and code spans blanked out (their text is not
/// links).
fn strip_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in strip_fences(text).lines() {
        let mut in_span = false;
        for c in line.chars() {
            if c == '`' {
                in_span = !in_span;
            } else if !in_span {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// `base/relative`, with `.` and `..` applied; `None` when `..` climbs above the
/// filesystem root.
fn resolve(base: &Path, relative: &str) -> Option<PathBuf> {
    let joined = if relative.starts_with('/') {
        PathBuf::from(relative)
    } else {
        base.join(relative)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// HTML attribute text with its character references resolved.
fn decode(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A URL path with its %XX escapes resolved (an invalid escape stays as it is).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("<html><body>{body}</body></html>")).unwrap();
    }

    #[test]
    fn links_and_anchors_inside_the_book_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let book = dir.path().join("book");
        page(
            &book,
            "index.html",
            r##"<h1 id="top">T</h1><a href="a/b.html#x">b</a> <a href="#top">t</a> <a href="https://example.com/x">e</a>"##,
        );
        page(
            &book,
            "a/b.html",
            r##"<h2 id="x">X</h2><a href="../index.html">i</a> <a href="../missing.html">m</a> <a href="../index.html#nope">n</a> <a href="../../outside.html">o</a> <img src="c%20d.svg">"##,
        );
        std::fs::write(book.join("a/c d.svg"), "<svg/>").unwrap();
        let (broken, checked) = check_book(&book).unwrap();
        assert_eq!(checked, 7);
        let found: Vec<(String, String)> = broken
            .iter()
            .map(|b| (b.target.clone(), b.reason.clone()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "../missing.html".into(),
                    "no such page or file in the book".into()
                ),
                (
                    "../index.html#nope".into(),
                    "no anchor `#nope` on index.html".into()
                ),
                ("../../outside.html".into(), "leaves the book".into()),
            ]
        );
        assert_eq!(broken[0].page, PathBuf::from("a/b.html"));
    }

    #[test]
    fn markdown_links_stay_in_the_repository_and_name_real_headings() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(
            root.join("docs/guide.md"),
            "# Guide\n\n## Exit codes\n\n```\n# not a heading\n```\n",
        )
        .unwrap();
        std::fs::write(
            root.join("README.md"),
            "See [the guide](docs/guide.md#exit-codes), [missing](docs/nope.md), \
[bad anchor](docs/guide.md#not-a-heading), [web](https://example.com), <https://example.org>, \
[up](../x.md) and `[code](not/a/link.md)`.\n",
        )
        .unwrap();
        let (broken, checked) = check_markdown(&root.join("README.md"), root).unwrap();
        assert_eq!(checked, 6);
        let reasons: Vec<(&str, &str)> = broken
            .iter()
            .map(|b| (b.target.as_str(), b.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("docs/nope.md", "no such file in the repository"),
                ("docs/guide.md#not-a-heading", "no heading with that anchor"),
                ("https://example.com", "points outside the repository"),
                ("../x.md", "no such file in the repository"),
                ("https://example.org", "points outside the repository"),
            ]
        );
    }

    #[test]
    fn anchors_follow_the_heading_rule() {
        let anchors = markdown_anchors("# Kiln\n## Exit codes\n## What's `kiln`?\n## Exit codes\n");
        let expected: BTreeSet<String> = ["kiln", "exit-codes", "whats-kiln", "exit-codes-1"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(anchors, expected);
    }
}
