//! Integration tests: the built `provisioning` binary against temporary
//! directories (CONTRACTS §2).

mod cli {
    mod admin_hostile;
    mod admin_limits;
    mod admin_origin;
    mod admin_server;
    mod admin_token_reload;
    mod http_client;
    mod support;

    mod bounded_reads;
    mod demo;
    mod exit_codes;
    mod failback;
    mod metrics_scrape;
    mod one_truth;
    mod providers;
    mod secret_refs;
    mod secrets_canary;
    mod secrets_etcd_auth;
    mod serve;
    mod serve_crash;
    mod sighup_after_writes;
    mod sighup_policy;
    mod status_page;
    mod store_lock;
    mod validate;
    mod watch;
    mod watch_lifecycle;
}
