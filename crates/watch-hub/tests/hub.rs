//! Integration tests of the watch hub: numbering and order, shrink guard,
//! delivery to bridges and subscribers, retention, metrics, shutdown.

mod hub {
    pub(crate) mod support;

    mod delivery;
    mod lifecycle;
    mod metrics;
    mod module_dependencies;
    mod numbering;
    mod ordering;
    mod public_surface;
    mod shrink;
    mod switch_bridge_calls;
}
