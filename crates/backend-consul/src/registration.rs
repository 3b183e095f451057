//! Self-registration: this node as an instance of the watched service,
//! kept alive by a TTL check that is passed every third of its TTL.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ConsulRegistration;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::Error;
use crate::provider::Shared;

/// Delay after a failed agent call, doubled up to the cap.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_CAP: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Registration {
    spec: Arc<ConsulRegistration>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Registration {
    pub(crate) fn new(spec: ConsulRegistration) -> Self {
        Self {
            spec: Arc::new(spec),
            task: Mutex::new(None),
        }
    }

    /// Starts the keep-alive task unless it runs (needs a tokio runtime;
    /// without one it is started by the next call that has one).
    pub(crate) fn start(&self, shared: Arc<Shared>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let spec = self.spec.clone();
        *task = Some(runtime.spawn(keep_alive(shared, spec)));
    }

    pub(crate) fn abort(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// Stops passing the check and deregisters the instance.
    pub(crate) async fn stop(&self, client: &Client) -> Result<(), Error> {
        self.abort();
        client.deregister(&self.spec).await
    }
}

async fn keep_alive(shared: Arc<Shared>, spec: Arc<ConsulRegistration>) {
    let client = &shared.client;
    let every = (spec.ttl / 3).max(Duration::from_millis(100));
    let mut registered = false;
    let mut delay = RETRY_INITIAL;
    loop {
        let step = if registered {
            client.pass(&spec).await
        } else {
            match client.register(&spec).await {
                Ok(()) => client.pass(&spec).await,
                Err(e) => Err(e),
            }
        };
        match step {
            Ok(()) => {
                registered = true;
                delay = RETRY_INITIAL;
                tokio::time::sleep(every).await;
            }
            Err(e) => {
                // An agent that restarted has forgotten the instance:
                // register it again on the next attempt.
                tracing::warn!(provider = %client.config().provider, error = %e, "consul self-registration failed");
                registered = false;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_CAP);
            }
        }
    }
}
