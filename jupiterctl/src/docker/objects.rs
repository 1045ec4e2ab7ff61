//! A deployment's objects in the engine, found by their label: whether any
//! is left, and removing them all (and nothing else).

use super::engine::{Engine, EngineError, Kind};
use super::spec::DEPLOYMENT_LABEL;

/// What `down` removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Folders of the nodes' shared cgroups.
    pub cgroups: usize,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} containers, {} networks, {} volumes",
            self.containers, self.networks, self.volumes
        )?;
        if self.cgroups > 0 {
            write!(f, ", {} node cgroups", self.cgroups)?;
        }
        Ok(())
    }
}

/// Removes every container, network and volume labelled with deployment
/// `id`, containers first (a network or volume in use cannot go).
pub async fn remove(engine: &Engine, id: &str) -> Result<Removed, EngineError> {
    let label = format!("{DEPLOYMENT_LABEL}={id}");
    let mut removed = Removed::default();
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        let ids = engine.ids_with_label(kind, &label).await?;
        if ids.is_empty() {
            continue;
        }
        let mut args: Vec<String> = kind.remove_command().iter().map(|a| a.to_string()).collect();
        args.extend(ids.iter().cloned());
        engine.run(&args).await?;
        let count = match kind {
            Kind::Container => &mut removed.containers,
            Kind::Network => &mut removed.networks,
            Kind::Volume => &mut removed.volumes,
        };
        *count = ids.len();
    }
    // The containers are gone, so their nodes' cgroups can go too.
    removed.cgroups = super::node_cgroup::remove(std::path::Path::new(super::node_cgroup::CGROUP_ROOT), id);
    Ok(removed)
}

/// Whether any container of deployment `id` exists.
pub async fn exists(engine: &Engine, id: &str) -> Result<bool, EngineError> {
    Ok(!engine
        .ids_with_label(Kind::Container, &format!("{DEPLOYMENT_LABEL}={id}"))
        .await?
        .is_empty())
}
