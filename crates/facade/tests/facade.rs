//! Integration tests of the facade through its public API: which calls the
//! service makes into the store and the event sinks it is given, writes off
//! the driver task, and policy reloads.

mod facade {
    mod gated_store;

    #[cfg(feature = "admin")]
    mod admin_router;
    mod admin_writes;
    mod async_consumers;
    mod custom_kind;
    mod event_sink_delivery;
    #[cfg(feature = "consul")]
    mod injected_client;
    mod policy_reload;
    mod public_signatures;
    mod reload_after_writes;
    mod store_saves;
    mod stream_seed;
    mod tracing_spans;
}
