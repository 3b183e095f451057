//! [`SessionEvents`]: wakes the adapter when a session opens, authenticates
//! or closes, so a blocked peer's reconnect is closed at once and a lost
//! session is retried without waiting for the tick.

use ractor_cluster::NodeEventSubscription;
use ractor_cluster::node::NodeServerSessionInformation;
use tokio::sync::mpsc;

pub(crate) struct SessionEvents(pub(crate) mpsc::UnboundedSender<()>);

impl NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, _: NodeServerSessionInformation) {
        // The peer's name is not known yet: nothing to decide.
    }

    fn node_session_disconnected(&self, _: NodeServerSessionInformation) {
        let _ = self.0.send(());
    }

    fn node_session_authenticated(&self, _: NodeServerSessionInformation) {
        let _ = self.0.send(());
    }

    fn node_session_ready(&self, _: NodeServerSessionInformation) {
        let _ = self.0.send(());
    }
}
