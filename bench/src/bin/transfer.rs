//! Transfer benchmark: a file pushed to a real circe-worker on loopback (the
//! ack comes once the file is durable: tmp file, fsync, rename, dir fsync)
//! against a plain TCP copy of the same file into the same filesystem with
//! the same durability (fsync, rename, dir fsync), in the same run,
//! interleaved. A TCP copy without fsync is measured for context.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jupiter_bench::{machine, mb_per_s, median, write_pattern_file, write_script};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::circe_home_server::{CirceHome, CirceHomeServer};
use jupiter_common::proto::circe::home::v1::{
    HomeStatus, HomeStatusRequest, InputResult, ReportAck, SubmitAck, TaskReport, WatchRequest,
};
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::{FileChunk, FileHeader, StatusRequest};
use jupiter_common::role::Role;
use jupiter_common::serve;
use jupiter_common::serve::Channel;
use jupiter_common::telemetry::{Settings, Telemetry};
use jupiter_common::transfer::{file_chunks, Origin};
use std::io::{Read, Write};
use std::net::{TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status, Streaming};

#[derive(Parser, Debug)]
#[command(about = "circe-worker Push throughput vs a plain TCP copy, both durable")]
struct Args {
    /// Sizes in MiB, each with its repetitions: SIZE_MIB:REPS,...
    #[arg(long, default_value = "1:5,64:5,1024:3")]
    sizes: String,
    /// Skip the no-fsync TCP figure.
    #[arg(long)]
    no_context: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Folder for the queues and the TCP receiver's files (default: $TMPDIR).
    /// On /dev/shm (tmpfs) fsync is free and the figures isolate the network
    /// path from the disk.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Do not write and delete a scratch file before each timed copy (see
    /// `recycle_pages`): each copy then runs on whatever pages the previous
    /// one left free.
    #[arg(long)]
    no_recycle: bool,
    /// Push over mutual TLS (as `run --tls` does): certificates made for
    /// this run; the TCP figures stay plaintext.
    #[arg(long)]
    tls: bool,
}

const IO_BUF: usize = 4 << 20;

/// circe-home stand-in: takes dst's (empty) delivery and its report.
struct FakeHome;

#[tonic::async_trait]
impl CirceHome for FakeHome {
    async fn submit(&self, _: Request<Streaming<FileChunk>>) -> Result<Response<SubmitAck>, Status> {
        Err(Status::unimplemented("bench home"))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<FileChunk>>,
    ) -> Result<Response<jupiter_common::proto::circe::worker::v1::PushAck>, Status> {
        let mut stream = request.into_inner();
        while stream.message().await?.is_some() {}
        Ok(Response::new(jupiter_common::proto::circe::worker::v1::PushAck {
            duplicate: false,
            bytes: 0,
        }))
    }

    async fn report_task(&self, _: Request<TaskReport>) -> Result<Response<ReportAck>, Status> {
        Ok(Response::new(ReportAck {}))
    }

    async fn status(&self, _: Request<HomeStatusRequest>) -> Result<Response<HomeStatus>, Status> {
        Ok(Response::new(HomeStatus::default()))
    }

    async fn replay(
        &self,
        _: Request<jupiter_common::proto::circe::home::v1::ReplayRequest>,
    ) -> Result<Response<jupiter_common::proto::circe::home::v1::ReplayAck>, Status> {
        Err(Status::unimplemented("bench home"))
    }

    async fn set_placement(
        &self,
        _: Request<jupiter_common::proto::circe::home::v1::SetPlacementRequest>,
    ) -> Result<Response<jupiter_common::proto::circe::home::v1::SetPlacementAck>, Status> {
        Err(Status::unimplemented("bench home"))
    }

    type WatchResultsStream = futures::stream::Empty<Result<InputResult, Status>>;

    async fn watch_results(
        &self,
        _: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchResultsStream>, Status> {
        Err(Status::unimplemented("bench home"))
    }
}

/// Plain TCP receiver. Per connection: a mode byte (1 = fsync), then the
/// file until EOF; it writes a tmp file, (fsyncs it, renames it, fsyncs the
/// directory), sends one ack byte, deletes the file, sends a second byte.
fn tcp_server(listener: StdListener, dir: PathBuf) {
    let mut n = 0u64;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        n += 1;
        if let Err(e) = tcp_receive(&mut conn, &dir, n) {
            eprintln!("tcp receiver: {e}");
        }
    }
}

fn tcp_receive(conn: &mut TcpStream, dir: &Path, n: u64) -> std::io::Result<()> {
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode)?;
    let tmp = dir.join(format!("{n}.part"));
    let dest = dir.join(format!("{n}.file"));
    let mut file = std::fs::File::create(&tmp)?;
    let mut buf = vec![0u8; IO_BUF];
    loop {
        let got = conn.read(&mut buf)?;
        if got == 0 {
            break;
        }
        file.write_all(&buf[..got])?;
    }
    if mode[0] == 1 {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&tmp, &dest)?;
    if mode[0] == 1 {
        std::fs::File::open(dir)?.sync_all()?;
    }
    conn.write_all(&[1])?;
    std::fs::remove_file(&dest)?;
    conn.write_all(&[2])?;
    Ok(())
}

/// Writes and deletes an untimed scratch file somewhat larger than the next
/// copy, in the same filesystem, so that every timed copy (gRPC or TCP) starts
/// with as many just-freed pages as it can use.
///
/// Why: a copy fills fresh page-cache pages, and on a VM whose free memory
/// goes back to the host (here: virtio-balloon free page reporting, after
/// ~2 s) pages freed seconds ago cost several times more to fill than pages
/// freed just now (1 GiB: ~2.3 s against ~0.3 s). Without this, a copy is
/// fast or slow depending on whether the copy before it, of either path, has
/// just freed a file's worth of pages, so one path's memory use shows up in
/// the other's figure. With it each copy runs as on a warm machine, the TCP
/// copy at its best.
fn recycle_pages(dir: &Path, size: u64) -> std::io::Result<()> {
    let path = dir.join("recycle.scratch");
    let block = vec![1u8; IO_BUF];
    let mut file = std::fs::File::create(&path)?;
    let mut left = size + size / 4 + (16 << 20);
    while left > 0 {
        let n = left.min(IO_BUF as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    drop(file);
    // Deleted before write-back: the pages go straight back, nothing reaches the disk.
    std::fs::remove_file(&path)
}

/// One plain TCP copy; the time runs from connect to the first ack byte.
fn tcp_send(addr: std::net::SocketAddr, path: &Path, fsync: bool) -> std::io::Result<Duration> {
    let mut buf = vec![0u8; IO_BUF];
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr)?;
    let mut file = std::fs::File::open(path)?;
    conn.write_all(&[fsync as u8])?;
    loop {
        let got = file.read(&mut buf)?;
        if got == 0 {
            break;
        }
        conn.write_all(&buf[..got])?;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack)?;
    let took = started.elapsed();
    conn.read_exact(&mut ack)?; // receiver cleaned up
    Ok(took)
}

struct Grpc {
    client: CirceWorkerClient<Channel>,
    pushed: u64,
}

impl Grpc {
    /// One push; the time runs from the start of the push to the ack.
    async fn push(&mut self, path: &Path, size: u64, input_id: String) -> Result<Duration> {
        let header = FileHeader {
            input_id,
            from_task: "src".into(),
            file_name: "data.bin".into(),
            file_count: 1,
            size,
            produced_at_unix_nanos: 0,
            attempt: 0,
            placement: 0,
        };
        let started = Instant::now();
        let ack = self
            .client
            .push(file_chunks(header, Some(path.to_path_buf()), Origin::Owned))
            .await?
            .into_inner();
        let took = started.elapsed();
        if ack.duplicate || ack.bytes != size {
            bail!("unexpected ack {ack:?} for {size} bytes");
        }
        self.pushed += 1;
        // Let dst run on it and the worker retire it before the next timing.
        let waited = Instant::now();
        loop {
            let status = self.client.status(StatusRequest {}).await?.into_inner();
            if status.failed > 0 {
                bail!("dst failed on an input");
            }
            if status.done >= self.pushed {
                break;
            }
            if waited.elapsed() > Duration::from_secs(60) {
                bail!("dst did not retire input {} in 60 s", self.pushed);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(took)
    }
}

#[derive(Default)]
struct Row {
    size: u64,
    reps: usize,
    grpc: Vec<f64>,
    tcp: Vec<f64>,
    tcp_nosync: Vec<f64>,
}

fn parse_sizes(spec: &str) -> Result<Vec<(u64, usize)>> {
    spec.split(',')
        .map(|part| {
            let (mib, reps) = part.split_once(':').unwrap_or((part, "3"));
            Ok((
                mib.trim().parse::<u64>().context("size")? << 20,
                reps.trim().parse::<usize>().context("reps")?,
            ))
        })
        .collect()
}

fn label(size: u64) -> String {
    if size >= 1 << 30 {
        format!("{} GiB", size >> 30)
    } else {
        format!("{} MiB", size >> 20)
    }
}

async fn recycle(args: &Args, root: &Path, size: u64) -> Result<()> {
    if !args.no_recycle {
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || recycle_pages(&root, size)).await??;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sizes = parse_sizes(&args.sizes)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("jupiter-bench-transfer");
    let root = match &args.dir {
        Some(dir) => builder.tempdir_in(dir)?,
        None => builder.tempdir()?,
    };
    let root = root.path();

    // The app: src -> dst, dst a script that does nothing.
    let app_dir = root.join("app");
    std::fs::create_dir_all(&app_dir)?;
    write_script(&app_dir.join("noop.sh"), "exit 0")?;
    std::fs::write(
        app_dir.join("app.yaml"),
        "name: transfer\ntasks:\n  - name: src\n    command: ./noop.sh\n    children: [dst]\n  - name: dst\n    command: ./noop.sh\n",
    )?;
    let app = App::load(&app_dir)?;
    let dst = app.task("dst").context("dst task")?.clone();
    if args.tls {
        let member = jupiterctl::tls::Member::new(Role::CirceWorker, Some("dst"));
        let tls = root.join("tls");
        jupiterctl::tls::make(&tls, "transfer-bench", &[member])?;
        // One process, one deployment: its servers and clients all use it.
        let files = jupiterctl::tls::role_files(&tls, Role::CirceWorker, Some("dst"));
        jupiter_common::tls::use_everywhere(files.load()?);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // circe-home stand-in.
    let home_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let home_url = serve::url_of(&home_listener)?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(CirceHomeServer::new(FakeHome));
    let home_stopped = stopped(stop_rx.clone());
    let home = tokio::spawn(async move {
        let telemetry = Telemetry::off(Role::CirceHome);
        serve::serve(
            home_listener,
            &telemetry,
            routes,
            &[CirceHomeServer::<FakeHome>::NAME],
            home_stopped,
        )
        .await
    });

    // The real worker of dst.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let worker_url = serve::url_of(&listener)?;
    let config = circe_worker::Config {
        telemetry: Settings::off(Role::CirceWorker),
        task: dst,
        app_dir: app.dir.clone(),
        node: "bench".into(),
        queue_dir: root.join("queue"),
        limits: Default::default(),
        children: vec![],
        home: home_url.clone(),
        python: "python3".into(),
        fresh_interpreter: false,
    };
    let worker = tokio::spawn(circe_worker::serve(config, listener, stopped(stop_rx.clone())));
    serve::wait_healthy("circe-home stand-in", &home_url, Duration::from_secs(20)).await?;
    serve::wait_healthy("circe-worker dst", &worker_url, Duration::from_secs(20)).await?;
    let mut grpc = Grpc {
        client: CirceWorkerClient::new(serve::channel(&worker_url)?),
        pushed: 0,
    };

    // The plain TCP receiver.
    let tcp_dir = root.join("tcp");
    std::fs::create_dir_all(&tcp_dir)?;
    let tcp_listener = StdListener::bind("127.0.0.1:0")?;
    let tcp_addr = tcp_listener.local_addr()?;
    std::thread::spawn(move || tcp_server(tcp_listener, tcp_dir));

    let src_dir = root.join("src");
    std::fs::create_dir_all(&src_dir)?;

    // Warm up both paths (connection, first queue directories).
    let warm = src_dir.join("warm");
    write_pattern_file(&warm, 1 << 20)?;
    grpc.push(&warm, 1 << 20, "warm".into()).await?;
    {
        let warm = warm.clone();
        tokio::task::spawn_blocking(move || tcp_send(tcp_addr, &warm, true)).await??;
    }

    let mut rows = Vec::new();
    for (size, reps) in sizes {
        let path = src_dir.join(format!("file-{size}"));
        write_pattern_file(&path, size)?;
        let mut row = Row {
            size,
            reps,
            ..Default::default()
        };
        for rep in 0..reps {
            // Alternate which side goes first.
            for step in 0..2 {
                recycle(&args, root, size).await?;
                if (rep + step) % 2 == 0 {
                    let took = grpc.push(&path, size, format!("s{size}-r{rep}")).await?;
                    row.grpc.push(took.as_secs_f64());
                } else {
                    let p = path.clone();
                    let took = tokio::task::spawn_blocking(move || tcp_send(tcp_addr, &p, true)).await??;
                    row.tcp.push(took.as_secs_f64());
                }
            }
            if !args.no_context {
                recycle(&args, root, size).await?;
                let p = path.clone();
                let took = tokio::task::spawn_blocking(move || tcp_send(tcp_addr, &p, false)).await??;
                row.tcp_nosync.push(took.as_secs_f64());
            }
            if !args.json {
                eprintln!(
                    "  {} rep {}: grpc {:.1} MB/s, tcp+fsync {:.1} MB/s{}",
                    label(size),
                    rep + 1,
                    mb_per_s(size, *row.grpc.last().unwrap_or(&0.0)),
                    mb_per_s(size, *row.tcp.last().unwrap_or(&0.0)),
                    row.tcp_nosync
                        .last()
                        .map(|t| format!(", tcp no-fsync {:.1} MB/s", mb_per_s(size, *t)))
                        .unwrap_or_default()
                );
            }
        }
        std::fs::remove_file(&path)?;
        rows.push(row);
    }

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), home).await;

    let target = 0.8;
    let speeds =
        |times: &[f64], size: u64| -> Vec<f64> { times.iter().map(|t| mb_per_s(size, *t)).collect() };
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                let g = median(&speeds(&r.grpc, r.size));
                let t = median(&speeds(&r.tcp, r.size));
                serde_json::json!({
                    "size_bytes": r.size,
                    "reps": r.reps,
                    "grpc_mb_s": g,
                    "tcp_fsync_mb_s": t,
                    "tcp_nofsync_mb_s": if r.tcp_nosync.is_empty() { None } else { Some(median(&speeds(&r.tcp_nosync, r.size))) },
                    "ratio": g / t,
                    "target_met": g / t >= target,
                    "grpc_s": r.grpc,
                    "tcp_fsync_s": r.tcp,
                    "tcp_nofsync_s": r.tcp_nosync,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "benchmark": "transfer",
                "tls": args.tls,
                "machine": machine(),
                "target_ratio": target,
                "sizes": out,
            }))?
        );
    } else {
        let m = machine();
        println!(
            "transfer: circe-worker Push{} vs plain TCP on loopback, both fsync+rename ({} cores, {} GiB)",
            if args.tls { " over mutual TLS" } else { "" },
            m["cores"],
            m["mem_gib"]
        );
        println!(
            "{:>8}  {:>4}  {:>12}  {:>14}  {:>8}  {:>6}  {:>16}",
            "SIZE", "REPS", "gRPC MB/s", "TCP+fsync MB/s", "RATIO", ">=80%", "TCP no-fsync MB/s"
        );
        for r in &rows {
            let g = median(&speeds(&r.grpc, r.size));
            let t = median(&speeds(&r.tcp, r.size));
            let n = if r.tcp_nosync.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1}", median(&speeds(&r.tcp_nosync, r.size)))
            };
            println!(
                "{:>8}  {:>4}  {:>12.1}  {:>14.1}  {:>7.0}%  {:>6}  {:>16}",
                label(r.size),
                r.reps,
                g,
                t,
                100.0 * g / t,
                if g / t >= target { "yes" } else { "NO" },
                n
            );
        }
        println!(
            "(medians; MB = 10^6 bytes; time = start of push/connect -> ack after the receiver's fsync)"
        );
    }
    Ok(())
}
