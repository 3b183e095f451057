//! Integration tests of the ractor adapter: three OS processes on loopback,
//! each a `NodeServer` plus the service over a real etcd and a static list.

mod provisioning_ractor {
    mod in_process_mesh;
    mod node_process;

    mod three_processes;
}
