//! Self-registration: this node's member value under `prefix + id`,
//! attached to a lease kept alive; on lease loss a new lease is granted and
//! the value put again; a key deleted or overwritten while its lease lives is
//! put back at the next renewal; a stalled or refusing endpoint makes the
//! registration carry the same lease to the next endpoint; on shutdown the
//! lease is revoked — after `drain`, during which the value says
//! `"state": "draining"`, when the settings ask for a graceful leave.

use std::sync::Arc;
use std::time::Duration;

use crate::EtcdRegistration;
use provisioning_provider_api::{MemberSpec, MemberState, NodeId, StreamOptions};
use provisioning_stream_kit::RetrySchedule;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::Session;
use crate::error::ClientError;
use crate::provider::Inner;

/// Where the self-registration stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationStatus {
    /// Whether the member value is in place under a live lease.
    pub registered: bool,
    /// The current lease.
    pub lease_id: Option<i64>,
    /// Leases granted so far (1 after the first registration; each lease
    /// loss adds one).
    pub grants: u64,
    /// Puts of the member value so far (one per lease, plus one each time
    /// the key was found deleted or overwritten while its lease lived).
    pub puts: u64,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// A lease this node holds, as far as the server last confirmed it.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: i64,
    /// When the server's last word on the lease (a grant or a renewal
    /// answer, counted from when it was asked) runs out.
    confirmed_until: Instant,
}

impl Held {
    fn alive(&self) -> bool {
        Instant::now() < self.confirmed_until
    }
}

/// Why one session's hold on the lease ended.
enum LeaseEnd {
    /// The provider stops: revoke and exit.
    Stop,
    /// The server says the lease is gone (expired or revoked): re-grant now.
    Lost,
    /// Talking to etcd failed (refused, closed, or an answer later than a
    /// renewal interval). The lease, if any, is resumed through the next
    /// endpoint while the server's last confirmation lasts: a stalled
    /// endpoint costs a reconnect, not the registration.
    Failed(ClientError, Option<Held>),
}

pub(crate) async fn run(inner: Arc<Inner>, register: EtcdRegistration) {
    let mut stop = inner.stop.subscribe();
    let key = inner.config.member_key(&register.id);
    let values = serde_json::to_vec(&member_of(&register, MemberState::Serving)).and_then(|v| {
        Ok(Values {
            serving: v,
            draining: serde_json::to_vec(&member_of(&register, MemberState::Draining))?,
        })
    });
    let values = match values {
        Ok(values) => values,
        Err(e) => {
            inner.set_registration_status(|s| s.last_error = Some(e.to_string()));
            return;
        }
    };
    // Retry spacing as the streams use it: at once, 100 ms, then backoff
    // (jitter from a random seed: registration has no service seed).
    let mut schedule = RetrySchedule::new(&StreamOptions::new(register.ttl));
    let op_timeout = (register.ttl / 3).max(Duration::from_millis(500));
    let endpoints = u32::try_from(inner.config.connect_attempts()).unwrap_or(u32::MAX);
    let mut held: Option<Held> = None;
    while !*stop.borrow() {
        let endpoint = inner.current_endpoint();
        let resume = held.take().filter(Held::alive);
        let end = match Session::connect(&inner.config, &inner.secrets, &endpoint, op_timeout).await
        {
            Ok(session) => {
                hold_lease(&inner, session, &register, &key, &values, resume, &mut stop).await
            }
            Err(e) => LeaseEnd::Failed(e, resume),
        };
        match end {
            LeaseEnd::Stop => break,
            LeaseEnd::Lost => {
                inner.set_registration_status(|s| s.registered = false);
                schedule.reset();
                tracing::info!(provider = %inner.config.id, key, "registration lease lost; granting a new one");
            }
            LeaseEnd::Failed(e, keep) => {
                held = keep;
                if held.is_none() {
                    inner.set_registration_status(|s| s.registered = false);
                }
                if e.is_connection_level() {
                    inner.rotate_endpoint();
                }
                tracing::debug!(provider = %inner.config.id, error = %e, "registration attempt failed");
                inner.set_registration_status(|s| s.last_error = Some(e.to_string()));
                let spaced = schedule.on_failure(false);
                // A lease that still lives is worth one immediate try on
                // each endpoint before the usual spacing.
                let delay = if held.is_some_and(|h| h.alive()) && schedule.failures() <= endpoints {
                    Duration::ZERO
                } else {
                    spaced
                };
                tokio::select! {
                    _ = stop.changed() => {}
                    () = sleep_until(Instant::now() + delay) => {}
                }
            }
        }
    }
}

/// The member value as it is while serving and while draining.
struct Values {
    serving: Vec<u8>,
    draining: Vec<u8>,
}

/// Holds the lease through one session: grants one and puts the value
/// (`resume` is `None`), or takes over `resume` and renews it at once; then
/// renews it every third of its TTL, putting the value back whenever the key
/// is found deleted or overwritten, until the lease is lost, a request
/// fails, or the provider stops (then drains if asked, and revokes it).
async fn hold_lease(
    inner: &Inner,
    mut session: Session,
    register: &EtcdRegistration,
    key: &str,
    values: &Values,
    resume: Option<Held>,
    stop: &mut watch::Receiver<bool>,
) -> LeaseEnd {
    let value = values.serving.as_slice();
    let (lease, fresh, mut confirmed_until) = match resume {
        Some(held) => (held.id, false, held.confirmed_until),
        None => {
            let asked = Instant::now();
            let (lease, granted) = match session.grant(register.ttl).await {
                Ok(grant) => grant,
                Err(e) => return LeaseEnd::Failed(e, None),
            };
            if let Err(e) = session.put_with_lease(key, value.to_vec(), lease).await {
                revoke(&mut session, lease).await;
                return LeaseEnd::Failed(e, None);
            }
            // One update: whoever sees the new grant sees its lease too.
            inner.set_registration_status(|s| {
                s.registered = true;
                s.lease_id = Some(lease);
                s.grants += 1;
                s.puts += 1;
                s.last_error = None;
            });
            (lease, true, asked + granted)
        }
    };
    let held = |confirmed_until| {
        Some(Held {
            id: lease,
            confirmed_until,
        })
    };
    let (mut keeper, mut responses) = match session.keep_alive(lease).await {
        Ok(pair) => pair,
        Err(e) => return LeaseEnd::Failed(e, held(confirmed_until)),
    };
    // Renew three times per TTL: one lost renewal never loses the lease. A
    // resumed lease is renewed at once: the server's word on it is due.
    let every = register.ttl / 3;
    let mut next = if fresh {
        Instant::now() + every
    } else {
        Instant::now()
    };
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                if !register.drain.is_zero() {
                    drain(&mut session, &mut keeper, &mut responses, lease, key, values, register.drain, every).await;
                }
                revoke(&mut session, lease).await;
                inner.set_registration_status(|s| {
                    s.registered = false;
                    s.lease_id = None;
                });
                return LeaseEnd::Stop;
            }
            () = sleep_until(next) => {}
        }
        next = Instant::now() + every;
        let asked = Instant::now();
        if let Err(e) = keeper.keep_alive().await {
            return LeaseEnd::Failed(session.error("lease keep-alive", e), held(confirmed_until));
        }
        let ttl = match timeout(every, responses.message()).await {
            Ok(Ok(Some(response))) => response.ttl(),
            Ok(Ok(None)) => {
                let closed = etcd_client::Error::LeaseKeepAliveError("stream closed".into());
                return LeaseEnd::Failed(
                    session.error("lease keep-alive", closed),
                    held(confirmed_until),
                );
            }
            Ok(Err(e)) => {
                return LeaseEnd::Failed(
                    session.error("lease keep-alive", e),
                    held(confirmed_until),
                );
            }
            Err(_) => {
                let late = ClientError::Timeout {
                    op: "lease keep-alive",
                    endpoint: session.endpoint().to_owned(),
                    timeout_ms: every.as_millis(),
                };
                return LeaseEnd::Failed(late, held(confirmed_until));
            }
        };
        let Some(ttl) = u64::try_from(ttl).ok().filter(|ttl| *ttl > 0) else {
            return LeaseEnd::Lost;
        };
        confirmed_until = asked + Duration::from_secs(ttl);
        // The lease lives, but the key may have been deleted or overwritten
        // by someone else: put it back under the lease.
        match session.lease_of(key).await {
            Ok(Some(attached)) if attached == lease => {}
            Ok(_) => {
                tracing::info!(key, "registered key gone or replaced; putting it back");
                if let Err(e) = session.put_with_lease(key, value.to_vec(), lease).await {
                    return LeaseEnd::Failed(e, held(confirmed_until));
                }
                inner.set_registration_status(|s| s.puts += 1);
            }
            Err(e) => return LeaseEnd::Failed(e, held(confirmed_until)),
        }
        inner.set_registration_status(|s| {
            s.registered = true;
            s.lease_id = Some(lease);
            s.last_error = None;
        });
    }
}

/// The graceful leave: the value is rewritten as draining under the same
/// lease (the key is not deleted, so its `create_revision`, the member's
/// incarnation, stays) and the lease kept alive for `drain`. Best effort: a
/// failing request only shortens the announcement, the revoke follows
/// anyway.
#[allow(
    clippy::too_many_arguments,
    reason = "the pieces of one held lease, borrowed from hold_lease"
)]
async fn drain(
    session: &mut Session,
    keeper: &mut etcd_client::LeaseKeeper,
    responses: &mut etcd_client::LeaseKeepAliveStream,
    lease: i64,
    key: &str,
    values: &Values,
    drain: Duration,
    every: Duration,
) {
    let until = Instant::now() + drain;
    if let Err(e) = session
        .put_with_lease(key, values.draining.clone(), lease)
        .await
    {
        tracing::warn!(key, error = %e, "could not announce draining; leaving at once");
        return;
    }
    tracing::info!(key, drain = ?drain, "announced draining; leaving after the drain period");
    loop {
        sleep_until((Instant::now() + every).min(until)).await;
        if Instant::now() >= until {
            return;
        }
        if keeper.keep_alive().await.is_err() {
            // The lease lives on for its TTL; the revoke ends it.
            continue;
        }
        let _ = timeout(every, responses.message()).await;
    }
}

/// The member value written under the key (CONTRACTS §1 schema); `state`
/// appears in it only when draining.
fn member_of(register: &EtcdRegistration, state: MemberState) -> MemberSpec {
    MemberSpec {
        id: NodeId::from(register.id.as_str()),
        host: register.host.clone(),
        port: register.port,
        labels: register.labels.clone(),
        blocked: false,
        incarnation: None,
        state,
    }
}

async fn revoke(session: &mut Session, lease: i64) {
    if let Err(e) = session.revoke(lease).await {
        tracing::debug!(error = %e, lease, "lease revoke failed; it expires after its TTL");
    }
}
