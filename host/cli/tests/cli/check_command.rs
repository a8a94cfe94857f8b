//! `sluice check`: a bad config is refused with its file, line and column and the offending
//! text; `sluice completions` prints a script for each shell.

use super::support::sluice_cli;

fn check_text(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).unwrap();
    sluice_cli(["check", path.to_str().unwrap()])
}

#[test]
fn a_syntax_error_points_at_its_line_column_and_text() {
    let (ok, _, err) = check_text("[server]\nlisten = \"127.0.0.1:0\"\nmax_headers = 1O\n");
    assert!(!ok);
    assert!(err.contains("gw.toml:3:15:"), "{err}");
    assert!(err.contains("3 | max_headers = 1O\n  |               ^"), "{err}");
}

#[test]
fn a_validation_error_points_at_the_key_it_names() {
    let (ok, _, err) = check_text("[server]\nlisten = \"127.0.0.1:0\"\nmax_headers = 0\n");
    assert!(!ok);
    assert!(
        err.contains("gw.toml:3:1: server.max_headers must be 1..=1000"),
        "{err}"
    );
    assert!(err.contains("3 | max_headers = 0\n  | ^^^^^^^^^^^"), "{err}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef sluice"),
        ("fish", "complete -c sluice"),
    ] {
        let (ok, out, err) = sluice_cli(["completions", shell]);
        assert!(ok, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("migrate"), "{shell}: the subcommands are listed");
    }
    let (ok, _, err) = sluice_cli(["completions", "tcsh"]);
    assert!(!ok, "an unknown shell is refused");
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}
