//! Streams what a run commits to run.db, from a cursor on: ReadOutput and WatchSeries.
//! Each read starts from the reader's own cursor, and only when the client's channel has
//! room, so a slow client holds no more than its channel (two messages) here; it lags
//! instead. A follower of a running run sleeps until the run commits again (its
//! `Progress` changes).

use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::runs::Progress;

/// Reads the next message after its cursor, and moves the cursor past it.
#[tonic::async_trait]
pub(crate) trait CommitReader: Send + 'static {
    type Item: Send + 'static;
    /// None when nothing new is committed.
    async fn next(&mut self) -> Result<Option<Self::Item>, Status>;
}

/// Sends what `reader` reads until it has read everything: with `follow`, until the run
/// has finished (a run that is not live counts as finished); without, what is there now.
/// Ends early when the client goes away.
pub(crate) fn stream<R: CommitReader>(
    mut reader: R,
    mut progress: Option<watch::Receiver<Progress>>,
    follow: bool,
    capacity: usize,
) -> ReceiverStream<Result<R::Item, Status>> {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    tokio::spawn(async move {
        loop {
            // Read `finished` before reading rows: rows committed before the run finished
            // are then always read once more before the stream ends.
            let finished = progress.as_mut().is_none_or(|p| p.borrow_and_update().finished);
            match reader.next().await {
                Ok(Some(item)) => {
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            if !follow || finished {
                return;
            }
            if let Some(p) = progress.as_mut() {
                tokio::select! {
                    changed = p.changed() => if changed.is_err() { progress = None },
                    _ = tx.closed() => return,
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
