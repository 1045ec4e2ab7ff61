//! DRUPE central: collects every node's resource reports and every link's
//! probe results, fits a transfer-time model per directed link, keeps the
//! latest profile and its history in an embedded database (so a restart
//! loses nothing), and serves the profile and a stream of its changes.
//!
//! Probing is driven from here: each round visits every ordered pair of
//! reachable nodes in N-1 steps; in step k node i probes node (i+k) mod N,
//! so in every step each node sends one probe and receives one, and no two
//! probes share a link. The step where k = N/2 would probe i -> j and
//! j -> i at once (data one way would queue behind the other's
//! acknowledgements), so it runs in two halves. Nodes that share one host
//! (local processes, containers on one engine) share its CPU on every
//! link, so there `probe_sequential` runs the probes one at a time.

mod args;
pub mod model;
mod prober;
pub mod store;

pub use args::{parse_size, Args, SizeError};

use jupiter_common::proto::drupe::central::v1::drupe_central_server::{DrupeCentral, DrupeCentralServer};
use jupiter_common::proto::drupe::central::v1::profile_update::Update;
use jupiter_common::proto::drupe::central::v1::{
    History, HistoryRequest, LinkProfile, NetworkProfile, ProfileRequest, ProfileUpdate, ReportAck,
    ResourceProfile, WatchProfileRequest,
};
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::telemetry::Telemetry;
use jupiter_common::transfer::check_name;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Notify};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::task::AbortOnDropHandle;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// How drupe-central probes and when it gives up on a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
    /// The embedded database file.
    pub db: PathBuf,
    /// Time between the starts of two probe rounds.
    pub probe_interval: Duration,
    /// Payload sizes (bytes) sent over every link each round.
    pub probe_sizes: Vec<u64>,
    /// Adaptive probing: each link's largest payload doubles until it
    /// takes this many seconds (and 10 round trips); 0 turns it off.
    pub probe_min_secs: f64,
    /// The largest payload adaptive probing sends.
    pub probe_max_bytes: u64,
    /// Probe one link at a time. Nodes that share one host's CPU (local
    /// processes, containers on one engine) share every "link": parallel
    /// probes split the CPU at random, and a link's remembered size fed back
    /// into how much it overlapped with others (loopback links read 5×
    /// apart, round after round).
    pub probe_sequential: bool,
    /// Transfers of each size per link and round; the fastest counts.
    pub probe_repeats: u32,
    /// Echoes per link for the round-trip time.
    pub echoes: u32,
    /// A link probe that takes longer fails (the link is unreachable).
    pub probe_timeout: Duration,
    /// A node that has not reported for this long is unreachable.
    pub unreachable_after: Duration,
}

impl Config {
    pub fn new(db: PathBuf) -> Self {
        Self {
            telemetry: jupiter_common::telemetry::Settings::off(jupiter_common::role::Role::DrupeCentral),
            db,
            probe_interval: Duration::from_secs(60),
            probe_sizes: vec![64 * 1024, 256 * 1024, 1024 * 1024],
            probe_min_secs: 0.02,
            probe_max_bytes: 64 << 20,
            probe_sequential: false,
            probe_repeats: 2,
            echoes: 5,
            probe_timeout: Duration::from_secs(30),
            unreachable_after: Duration::from_secs(15),
        }
    }
}

/// Everything that stops drupe-central from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Flag(#[from] jupiter_common::cli::FlagError),
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error("--probe-sizes: {0}")]
    ProbeSize(#[from] SizeError),
    #[error("--probe-sizes needs at least one size")]
    NoProbeSizes,
    #[error("--probe-max-bytes: {0}")]
    ProbeMaxBytes(#[source] SizeError),
    #[error("--probe-min-secs must be between 0 and 60 seconds, got {0}")]
    ProbeMinSecs(f64),
    #[error("--{flag} must be a positive number of seconds, got {value}")]
    Seconds { flag: &'static str, value: f64 },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

struct NodeEntry {
    resources: NodeResources,
    last_seen: Instant,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, NodeEntry>,
    links: BTreeMap<(String, String), LinkProfile>,
    rounds: u64,
}

struct Inner {
    config: Config,
    telemetry: Telemetry,
    state: Mutex<State>,
    /// Taken (closed) when the server stops, even if a call still holds a clone.
    store: Mutex<Option<Store>>,
    updates: broadcast::Sender<ProfileUpdate>,
    /// Wakes the prober early: a node appeared or came back.
    wake: Notify,
    /// Nodes that appeared or came back so far: a wake-up for nodes the
    /// last round already probed starts no new round.
    arrivals: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct Central {
    inner: Arc<Inner>,
}

impl Central {
    /// Opens the store and loads what it held. Stored nodes get a fresh
    /// grace period: they are unreachable only if they stay silent.
    pub fn open(config: Config, telemetry: Telemetry) -> Result<Self> {
        let (store, loaded) = Store::open(&config.db)?;
        let now = Instant::now();
        let mut state = State::default();
        for resources in loaded.nodes {
            state.nodes.insert(
                resources.node.clone(),
                NodeEntry {
                    resources,
                    last_seen: now,
                },
            );
        }
        for link in loaded.links {
            state.links.insert((link.from.clone(), link.to.clone()), link);
        }
        tracing::info!(
            nodes = state.nodes.len(),
            links = state.links.len(),
            history = loaded.history,
            db = %config.db.display(),
            "profile store opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                telemetry,
                state: Mutex::new(state),
                store: Mutex::new(Some(store)),
                updates: broadcast::channel(4096).0,
                wake: Notify::new(),
                arrivals: Default::default(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.locked()
    }

    /// Closes the database, even while calls still hold this `Central`:
    /// a successor on the same file can open it, and later updates are
    /// only published.
    fn close(&self) {
        self.inner.store.locked().take();
    }

    /// Stores and publishes updates (already applied to the state).
    fn publish(&self, updates: Vec<ProfileUpdate>) {
        if updates.is_empty() {
            return;
        }
        if let Some(store) = self.inner.store.locked().as_mut() {
            if let Err(e) = store.record(&updates) {
                tracing::error!(error = %e, "could not store profile updates");
            }
        }
        for update in updates {
            let _ = self.inner.updates.send(update);
        }
    }

    pub fn network_profile(&self) -> NetworkProfile {
        let state = self.state();
        let nodes: Vec<String> = state.nodes.keys().cloned().collect();
        let reachable: Vec<&String> = state
            .nodes
            .iter()
            .filter(|(_, n)| n.resources.reachable)
            .map(|(k, _)| k)
            .collect();
        let complete = reachable.len() >= 2
            && reachable.iter().all(|from| {
                reachable.iter().filter(|to| to != &from).all(|to| {
                    state
                        .links
                        .get(&((*from).clone(), (*to).clone()))
                        .is_some_and(|l| l.reachable && l.probes > 0)
                })
            });
        let links = state
            .links
            .values()
            .filter(|l| state.nodes.contains_key(&l.from) && state.nodes.contains_key(&l.to))
            .cloned()
            .collect();
        NetworkProfile {
            nodes,
            links,
            complete,
            rounds: state.rounds,
        }
    }

    fn snapshot(&self) -> Vec<ProfileUpdate> {
        let state = self.state();
        let nodes = state.nodes.values().map(|n| Update::Node(n.resources.clone()));
        let links = state.links.values().map(|l| Update::Link(l.clone()));
        nodes
            .chain(links)
            .map(|u| ProfileUpdate { update: Some(u) })
            .collect()
    }

    /// Marks nodes that stopped reporting, and their links, unreachable.
    fn check_silence(&self) {
        let limit = self.inner.config.unreachable_after;
        let mut updates = Vec::new();
        {
            let mut state = self.state();
            let silent: Vec<String> = state
                .nodes
                .iter()
                .filter(|(_, n)| n.resources.reachable && n.last_seen.elapsed() > limit)
                .map(|(k, _)| k.clone())
                .collect();
            for node in silent {
                tracing::warn!(node, "node stopped reporting: unreachable");
                if let Some(entry) = state.nodes.get_mut(&node) {
                    entry.resources.reachable = false;
                    updates.push(Update::Node(entry.resources.clone()));
                }
                for link in state.links.values_mut() {
                    if (link.from == node || link.to == node) && link.reachable {
                        link.reachable = false;
                        link.error = format!("{node} stopped reporting for more than {limit:?}");
                        updates.push(Update::Link(link.clone()));
                    }
                }
            }
        }
        self.publish(
            updates
                .into_iter()
                .map(|u| ProfileUpdate { update: Some(u) })
                .collect(),
        );
    }

    /// Nodes to probe this round: reachable ones with an address, by name.
    fn probe_targets(&self) -> Vec<(String, String)> {
        self.state()
            .nodes
            .values()
            .filter(|n| n.resources.reachable && !n.resources.address.is_empty())
            .map(|n| (n.resources.node.clone(), n.resources.address.clone()))
            .collect()
    }

    fn record_link(&self, link: LinkProfile) {
        {
            let mut state = self.state();
            // A node that turned unreachable meanwhile keeps its links down.
            let down = |n: &str| state.nodes.get(n).is_some_and(|e| !e.resources.reachable);
            if link.reachable && (down(&link.from) || down(&link.to)) {
                return;
            }
            state
                .links
                .insert((link.from.clone(), link.to.clone()), link.clone());
        }
        let metrics = self.inner.telemetry.metrics();
        let labels = [("from", link.from.as_str()), ("to", link.to.as_str())];
        let (bandwidth, rtt) = match link.reachable {
            true => (link.bandwidth_bytes_per_sec, link.latency_ms / 1000.0),
            // An unreachable link carries nothing.
            false => (0.0, f64::NAN),
        };
        metrics
            .gauge("jupiter_link_bandwidth_bytes_per_second", &labels)
            .set(bandwidth);
        metrics.gauge("jupiter_link_rtt_seconds", &labels).set(rtt);
        self.publish(vec![ProfileUpdate {
            update: Some(Update::Link(link)),
        }]);
    }

    /// The link's last profile, if it was ever probed.
    fn previous_link(&self, from: &str, to: &str) -> Option<LinkProfile> {
        self.state()
            .links
            .get(&(from.to_string(), to.to_string()))
            .cloned()
    }

    fn finish_round(&self) {
        self.state().rounds += 1;
        self.inner
            .telemetry
            .metrics()
            .counter("jupiter_probe_rounds_total", &[])
            .increment(1);
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<ProfileUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl DrupeCentral for Central {
    async fn report_resources(&self, request: Request<NodeResources>) -> Result<Response<ReportAck>, Status> {
        let mut report = request.into_inner();
        check_name("node", &report.node)?;
        report.reachable = true;
        let newly = {
            let mut state = self.state();
            let newly = state
                .nodes
                .get(&report.node)
                .is_none_or(|n| !n.resources.reachable);
            state.nodes.insert(
                report.node.clone(),
                NodeEntry {
                    resources: report.clone(),
                    last_seen: Instant::now(),
                },
            );
            newly
        };
        if newly {
            tracing::info!(node = %report.node, address = %report.address, "node reachable");
            self.inner
                .arrivals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.wake.notify_one();
        }
        self.publish(vec![ProfileUpdate {
            update: Some(Update::Node(report)),
        }]);
        Ok(Response::new(ReportAck {}))
    }

    async fn get_resource_profile(
        &self,
        _request: Request<ProfileRequest>,
    ) -> Result<Response<ResourceProfile>, Status> {
        Ok(Response::new(ResourceProfile {
            nodes: self.state().nodes.values().map(|n| n.resources.clone()).collect(),
        }))
    }

    async fn get_network_profile(
        &self,
        _request: Request<ProfileRequest>,
    ) -> Result<Response<NetworkProfile>, Status> {
        Ok(Response::new(self.network_profile()))
    }

    async fn get_history(&self, request: Request<HistoryRequest>) -> Result<Response<History>, Status> {
        let limit = match request.into_inner().limit {
            0 => 1000,
            n => n.min(100_000) as usize,
        };
        let store = self.inner.store.locked();
        let store = store
            .as_ref()
            .ok_or_else(|| Status::unavailable("drupe-central is stopping"))?;
        let updates = store
            .history(limit)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(History { updates }))
    }

    type WatchProfileStream = UpdateStream;

    async fn watch_profile(
        &self,
        _request: Request<WatchProfileRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        // Subscribe first so nothing falls between the snapshot and the stream.
        let live = BroadcastStream::new(self.inner.updates.subscribe()).filter_map(|u| u.ok().map(Ok));
        let current = tokio_stream::iter(self.snapshot().into_iter().map(Ok));
        Ok(Response::new(Box::pin(current.chain(live))))
    }
}

/// Serves drupe-central on `listener`, probing in the background, until
/// `shutdown`. Dropping the returned future (aborting its task) stops the
/// prober and closes the database at once, as a crash would.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let telemetry = Telemetry::start(&config.telemetry).await?;
    let central = Central::open(config, telemetry.clone())?;
    let running = Running {
        central: central.clone(),
        prober: AbortOnDropHandle::new(tokio::spawn(prober::run(central.clone()))),
    };
    let stop_probing = running.prober.abort_handle();
    // Stop probing as soon as shutdown begins: the droplets are stopping
    // too, and their links are not really down.
    let shutdown = async move {
        shutdown.await;
        stop_probing.abort();
    };
    let mut routes = RoutesBuilder::default();
    routes.add_service(DrupeCentralServer::new(central));
    let result = serve::serve(
        listener,
        &telemetry,
        routes,
        &[DrupeCentralServer::<Central>::NAME],
        shutdown,
    )
    .await;
    drop(running);
    Ok(result?)
}

/// What `serve` started, ended however `serve` ends: the prober is
/// aborted with its handle, the database is closed here.
struct Running {
    central: Central,
    prober: AbortOnDropHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.central.close();
    }
}
