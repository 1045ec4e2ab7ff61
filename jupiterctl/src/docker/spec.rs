//! One container of a deployment, described as data and turned into the
//! `docker run` arguments that make it. Every container carries the labels
//! `down` removes by, and the CPU and memory limits of its node.

use crate::node_list::NodeSpec;
use jupiter_common::role::Role;

/// The label every object of a deployment carries; its value is the
/// deployment's id.
pub const DEPLOYMENT_LABEL: &str = "io.jupiter.deployment";
pub const ROLE_LABEL: &str = "io.jupiter.role";
pub const NODE_LABEL: &str = "io.jupiter.node";
pub const TASK_LABEL: &str = "io.jupiter.task";

#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub role: Role,
    pub image: String,
    /// The node it belongs to; None for the home roles.
    pub node: Option<String>,
    pub task: Option<String>,
    pub port: u16,
    /// Extra DNS names on the deployment's network.
    pub aliases: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `-v` arguments: `SOURCE:TARGET[:ro]`.
    pub mounts: Vec<String>,
    pub cpus: f64,
    pub memory_bytes: u64,
    /// `--user`, when the container writes files the user will own.
    pub user: Option<String>,
    /// `--cgroup-parent`: the node's shared CPU and memory budget.
    pub cgroup_parent: Option<String>,
    /// `--ip`: its fixed address, inside its node's subnet.
    pub ip: Option<String>,
    /// Its node's subnet (CIDR), whose traffic shaping leaves alone.
    pub local_subnet: Option<String>,
}

impl ContainerSpec {
    /// A container of `role`, listening on the role's port, with the
    /// limits of `node` (or the defaults, for the home roles).
    pub fn new(deployment: &str, role: Role, image: String, node: Option<&NodeSpec>) -> Self {
        let name = match node {
            Some(n) => format!("{deployment}-{}-{role}", n.name),
            None => format!("{deployment}-{role}"),
        };
        Self {
            name,
            role,
            image,
            node: node.map(|n| n.name.clone()),
            task: None,
            port: role.port(),
            aliases: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            cpus: node.map_or(crate::node_list::DEFAULT_CPUS, |n| n.cpus),
            memory_bytes: node.map_or(crate::node_list::DEFAULT_MEMORY, |n| n.memory_bytes),
            user: None,
            cgroup_parent: None,
            ip: None,
            local_subnet: None,
        }
    }

    /// Sets variable `key` (one of `jupiter_common::env`).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn mount(mut self, mount: String) -> Self {
        self.mounts.push(mount);
        self
    }

    /// The URL other containers of the deployment reach it at.
    pub fn inner_url(&self) -> String {
        format!("http://{}:{}", self.name, self.port)
    }

    /// The `docker run` arguments.
    pub fn run_args(&self, deployment: &str, network: &str) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--detach".into(),
            "--name".into(),
            self.name.clone(),
            "--hostname".into(),
            self.name.clone(),
            "--network".into(),
            network.into(),
            "--label".into(),
            format!("{DEPLOYMENT_LABEL}={deployment}"),
            "--label".into(),
            format!("{ROLE_LABEL}={}", self.role),
            "--cpus".into(),
            format!("{}", self.cpus),
            "--memory".into(),
            self.memory_bytes.to_string(),
            // A role whose process crashes comes back on its volume at once.
            // (Docker ignores the policy for a container stopped from
            // outside, `docker kill` included: the run's watch starts those.)
            "--restart".into(),
            "on-failure".into(),
        ];
        if let Some(node) = &self.node {
            args.extend(["--label".into(), format!("{NODE_LABEL}={node}")]);
        }
        if let Some(task) = &self.task {
            args.extend(["--label".into(), format!("{TASK_LABEL}={task}")]);
        }
        for alias in &self.aliases {
            args.extend(["--network-alias".into(), alias.clone()]);
        }
        for (key, value) in &self.env {
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        for mount in &self.mounts {
            args.extend(["--volume".into(), mount.clone()]);
        }
        if let Some(user) = &self.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if let Some(ip) = &self.ip {
            args.extend(["--ip".into(), ip.clone()]);
        }
        if let Some(parent) = &self.cgroup_parent {
            args.extend(["--cgroup-parent".into(), parent.clone()]);
        }
        args.push(self.image.clone());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_args_carry_labels_limits_and_network() {
        let node = NodeSpec {
            name: "edge0".into(),
            cpus: 0.5,
            memory_bytes: 256 << 20,
            bandwidth_bits_per_sec: Some(20_000_000),
            delay: None,
        };
        let spec = ContainerSpec::new(
            "jd",
            Role::DrupeDroplet,
            "jupiter/drupe-droplet:dev".into(),
            Some(&node),
        )
        .env("JUPITER_NODE", "edge0")
        .mount("jd-edge0:/var/lib/jupiter".into());
        let args = spec.run_args("jd", "jd-net").join(" ");
        for want in [
            "--name jd-edge0-drupe-droplet",
            "--network jd-net",
            "--label io.jupiter.deployment=jd",
            "--label io.jupiter.role=drupe-droplet",
            "--label io.jupiter.node=edge0",
            "--cpus 0.5",
            "--memory 268435456",
            "--env JUPITER_NODE=edge0",
            "--volume jd-edge0:/var/lib/jupiter",
        ] {
            assert!(args.contains(want), "{want} in {args}");
        }
        assert!(args.ends_with("jupiter/drupe-droplet:dev"), "{args}");
        assert_eq!(spec.inner_url(), "http://jd-edge0-drupe-droplet:7101");
    }
}
