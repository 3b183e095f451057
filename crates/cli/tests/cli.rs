//! Integration tests: the built `provisioning` binary against temporary
//! directories (CONTRACTS §2).

mod cli {
    mod admin_hostile;
    mod admin_server;
    mod http_client;
    mod support;

    mod bounded_reads;
    mod demo;
    mod exit_codes;
    mod providers;
    mod secret_refs;
    mod secrets_canary;
    mod secrets_etcd_auth;
    mod serve;
    mod serve_crash;
    mod status_page;
    mod validate;
    mod watch;
}
