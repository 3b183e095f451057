//! Integration tests of the facade through its public API.

mod facade {
    mod gated_store;

    mod admin_writes;
    mod policy_reload;
}
