//! `jupiterctl submit`: send inputs to the running deployment and wait for
//! their results, failing fast if the deployment breaks meanwhile.

use jupiterctl::{config, report, session, state};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input files or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Return once submitted, without waiting for results.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// circe-home's URL, instead of the state file's (e.g. a
    /// `kubectl port-forward` to a Kubernetes deployment).
    #[arg(long, env = jupiter_common::env::CIRCE_HOME)]
    pub circe_home: Option<String>,
    /// Send the next input only after the previous one's result, so each
    /// runs alone and its makespan can be checked against the prediction.
    #[arg(long, conflicts_with = "no_wait")]
    pub one_at_a_time: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let files = session::expand_inputs(&args.paths)?;
    let mut deployment = match &args.circe_home {
        Some(_) => {
            // A port-forward to a deployment up with --tls still needs
            // the user's certificate, which its state file names.
            if let Ok(state) = state::read(&state::default_path()?) {
                config::present_identity(&state)?;
            }
            None
        }
        None => Some(config::attach(&state::read(&state::default_path()?)?).await?),
    };
    let circe_home = match (&args.circe_home, &deployment) {
        (Some(url), _) => url.clone(),
        (None, Some(d)) => d.summary.endpoints().circe_home,
        (None, None) => anyhow::bail!("no deployment to submit to: give --circe-home URL"),
    };
    if args.no_wait {
        let client = session::client(&circe_home).await?;
        let ids = session::submit_all(&client, &files).await?;
        println!("submitted {} inputs: {}", ids.len(), ids.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    // Watching the deployment while inputs run: a lost node is recovered
    // from on the way; resolves only when the inputs cannot finish.
    let broken = async {
        match deployment.as_mut() {
            Some(d) => d.stopped().await,
            None => std::future::pending().await,
        }
    };
    let pace = session::Pace::one_at_a_time(args.one_at_a_time);
    let results = session::submit_paced(
        &circe_home,
        &files,
        pace,
        Duration::from_secs(args.timeout),
        true,
        broken,
    )
    .await;
    // A recovery moved tasks: the state file follows, so that `status`
    // shows where they run now.
    if let Some(d) = &deployment {
        if !d.recoveries().is_empty() {
            state::write(&state::default_path()?, &d.state())?;
        }
    }
    let (results, wall) = results?;
    print!("{}", report::inputs_table(&results));
    println!("{}", report::makespan_line(&results, wall.as_secs_f64() * 1000.0));
    let predicted = deployment
        .as_ref()
        .map_or(0.0, |d| d.summary.predicted_makespan_secs);
    if let Some(line) = report::prediction_line(&results, pace.alone(results.len()), predicted) {
        println!("{line}");
    }
    match &deployment {
        Some(d) if d.backend_name() == "kubernetes" => println!(
            "outputs on circe-home's claim: `kubectl -n jupiter-{} cp circe-home-0:{} ./out`",
            d.summary.deployment,
            d.summary.output.display()
        ),
        Some(d) => println!("outputs in {}", d.summary.output.display()),
        None => println!("outputs in circe-home's output folder"),
    }
    Ok(super::exit(results.iter().all(|r| r.ok)))
}
