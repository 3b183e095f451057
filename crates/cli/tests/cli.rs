//! Integration tests: the built `provisioning` binary against temporary
//! directories (CONTRACTS §2).

mod cli {
    mod support;

    mod demo;
    mod exit_codes;
    mod providers;
    mod validate;
    mod watch;
}
