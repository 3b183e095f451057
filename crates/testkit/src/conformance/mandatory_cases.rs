//! The mandatory conformance cases ([`MANDATORY_CASES`](crate::MANDATORY_CASES)), in run order.

use super::*;

/// The first item of a fresh stream is a snapshot (of the current view) or a
/// fault.
pub async fn case_first_item_is_snapshot_or_fault<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let base = reset(driver).await?;
    let mut watch = Watch::open(provider, config);
    match watch.next().await? {
        ProviderEvent::Snapshot(s)
            if without_backend_incarnations(&s, &base).same_content(&base) =>
        {
            Ok(())
        }
        ProviderEvent::Snapshot(s) => Err(format!(
            "first snapshot {s:?} is not the current view {base:?}"
        )),
        ProviderEvent::Fault(_) => Ok(()),
        other => Err(format!("first item was {other:?}")),
    }
}

/// A member added at the backend appears (one `join`).
pub async fn case_join_reflected<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let n4 = member("n4", "127.0.0.4", 4004);
    let mut want = baseline();
    want.push(n4.clone());
    change_and_expect(
        provider,
        driver,
        config,
        MembershipChange::Upsert(n4),
        want,
        &["join"],
    )
    .await
}

/// A member removed at the backend disappears (one `leave`).
pub async fn case_leave_reflected<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let mut want = baseline();
    want.remove(1);
    change_and_expect(
        provider,
        driver,
        config,
        MembershipChange::Remove("n2".into()),
        want,
        &["leave"],
    )
    .await
}

/// A member whose port changes is a `leave` then a `join`.
pub async fn case_change_is_leave_then_join<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let mut want = baseline();
    want[0].port = 5001;
    let changed = want[0].clone();
    change_and_expect(
        provider,
        driver,
        config,
        MembershipChange::Upsert(changed),
        want,
        &["leave", "join"],
    )
    .await
}

/// Blocking a member puts it on the block list (one `blocked`).
pub async fn case_block_reflected<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let mut want = baseline();
    want[2].blocked = true;
    change_and_expect(
        provider,
        driver,
        config,
        MembershipChange::Block("n3".into()),
        want,
        &["blocked"],
    )
    .await
}

/// Unblocking takes it off again (one `unblocked`).
pub async fn case_unblock_reflected<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    apply(driver, MembershipChange::Block("n3".into())).await?;
    let mut blocked = baseline();
    blocked[2].blocked = true;
    let before = watch.until(&expected(&blocked)?).await?;
    apply(driver, MembershipChange::Unblock("n3".into())).await?;
    let after = watch.until(&expected(&baseline())?).await?;
    let kinds: Vec<_> = diff(&before, &after)
        .iter()
        .map(|e| e.kind().as_str())
        .collect();
    if kinds != ["unblocked"] {
        return Err(format!("diff was {kinds:?}, expected [\"unblocked\"]"));
    }
    Ok(())
}

/// With nothing changing, the provider heartbeats and sends no snapshot.
pub async fn case_unchanged_view_yields_heartbeat<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    let mut heartbeats = 0;
    let until = Instant::now() + config.heartbeat_interval * 3;
    while Instant::now() < until || heartbeats == 0 {
        match watch.next().await? {
            ProviderEvent::Heartbeat(_) => heartbeats += 1,
            ProviderEvent::Snapshot(s) => {
                return Err(format!("unchanged view produced a snapshot: {s:?}"));
            }
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok(())
}

/// Liveness arrives at least every heartbeat interval (plus slack).
pub async fn case_heartbeats_within_interval<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    let bound = config.heartbeat_interval + config.heartbeat_slack;
    let mut last = Instant::now();
    for _ in 0..4 {
        let event = watch.next().await?;
        if !event.is_liveness() {
            return Err(format!("unexpected {event:?}"));
        }
        let gap = last.elapsed();
        if gap > bound {
            return Err(format!("liveness gap {gap:?} above {bound:?}"));
        }
        last = Instant::now();
    }
    Ok(())
}

/// A retryable fault is reported in-stream as retryable, and after healing
/// the same stream delivers liveness again.
pub async fn case_retryable_fault_reported_then_recovers<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    inject(driver, InjectedFault::Retryable).await?;
    loop {
        match watch.next().await? {
            ProviderEvent::Fault(f) if f.is_resync() => {}
            ProviderEvent::Fault(f) if !f.permanent => break,
            ProviderEvent::Fault(f) => {
                return Err(format!("retryable fault reported as permanent: {f}"));
            }
            ProviderEvent::Terminated(t) => {
                return Err(format!("stream terminated on a retryable fault: {t:?}"));
            }
            _ => {}
        }
    }
    inject(driver, InjectedFault::Heal).await?;
    loop {
        match watch.next().await? {
            ProviderEvent::Snapshot(_) | ProviderEvent::Heartbeat(_) => return Ok(()),
            ProviderEvent::Fault(_) => {}
            ProviderEvent::Terminated(t) => {
                return Err(format!("stream terminated instead of recovering: {t:?}"));
            }
        }
    }
}

/// A permanent fault is reported as permanent (as a fault or an errored,
/// permanent termination).
pub async fn case_permanent_fault_reported_as_permanent<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    inject(driver, InjectedFault::Permanent).await?;
    let result = loop {
        match watch.next().await {
            Ok(ProviderEvent::Fault(f)) if f.permanent => break Ok(()),
            Ok(ProviderEvent::Fault(f)) if f.is_resync() => {}
            Ok(ProviderEvent::Fault(f)) => {
                break Err(format!("permanent fault reported as retryable: {f}"));
            }
            Ok(ProviderEvent::Terminated(t)) if t.is_permanent() => break Ok(()),
            Ok(ProviderEvent::Terminated(t)) => {
                break Err(format!("terminated as not permanent: {t:?}"));
            }
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    inject(driver, InjectedFault::Heal).await?;
    result
}

/// A terminated stream reports `Terminated` exactly once and then ends.
pub async fn case_termination_reported_once<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    inject(driver, InjectedFault::Terminate).await?;
    loop {
        match watch.next().await {
            Ok(ProviderEvent::Terminated(_)) => break,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    let after = timeout_at(Instant::now() + config.event_timeout, watch.stream.next()).await;
    let healed = inject(driver, InjectedFault::Heal).await;
    match after {
        Ok(None) => healed,
        Ok(Some(event)) => Err(format!("stream yielded {event:?} after Terminated")),
        Err(_) => Err("stream neither ended nor yielded after Terminated".into()),
    }
}

/// A 1,000-member view arrives whole, with the contract hash.
pub async fn case_thousand_member_snapshot<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, _) = start(provider, driver, config).await?;
    let specs: Vec<_> = (0..1000)
        .map(|i| {
            let mut m = member(
                &format!("node-{i:04}"),
                &format!("10.1.{}.{}", i / 250, i % 250 + 1),
                7000,
            );
            m.blocked = i % 100 == 0;
            m
        })
        .collect();
    apply(driver, MembershipChange::Reset(specs.clone())).await?;
    let want = expected(&specs)?;
    let got = watch.until(&want).await?;
    if got.len() != 1000 || got.blocked().len() != 10 {
        return Err(format!(
            "got {} members, {} blocked",
            got.len(),
            got.blocked().len()
        ));
    }
    Ok(())
}
