//! The one task that owns the manager's shared state: the live runs (how to reach each
//! run's task, and its progress), the ids of runs being started, what cannot be written
//! now (`guild status`), the run tasks themselves, and the broadcast watchers hear.
//! Everything else talks to it through one bounded channel: run tasks tell it what
//! happened ([`RunEvent`]), the manager's methods ask it ([`Ask`]); it decides.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{Progress, RunChange};
use crate::store::RunRecord;

/// Messages waiting for the owner: enough for bursts (every run ending at once), while
/// a sender that finds it full waits rather than the queue growing without bound.
pub(super) const CAPACITY: usize = 256;

/// What a run's task (or a management operation) tells the owner.
#[derive(Debug)]
pub(crate) enum RunEvent {
    /// A run started, changed or ended: watchers hear it.
    Changed(RunRecord),
    /// A run left the list (deleted).
    Removed(RunRecord),
    /// Writes of the run are failing (`Some`: what to show) or landed again (`None`).
    Problem { id: String, problem: Option<String> },
    /// The run's end is being recorded: from now on it cannot be stopped, and its attrs
    /// are written by a writer of their own.
    Ending { id: String },
}

/// What a live run's task is asked to do.
pub(crate) enum RunRequest {
    Stop,
    /// Attrs to write through the run's own writer (a label or tags set while it runs);
    /// `done` is answered once they are written (or kept to be written again).
    PutAttrs {
        attrs: Vec<(String, String)>,
        done: oneshot::Sender<()>,
    },
}

/// How to reach a live run's task and follow its progress.
#[derive(Clone)]
pub(crate) struct LiveHandle {
    pub requests: mpsc::Sender<RunRequest>,
    pub progress: watch::Receiver<Progress>,
}

pub(crate) type RunFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the manager's methods ask of the owner.
pub(crate) enum Ask {
    /// Takes a live run: its handle is known before its task starts.
    Track {
        id: String,
        handle: LiveHandle,
        task: RunFuture,
    },
    Live {
        id: String,
        reply: oneshot::Sender<Option<LiveHandle>>,
    },
    AllLive {
        reply: oneshot::Sender<Vec<LiveHandle>>,
    },
    Running {
        reply: oneshot::Sender<usize>,
    },
    Problems {
        reply: oneshot::Sender<Vec<String>>,
    },
    /// Claims an id for a run being started; false when another start has it.
    Reserve {
        id: String,
        reply: oneshot::Sender<bool>,
    },
    Unreserve {
        id: String,
    },
    /// Answered once every run task has returned.
    Drained {
        reply: oneshot::Sender<()>,
    },
}

pub(crate) enum Message {
    Tell(RunEvent),
    Ask(Ask),
}

/// What a run's task holds of the owner: it can tell, not ask.
#[derive(Clone)]
pub(crate) struct Teller(mpsc::Sender<Message>);

impl Teller {
    pub fn new(owner: mpsc::Sender<Message>) -> Teller {
        Teller(owner)
    }

    /// Waits for room in the owner's queue (never drops an event: a run's end must be
    /// told).
    pub async fn tell(&self, event: RunEvent) {
        let _ = self.0.send(Message::Tell(event)).await;
    }
}

#[derive(Default)]
struct State {
    live: HashMap<String, LiveHandle>,
    starting: HashSet<String>,
    problems: BTreeMap<String, String>,
    /// The run id of each run task.
    tasks: HashMap<tokio::task::Id, String>,
    drained: Vec<oneshot::Sender<()>>,
}

/// Runs the owner until every sender is gone (the manager and its run tasks).
pub(super) async fn run(mut messages: mpsc::Receiver<Message>, watchers: broadcast::Sender<RunChange>) {
    let mut state = State::default();
    let mut tasks: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(Message::Tell(event)) => state.tell(event, &watchers),
                Some(Message::Ask(ask)) => state.ask(ask, &mut tasks),
                None => break,
            },
            Some(done) = tasks.join_next_with_id() => {
                let (task, outcome) = match done {
                    Ok((task, ())) => (task, None),
                    Err(err) => (err.id(), Some(err)),
                };
                // However it ended (a task that panicked never told its end), nothing
                // follows the run any more.
                if let Some(id) = state.tasks.remove(&task) {
                    if let Some(err) = outcome {
                        tracing::error!(run = %id, "the run's task failed: {err}; guildd no longer follows the run");
                    }
                    state.live.remove(&id);
                }
            }
        }
        if tasks.is_empty() {
            for reply in state.drained.drain(..) {
                let _ = reply.send(());
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

impl State {
    fn tell(&mut self, event: RunEvent, watchers: &broadcast::Sender<RunChange>) {
        match event {
            RunEvent::Changed(run) => {
                let _ = watchers.send(RunChange { run, removed: false });
            }
            RunEvent::Removed(run) => {
                let _ = watchers.send(RunChange { run, removed: true });
            }
            RunEvent::Problem { id, problem } => {
                match problem {
                    Some(problem) => self.problems.insert(id, problem),
                    None => self.problems.remove(&id),
                };
            }
            RunEvent::Ending { id } => {
                self.live.remove(&id);
            }
        }
    }

    fn ask(&mut self, ask: Ask, tasks: &mut JoinSet<()>) {
        match ask {
            Ask::Track { id, handle, task } => {
                self.starting.remove(&id);
                self.live.insert(id.clone(), handle);
                let task = tasks.spawn(task);
                self.tasks.insert(task.id(), id);
            }
            Ask::Live { id, reply } => {
                let _ = reply.send(self.live.get(&id).cloned());
            }
            Ask::AllLive { reply } => {
                let _ = reply.send(self.live.values().cloned().collect());
            }
            Ask::Running { reply } => {
                let _ = reply.send(self.live.len());
            }
            Ask::Problems { reply } => {
                let _ = reply.send(self.problems.values().cloned().collect());
            }
            Ask::Reserve { id, reply } => {
                let _ = reply.send(self.starting.insert(id));
            }
            Ask::Unreserve { id } => {
                self.starting.remove(&id);
            }
            Ask::Drained { reply } => self.drained.push(reply),
        }
    }
}
