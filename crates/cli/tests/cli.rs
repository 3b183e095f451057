//! Integration tests: the built `provisioning` binary against temporary
//! directories (CONTRACTS §2).

mod cli {
    mod admin_hostile;
    mod admin_server;
    mod http_client;
    mod support;

    mod demo;
    mod exit_codes;
    mod one_truth;
    mod providers;
    mod secrets_canary;
    mod secrets_etcd_auth;
    mod serve;
    mod serve_crash;
    mod sighup_policy;
    mod status_page;
    mod store_lock;
    mod validate;
    mod watch;
}
