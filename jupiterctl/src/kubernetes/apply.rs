//! Talking to the API server: server-side apply of a rendered deployment,
//! waiting until its workloads are ready, and deleting it again by label.

use super::manifests::Object;
use super::names::{self, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER};
use super::KubeError;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How `up` waits for the workloads after applying them.
#[derive(Debug, Clone)]
pub struct Wait {
    /// Give up (with the list of what is not ready) after this long.
    pub timeout: Duration,
    /// How often the status is read.
    pub interval: Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
        }
    }
}

/// Applies every object, then (with `wait`) waits until every workload
/// (Deployment, StatefulSet, DaemonSet) is ready. Applying is idempotent: a second `up` of the same
/// objects changes nothing.
pub async fn up(client: &Client, objects: &[Object], wait: Option<&Wait>) -> Result<(), KubeError> {
    for object in objects {
        apply(client, object).await?;
    }
    match wait {
        Some(wait) => wait_ready(client, objects, wait).await,
        None => Ok(()),
    }
}

/// Server-side apply (field manager `jupiterctl`, forced: jupiterctl owns
/// these objects, and a field someone changed by hand goes back to what was
/// rendered).
pub async fn apply(client: &Client, object: &Object) -> Result<(), KubeError> {
    let params = PatchParams::apply(MANAGER).force();
    let name = object.name();
    let namespace = object.metadata().namespace.as_deref().unwrap_or_default();
    let action = format!("apply {}", object.display());
    let result = match object {
        Object::Namespace(o) => Api::<Namespace>::all(client.clone())
            .patch(name, &params, &Patch::Apply(o))
            .await
            .map(drop),
        Object::ConfigMap(o) => patch(client, namespace, name, &params, o).await,
        Object::Secret(o) => patch(client, namespace, name, &params, o).await,
        Object::Service(o) => patch(client, namespace, name, &params, o).await,
        Object::Deployment(o) => patch(client, namespace, name, &params, o).await,
        Object::StatefulSet(o) => patch(client, namespace, name, &params, o).await,
        Object::DaemonSet(o) => patch(client, namespace, name, &params, o).await,
    };
    result.map_err(KubeError::api(action))
}

async fn patch<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    params: &PatchParams,
    object: &K,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(name, params, &Patch::Apply(object))
        .await
        .map(drop)
}

/// Polls until every workload among `objects` is ready,
/// printing on stderr what is still not ready whenever that changes.
pub async fn wait_ready(client: &Client, objects: &[Object], wait: &Wait) -> Result<(), KubeError> {
    let start = Instant::now();
    let mut shown = BTreeSet::new();
    loop {
        let mut pending = BTreeSet::new();
        for object in objects {
            if !is_ready(client, object).await? {
                pending.insert(object.display());
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= wait.timeout {
            return Err(KubeError::NotReady {
                secs: wait.timeout.as_secs(),
                pending: pending.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        if pending != shown {
            eprintln!(
                "waiting for {} ({} s): {}",
                pending.len(),
                start.elapsed().as_secs(),
                pending.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            shown = pending;
        }
        tokio::time::sleep(wait.interval).await;
    }
}

/// Ready: the controller has seen the current spec and every wanted pod is
/// updated and passes its gRPC readiness probe. Objects without pods are
/// ready once applied.
async fn is_ready(client: &Client, object: &Object) -> Result<bool, KubeError> {
    let namespace = object.metadata().namespace.as_deref().unwrap_or_default();
    let action = || format!("read the status of {}", object.display());
    match object {
        Object::Deployment(_) => {
            let d = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_status(object.name())
                .await
                .map_err(KubeError::api(action()))?;
            let wanted = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let seen = observed(
                d.metadata.generation,
                d.status.as_ref().and_then(|s| s.observed_generation),
            );
            let status = d.status.unwrap_or_default();
            Ok(seen
                && status.updated_replicas.unwrap_or(0) >= wanted
                && status.ready_replicas.unwrap_or(0) >= wanted)
        }
        Object::StatefulSet(_) => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_status(object.name())
                .await
                .map_err(KubeError::api(action()))?;
            let wanted = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let seen = observed(
                s.metadata.generation,
                s.status.as_ref().and_then(|s| s.observed_generation),
            );
            let status = s.status.unwrap_or_default();
            // A pod waiting for its claim to bind is Pending, not ready: the
            // wait names the StatefulSet until the storage is there.
            Ok(seen
                && status.updated_replicas.unwrap_or(0) >= wanted
                && status.ready_replicas.unwrap_or(0) >= wanted)
        }
        Object::DaemonSet(_) => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .get_status(object.name())
                .await
                .map_err(KubeError::api(action()))?;
            let seen = observed(
                d.metadata.generation,
                d.status.as_ref().and_then(|s| s.observed_generation),
            );
            let status = d.status.unwrap_or_default();
            let wanted = status.desired_number_scheduled;
            Ok(seen
                && status.updated_number_scheduled.unwrap_or(0) >= wanted
                && status.number_ready >= wanted)
        }
        Object::Namespace(_) | Object::ConfigMap(_) | Object::Secret(_) | Object::Service(_) => Ok(true),
    }
}

/// Whether the controller has acted on the latest spec (a status from before
/// the apply would otherwise count as ready).
fn observed(generation: Option<i64>, observed: Option<i64>) -> bool {
    match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Deletes everything `up` made for `deployment`: the labelled objects of
/// each kind in its namespace, then the namespace, if jupiterctl made it.
/// Deleting what is already gone is not an error.
pub async fn down(client: &Client, deployment: &str) -> Result<(), KubeError> {
    names::check_deployment(deployment)?;
    let ns = names::namespace(deployment);
    let selector = names::selector(deployment);
    delete_labelled::<Deployment>(client, &ns, &selector).await?;
    delete_labelled::<StatefulSet>(client, &ns, &selector).await?;
    delete_labelled::<DaemonSet>(client, &ns, &selector).await?;
    // The StatefulSets' retention policy deletes their claims with them;
    // this also covers a cluster that ignores the policy (before 1.27).
    delete_labelled::<PersistentVolumeClaim>(client, &ns, &selector).await?;
    delete_labelled::<Service>(client, &ns, &selector).await?;
    delete_labelled::<ConfigMap>(client, &ns, &selector).await?;
    // The certificates of `up --tls` (a Secret someone else made for
    // `render --tls-secret` carries no jupiterctl labels and stays).
    delete_labelled::<Secret>(client, &ns, &selector).await?;

    let namespaces = Api::<Namespace>::all(client.clone());
    let Some(found) = namespaces
        .get_opt(&ns)
        .await
        .map_err(KubeError::api(format!("read namespace {ns}")))?
    else {
        return Ok(());
    };
    // Deleting a namespace deletes all in it: only one jupiterctl made for
    // this deployment, and (uid precondition) the very one just checked.
    let labels = found.metadata.labels.clone().unwrap_or_default();
    let ours = labels.get(LABEL_INSTANCE).map(String::as_str) == Some(deployment)
        && labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGER);
    if !ours {
        return Err(KubeError::ForeignNamespace {
            namespace: ns,
            deployment: deployment.to_string(),
        });
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: found.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match namespaces.delete(&ns, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(KubeError::api(format!("delete namespace {ns}"))(e)),
    }
}

/// Deletes the StatefulSets (and Deployments) that run `role`, by label;
/// their pods go with them.
pub async fn delete_workloads(
    client: &Client,
    deployment: &str,
    role: &crate::deployment::RoleInstance,
) -> Result<(), KubeError> {
    let ns = names::namespace(deployment);
    let (labels, _) = super::pods::selectors(deployment, role);
    delete_labelled::<StatefulSet>(client, &ns, &labels).await?;
    delete_labelled::<Deployment>(client, &ns, &labels).await
}

async fn delete_labelled<K>(client: &Client, ns: &str, selector: &str) -> Result<(), KubeError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    // Background: the ReplicaSets and pods go with their owners.
    let result = api
        .delete_collection(
            &DeleteParams::background(),
            &ListParams::default().labels(selector),
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(KubeError::api(format!("delete {} in {ns}", K::plural(&())))(e)),
    }
}
