//! Streams files downstream (to a child's worker or to circe-home) and
//! retries until the receiver acknowledges them: the receiver is idempotent,
//! so a retry after a lost acknowledgement costs a duplicate check, nothing more.

use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::{FileHeader, PushAck};
use jupiter_common::serve::Channel;
use jupiter_common::transfer::{file_chunks, push_counting_retries, Origin};
use std::path::PathBuf;
use tonic::Status;

/// Where outputs go.
#[derive(Debug, Clone)]
pub enum Downstream {
    Worker {
        task: String,
        /// Where the worker listens (for messages and routes).
        url: String,
        client: CirceWorkerClient<Channel>,
    },
    Home(CirceHomeClient<Channel>),
}

impl Downstream {
    pub fn name(&self) -> &str {
        match self {
            Downstream::Worker { task, .. } => task,
            Downstream::Home(_) => "circe-home",
        }
    }

    /// The worker's URL (circe-home's own is not kept here).
    pub fn url(&self) -> &str {
        match self {
            Downstream::Worker { url, .. } => url,
            Downstream::Home(_) => "",
        }
    }

    /// A worker downstream at `url` (the channel connects on first use).
    pub fn worker(task: &str, url: &str) -> Result<Self, tonic::transport::Error> {
        Ok(Downstream::Worker {
            task: task.to_string(),
            url: url.to_string(),
            client: CirceWorkerClient::new(jupiter_common::serve::channel(url)?),
        })
    }

    async fn push_once(&mut self, header: FileHeader, path: Option<PathBuf>) -> Result<PushAck, Status> {
        // Outputs sit in the queue, untouched until every child has them.
        let stream = file_chunks(header, path, Origin::Owned);
        let reply = match self {
            Downstream::Worker { client, .. } => client.push(stream).await?,
            Downstream::Home(client) => client.deliver(stream).await?,
        };
        Ok(reply.into_inner())
    }

    /// Pushes one file (or an empty marker when `path` is `None`) until it
    /// is acknowledged. Gives up only on errors that a retry cannot fix.
    /// Also says how many attempts failed on the way.
    pub async fn push(&self, header: FileHeader, path: Option<PathBuf>) -> (Result<PushAck, Status>, u32) {
        let what = format!(
            "{} of input {} to {}",
            header.file_name,
            header.input_id,
            self.name()
        );
        push_counting_retries(&what, || {
            let (mut target, header, path) = (self.clone(), header.clone(), path.clone());
            async move { target.push_once(header, path).await }
        })
        .await
    }
}
