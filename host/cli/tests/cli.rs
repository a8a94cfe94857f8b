//! Tests of the `sluice` command (`check`, `completions`) and its plugin tools (`plugin check`,
//! `plugin new`, `plugin wit`, `plugin test`), run as a user runs them: the built binary on
//! real configs and plugins.

mod cli {
    mod check_command;
    mod plugin_check_command;
    mod plugin_new_command;
    mod plugin_test_command;
    mod support;
}
