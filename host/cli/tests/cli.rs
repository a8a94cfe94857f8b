//! Tests of the `sluice` command's plugin tools (`plugin check`, `plugin new`, `plugin wit`,
//! `plugin test`), run as a user runs them: the built binary on real plugins.

mod cli {
    mod plugin_check_command;
    mod plugin_new_command;
    mod plugin_test_command;
    mod support;
}
