//! The optional conformance cases ([`OPTIONAL_CASES`](crate::OPTIONAL_CASES)), each
//! gated by a [`Capabilities`](crate::Capabilities) flag.

use super::*;

/// Labels travel unchanged (capability `labels`).
pub async fn case_labels_reflected<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let mut want = baseline();
    want[1].labels.insert("zone".into(), "eu-1".into());
    want[1].labels.insert("role".into(), "placement".into());
    let changed = want[1].clone();
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

/// The block list may name an id that is not a member (capability
/// `block_non_members`).
pub async fn case_block_non_member<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, before) = start(provider, driver, config).await?;
    apply(driver, MembershipChange::Block("ghost".into())).await?;
    let mut members = before.members().to_vec();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    let want = ProviderSnapshot::new(members, vec!["ghost".into()]).map_err(|e| e.to_string())?;
    watch.until(&want).await.map(|_| ())
}

/// `initial_snapshot()` returns the last view a stream delivered
/// (capability `initial_snapshot`).
pub async fn case_initial_snapshot_is_last_seen<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (_watch, seen) = start(provider, driver, config).await?;
    match provider.initial_snapshot() {
        Some(s) if s.same_content(&seen) => Ok(()),
        other => Err(format!(
            "initial_snapshot() = {other:?}, last seen {seen:?}"
        )),
    }
}

/// The diff's kinds between two views, as contract strings.
fn kinds(before: &ProviderSnapshot, after: &ProviderSnapshot) -> Vec<&'static str> {
    diff(before, after)
        .iter()
        .map(|e| e.kind().as_str())
        .collect()
}

/// A member restarting under the same id comes back with a new incarnation,
/// so the change is a `leave` then a `join` even though nothing else about
/// it changed (CONTRACTS §1 "Member lifecycle").
pub async fn case_restart_yields_new_incarnation<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, before) = start(provider, driver, config).await?;
    let old = before.member("n1").and_then(|m| m.incarnation.clone());
    apply(driver, MembershipChange::Restart("n1".into())).await?;
    let after = watch
        .until_also(&expected(&baseline())?, |s| {
            s.member("n1")
                .is_some_and(|m| m.incarnation.is_some() && m.incarnation != old)
        })
        .await?;
    let kinds = kinds(&before, &after);
    if kinds != ["leave", "join"] {
        return Err(format!(
            "diff was {kinds:?}, expected [\"leave\", \"join\"] (incarnation {old:?} -> {:?})",
            after.member("n1").and_then(|m| m.incarnation.clone())
        ));
    }
    Ok(())
}

/// A member can be reported draining (one `draining`, carrying the member)
/// while it is still a member, and then leaves (one `leave`).
pub async fn case_draining_before_leave<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> CaseResult {
    let (mut watch, before) = start(provider, driver, config).await?;
    let mut draining = baseline();
    draining[1].state = MemberState::Draining;
    apply(driver, MembershipChange::Upsert(draining[1].clone())).await?;
    let mid = watch.until(&expected(&draining)?).await?;
    let first = kinds(&before, &mid);
    if first != ["draining"] {
        return Err(format!("diff was {first:?}, expected [\"draining\"]"));
    }
    apply(driver, MembershipChange::Remove("n2".into())).await?;
    let mut gone = baseline();
    gone.remove(1);
    let after = watch.until(&expected(&gone)?).await?;
    let second = kinds(&mid, &after);
    if second != ["leave"] {
        return Err(format!("diff was {second:?}, expected [\"leave\"]"));
    }
    Ok(())
}
