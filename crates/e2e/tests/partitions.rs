//! Partitions between hosts of their own: etcd members and the service in
//! separate network namespaces ([`provisioning_testkit::net_hosts`]), cut
//! by taking links down (no RST, no FIN). Needs root and iproute2; a run
//! without them fails with the reason. `cargo xtask chaos --partitions`
//! runs this target alone.

mod partitions {
    mod blackhole;
    mod minority;
    mod service_nodes;
    mod support;
    mod sweeper;
}
