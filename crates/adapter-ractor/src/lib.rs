#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod mesh_adapter;
mod mesh_config;
mod mesh_error;
mod mesh_plan;
mod mesh_stats;
mod ractor_peer;
mod session_events;

pub use mesh_adapter::{RactorMesh, start_node_server};
pub use mesh_config::MeshConfig;
pub use mesh_error::MeshError;
pub use mesh_plan::{DisconnectReason, MeshAction, MeshPlan, SessionView};
pub use mesh_stats::MeshStats;
pub use ractor_peer::{COOKIE_LABEL, LabelError, NODE_NAME_LABEL, PORT_LABEL, RactorPeer};
