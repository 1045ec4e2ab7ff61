//! Every `JUPITER_*` environment variable, named once. The roles' flags
//! fall back to them (`#[arg(env = env::NODE)]`), and the Docker and
//! Kubernetes backends set them, so a flag and the variable that a
//! container is configured with cannot drift apart.

// Flags shared by several roles.
/// `--listen`: the address a role listens on.
pub const LISTEN: &str = "JUPITER_LISTEN";
/// `--node`: the node a per-node or per-task role runs on.
pub const NODE: &str = "JUPITER_NODE";
/// `--advertise`: the URL others reach a role at.
pub const ADVERTISE: &str = "JUPITER_ADVERTISE";
/// `--central`: drupe-central's URL.
pub const DRUPE_CENTRAL: &str = "JUPITER_DRUPE_CENTRAL";
/// `--data-dir`: where a role keeps state.
pub const DATA_DIR: &str = "JUPITER_DATA_DIR";
/// `--app`: the app folder.
pub const APP: &str = "JUPITER_APP";
/// `--python`: the Python of original Jupiter tasks.
pub const PYTHON: &str = "JUPITER_PYTHON";
/// `true`: one Python interpreter per input for Python tasks, not warm ones.
pub const FRESH_INTERPRETER: &str = "JUPITER_FRESH_INTERPRETER";
/// `--task-timeout`: seconds a task's run may take, for tasks without `timeout:`.
pub const TASK_TIMEOUT: &str = "JUPITER_TASK_TIMEOUT";
/// `--max-calls`: calls after which a warm interpreter is replaced.
pub const MAX_CALLS: &str = "JUPITER_MAX_CALLS";
/// `--max-files-per-input`: files one producer may send for one input.
pub const MAX_FILES_PER_INPUT: &str = "JUPITER_MAX_FILES_PER_INPUT";
/// `--max-file-size`: bytes one pushed file may have.
pub const MAX_FILE_SIZE: &str = "JUPITER_MAX_FILE_SIZE";
/// `--max-waiting-inputs`: inputs a worker holds, waiting for parents, at once.
pub const MAX_WAITING_INPUTS: &str = "JUPITER_MAX_WAITING_INPUTS";
/// `--input-timeout`: seconds an input may wait for its parents' files.
pub const INPUT_TIMEOUT: &str = "JUPITER_INPUT_TIMEOUT";

/// `--tls-ca`: the deployment's CA certificate (PEM); with the next two,
/// the role speaks only mutual TLS.
pub const TLS_CA: &str = "JUPITER_TLS_CA";
/// `--tls-cert`: the role's own certificate (PEM), signed by the CA.
pub const TLS_CERT: &str = "JUPITER_TLS_CERT";
/// `--tls-key`: the role's private key (PEM).
pub const TLS_KEY: &str = "JUPITER_TLS_KEY";

/// `--otlp-endpoint`: the standard OpenTelemetry variable.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `--metrics-listen`: where a role serves Prometheus `/metrics`.
pub const METRICS_LISTEN: &str = "JUPITER_METRICS_LISTEN";
/// `--deployment`: the deployment a role belongs to (a trace attribute).
pub const DEPLOYMENT: &str = "JUPITER_DEPLOYMENT";
/// How many times a supervisor started this role again after it died.
pub const RESTARTS: &str = "JUPITER_RESTARTS";
/// `setpriv` or `fork`: task processes start that slower way (see
/// `child`); unset, or anything else, the fastest way the machine has.
pub const CHILD_SPAWN: &str = "JUPITER_CHILD_SPAWN";

// drupe-central.
pub const DRUPE_DB: &str = "JUPITER_DRUPE_DB";
pub const PROBE_INTERVAL: &str = "JUPITER_PROBE_INTERVAL";
pub const PROBE_SIZES: &str = "JUPITER_PROBE_SIZES";
pub const PROBE_MIN_SECS: &str = "JUPITER_PROBE_MIN_SECS";
pub const PROBE_MAX_BYTES: &str = "JUPITER_PROBE_MAX_BYTES";
pub const PROBE_SEQUENTIAL: &str = "JUPITER_PROBE_SEQUENTIAL";
pub const PROBE_REPEATS: &str = "JUPITER_PROBE_REPEATS";
pub const PROBE_ECHOES: &str = "JUPITER_PROBE_ECHOES";
pub const PROBE_TIMEOUT: &str = "JUPITER_PROBE_TIMEOUT";
pub const UNREACHABLE_AFTER: &str = "JUPITER_UNREACHABLE_AFTER";

// drupe-droplet.
pub const REPORT_INTERVAL: &str = "JUPITER_REPORT_INTERVAL";
/// Kubernetes only: the pod's IP, from the downward API, which the
/// advertised URL expands.
pub const POD_IP: &str = "JUPITER_POD_IP";

// circe-home.
pub const INGRESS: &str = "JUPITER_INGRESS";
/// circe-home's `--output`, and for a task the folder it writes its outputs to.
pub const OUTPUT_DIR: &str = "JUPITER_OUTPUT_DIR";

// circe-worker.
/// circe-worker's `--task`, and for a task the name of the task it runs as.
pub const TASK: &str = "JUPITER_TASK";
pub const QUEUE_DIR: &str = "JUPITER_QUEUE_DIR";
/// `--home`: circe-home's URL.
pub const CIRCE_HOME: &str = "JUPITER_CIRCE_HOME";
pub const CHILDREN: &str = "JUPITER_CHILDREN";

// What a task's process is given (the task contract, besides OUTPUT_DIR and TASK).
pub const INPUT_ID: &str = "JUPITER_INPUT_ID";
pub const WORK_DIR: &str = "JUPITER_WORK_DIR";

// jupiterctl.
pub const STATE: &str = "JUPITER_STATE";
pub const BACKEND: &str = "JUPITER_BACKEND";
pub const NODES: &str = "JUPITER_NODES";
pub const NODE_LIST: &str = "JUPITER_NODE_LIST";
pub const SCHEDULER: &str = "JUPITER_SCHEDULER";
pub const OUTPUT: &str = "JUPITER_OUTPUT";
pub const IMAGE_TAG: &str = "JUPITER_IMAGE_TAG";
pub const IMAGE_PREFIX: &str = "JUPITER_IMAGE_PREFIX";
/// The `docker` command jupiterctl drives (default `docker`).
pub const DOCKER: &str = "JUPITER_DOCKER";
