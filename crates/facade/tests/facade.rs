//! Integration tests of the facade through its public API: which calls the
//! service makes into the store and the event sinks it is given.

mod facade {
    mod event_sink_delivery;
    mod store_saves;
}
