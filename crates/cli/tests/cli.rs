//! Integration tests: the built `provisioning` binary against temporary
//! directories (CONTRACTS §2).

mod cli {
    mod admin_server;
    mod http_client;
    mod support;

    mod demo;
    mod exit_codes;
    mod providers;
    mod serve;
    mod status_page;
    mod validate;
    mod watch;
}
