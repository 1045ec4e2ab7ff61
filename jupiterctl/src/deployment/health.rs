//! Readiness and health over gRPC, as every backend whose roles jupiterctl
//! reaches asks it: `grpc.health.v1` on each role, never a sleep.

use super::model::{Health, RoleInstance};
use jupiter_common::serve::{wait_healthy, NotHealthy};
use std::time::Duration;

/// How long a role may take to answer its health check.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// Waits until every (role, URL) answers its health check.
pub async fn wait_all_healthy(checks: &[(String, String)]) -> Result<(), NotHealthy> {
    let results = futures::future::join_all(
        checks
            .iter()
            .map(|(what, url)| wait_healthy(what, url, HEALTH_TIMEOUT)),
    )
    .await;
    results.into_iter().collect()
}

/// Waits until every role answers its health check; a role is named as
/// its label says.
pub async fn wait_roles_healthy(roles: &[RoleInstance]) -> Result<(), NotHealthy> {
    let checks: Vec<(String, String)> = roles.iter().map(|r| (r.label(), r.url.clone())).collect();
    wait_all_healthy(&checks).await
}

/// Asks every role once, all at once.
pub async fn check_all(roles: &[RoleInstance]) -> Vec<Health> {
    futures::future::join_all(roles.iter().map(|r| async move {
        match wait_healthy(&r.label(), &r.url, Duration::ZERO).await {
            Ok(()) => Health::serving(),
            Err(e) => Health::down(e.last),
        }
    }))
    .await
}
