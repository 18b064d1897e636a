//! `cargo xtask COMMAND`: Kiln's own automation (see the library's docs).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use xtask::{Error, Result, images, install, links, sbom, spec_reference, workspace_root};

const HELP: &str = "cargo xtask COMMAND

Commands:
  spec-reference [--check]     write docs/spec-reference.md from `kiln spec schema`
                               (--check: fail when the committed page differs)
  docs [--out DIR] [--mdbook PATH]
                               check the spec reference, build the manual with mdBook
                               into DIR (default .cache/book) and check its links
  linkcheck DIR                check the links of a built book in DIR and of README.md
  install [--profile P] [--root DIR] [--dry-run]
                               cargo install every kiln* binary of the workspace
                               (profile fast-release by default)
  binaries                     list the kiln* binaries and the packages that build them
  version                      print Kiln's version
  pin-images [--check] [--root DIR]
                               set every Kiln image reference in argo/ and infra/k8s/
                               to its digest in images.lock (--check: fail when one
                               differs or is a tag)
  sbom PACKAGE [--features F] [--workspace-build] --out FILE
                               the CycloneDX SBOM of the crates linked into
                               PACKAGE's binary (an image's SBOM), built with
                               `cargo build -p PACKAGE` or, with --workspace-build,
                               with the workspace's `cargo build --bins`
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln_line(&format!("error: {e}"));
            ExitCode::from(match e {
                Error::Invalid(_) => 2,
                _ => 1,
            })
        }
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_line(line: &str) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)]
fn println_line(line: &str) {
    println!("{line}");
}

/// The value after `flag`, if the flag is there.
fn option(args: &[String], flag: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| Error::Invalid(format!("{flag} needs a value"))),
        None => Ok(None),
    }
}

fn known(args: &[String], flags: &[&str], valued: &[&str]) -> Result<()> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if valued.contains(&arg) {
            i += 2;
        } else if flags.contains(&arg) {
            i += 1;
        } else {
            return Err(Error::Invalid(format!(
                "unexpected argument `{arg}`; see `cargo xtask help`"
            )));
        }
    }
    Ok(())
}

fn run(args: &[String]) -> Result<ExitCode> {
    let root = workspace_root();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "help" | "--help" | "-h" => {
            println_line(HELP.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        "spec-reference" => {
            known(rest, &["--check"], &[])?;
            spec_reference_task(&root, rest.iter().any(|a| a == "--check"))
        }
        "docs" => {
            known(rest, &[], &["--out", "--mdbook"])?;
            let out = option(rest, "--out")?
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".cache/book"));
            let mdbook = option(rest, "--mdbook")?.map(PathBuf::from);
            let code = spec_reference_task(&root, true)?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
            build_book(&root.join("docs"), &out, mdbook.as_deref())?;
            linkcheck(&out, &root)
        }
        "linkcheck" => {
            let [dir] = rest else {
                return Err(Error::Invalid("usage: cargo xtask linkcheck DIR".into()));
            };
            linkcheck(Path::new(dir), &root)
        }
        "install" => {
            known(rest, &["--dry-run"], &["--profile", "--root"])?;
            let profile = option(rest, "--profile")?.unwrap_or_else(|| "fast-release".into());
            let install_root = option(rest, "--root")?.map(PathBuf::from);
            let dry_run = rest.iter().any(|a| a == "--dry-run");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            for package in install::binary_packages(&install::metadata(&root)?) {
                let args = install::install_args(&package, &profile, install_root.as_deref());
                println_line(&format!("cargo {}", args.join(" ")));
                if dry_run {
                    continue;
                }
                let status =
                    Command::new(&cargo)
                        .args(&args)
                        .status()
                        .map_err(|e| Error::Command {
                            command: format!("cargo {}", args.join(" ")),
                            message: e.to_string(),
                        })?;
                if !status.success() {
                    return Err(Error::Command {
                        command: format!("cargo {}", args.join(" ")),
                        message: status.to_string(),
                    });
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        "binaries" => {
            known(rest, &[], &[])?;
            for package in install::binary_packages(&install::metadata(&root)?) {
                for binary in &package.binaries {
                    println_line(&format!("{binary}\t{}", package.name));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        "pin-images" => {
            known(rest, &["--check"], &["--root"])?;
            let check = rest.iter().any(|a| a == "--check");
            let root = option(rest, "--root")?.map_or(root, PathBuf::from);
            let report = images::run(&root, check)?;
            if check {
                if !report.is_empty() {
                    for line in &report {
                        eprintln_line(line);
                    }
                    return Err(Error::Invalid(format!(
                        "{} image references disagree with {}",
                        report.len(),
                        images::LOCK
                    )));
                }
                let exceptions: Vec<String> = images::unpinned().collect();
                eprintln_line(&format!(
                    "every Kiln image is pinned to images.lock's digest (by tag until published: {})",
                    exceptions.join(", ")
                ));
            } else {
                for file in &report {
                    eprintln_line(&format!("pinned {file}"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        "sbom" => {
            let (package, flags) = rest.split_first().ok_or_else(|| {
                Error::Invalid("sbom needs a package; see `cargo xtask help`".into())
            })?;
            known(flags, &["--workspace-build"], &["--features", "--out"])?;
            let out = option(flags, "--out")?
                .ok_or_else(|| Error::Invalid("sbom needs --out FILE".into()))?;
            let features = option(flags, "--features")?;
            let build = if flags.iter().any(|a| a == "--workspace-build") {
                sbom::Build::Workspace
            } else {
                sbom::Build::Package
            };
            let count = sbom::write(&root, package, features.as_deref(), build, Path::new(&out))?;
            eprintln_line(&format!("{out}: {package} and the {count} crates it links"));
            Ok(ExitCode::SUCCESS)
        }
        "version" => {
            known(rest, &[], &[])?;
            let metadata = install::metadata(&root)?;
            let version = metadata["packages"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "kiln-cli")
                .and_then(|p| p["version"].as_str())
                .ok_or_else(|| Error::Invalid("no kiln-cli package in the workspace".into()))?;
            println_line(version);
            Ok(ExitCode::SUCCESS)
        }
        other => Err(Error::Invalid(format!(
            "unknown command `{other}`; see `cargo xtask help`"
        ))),
    }
}

fn spec_reference_task(root: &Path, check: bool) -> Result<ExitCode> {
    let page = root.join(spec_reference::PAGE);
    let generated = spec_reference::render(&spec_reference::schema())?;
    if !check {
        std::fs::write(&page, &generated).map_err(|source| Error::Io {
            path: page.clone(),
            source,
        })?;
        println_line(&format!("wrote {}", spec_reference::PAGE));
        return Ok(ExitCode::SUCCESS);
    }
    let committed = xtask::read(&page)?;
    match spec_reference::diff(&committed, &generated) {
        None => Ok(ExitCode::SUCCESS),
        Some(difference) => {
            eprintln_line(&format!(
                "error: {} is stale ({difference}): run `cargo xtask spec-reference` and commit it",
                spec_reference::PAGE
            ));
            Ok(ExitCode::from(1))
        }
    }
}

/// `mdbook build SRC --dest-dir OUT`, with `.cache/tools/bin/mdbook` (what `make
/// test-deps` installs) unless told otherwise.
fn build_book(src: &Path, out: &Path, mdbook: Option<&Path>) -> Result<()> {
    let installed = workspace_root().join(".cache/tools/bin/mdbook");
    let mdbook = match mdbook {
        Some(path) => path.to_path_buf(),
        None if installed.exists() => installed,
        None => PathBuf::from("mdbook"),
    };
    let command = format!("{} build {}", mdbook.display(), src.display());
    let output = Command::new(&mdbook)
        .arg("build")
        .arg(src)
        .arg("--dest-dir")
        .arg(out)
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            message: format!("{e} (install it with `make docs-deps`)"),
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn linkcheck(book: &Path, root: &Path) -> Result<ExitCode> {
    let (mut broken, checked) = links::check_book(book)?;
    let (readme, readme_checked) = links::check_markdown(&root.join("README.md"), root)?;
    broken.extend(readme);
    for link in &broken {
        eprintln_line(&format!("broken link: {link}"));
    }
    if broken.is_empty() {
        println_line(&format!(
            "links: {checked} in the book and {readme_checked} in README.md, none broken"
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln_line(&format!("error: {} broken link(s)", broken.len()));
        Ok(ExitCode::from(1))
    }
}
