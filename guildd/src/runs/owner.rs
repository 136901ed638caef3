//! The one task that owns the manager's shared state: the live runs (how to reach each
//! run's task, and its progress), the ids of runs being started, what cannot be written
//! now (`guild status`), the run tasks themselves, and the broadcast watchers hear.
//! Everything else talks to it through one bounded channel: run tasks tell it what
//! happened ([`RunEvent`]), the manager's methods ask it ([`Ask`]); it decides.
//!
//! It also holds the queue ([`crate::queue::Queue`]): runs ask it for room to start,
//! runs that end give theirs back, and every queued run it lets start goes to the
//! manager's launcher (`Manager::launch_queued`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{Progress, RunChange};
use crate::queue::{Grant, Queue, Request, Waiting};
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
    /// The run's processes ended (or it never started): what it held in the queue is
    /// free for the next run.
    Released { id: String },
    /// A sweep's driver ended.
    SweepEnded { id: String },
}

/// What cancelling a queued run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// Taken out of the queue: it never starts.
    Cancelled,
    /// It was let start a moment ago: it is stopped as soon as its task runs.
    Starting,
    /// Not in the queue.
    NotQueued,
}

/// The queue as the API shows it.
#[derive(Debug, Clone, Default)]
pub struct QueueSnapshot {
    pub gpus: Vec<String>,
    pub free_gpus: Vec<String>,
    pub max_runs: Option<usize>,
    pub running: usize,
    pub waiting: Vec<Waiting>,
    /// GPUs held by each run that holds some.
    pub assigned: HashMap<String, Vec<String>>,
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
    /// May this run start now? Its grant (it holds the resources from now on), or None:
    /// it is not kept, and is queued with `Enqueue` once recorded as queued.
    Admit {
        request: Request,
        reply: oneshot::Sender<Option<Grant>>,
    },
    /// Queues a run recorded as queued; its position (0: it may start at once, and goes
    /// to the launcher).
    Enqueue {
        request: Request,
        reply: oneshot::Sender<usize>,
    },
    /// A run adopted at start-up holds these GPUs (and a slot).
    Hold {
        id: String,
        gpus: Vec<String>,
    },
    Cancel {
        id: String,
        reply: oneshot::Sender<Cancelled>,
    },
    SetPriority {
        id: String,
        priority: i32,
        reply: oneshot::Sender<bool>,
    },
    Queue {
        reply: oneshot::Sender<QueueSnapshot>,
    },
    /// One run's place in the queue, or the GPUs it holds.
    QueueOf {
        id: String,
        reply: oneshot::Sender<QueueSnapshot>,
    },
    /// A sweep's driver runs: `stop` asks it to stop.
    TrackSweep {
        id: String,
        stop: watch::Sender<bool>,
    },
    /// Asks a sweep's driver to stop; false when no driver runs it.
    StopSweep {
        id: String,
        reply: oneshot::Sender<bool>,
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

struct State {
    live: HashMap<String, LiveHandle>,
    starting: HashSet<String>,
    problems: BTreeMap<String, String>,
    /// The run id of each run task.
    tasks: HashMap<tokio::task::Id, String>,
    drained: Vec<oneshot::Sender<()>>,
    queue: Queue,
    /// Where the runs the queue lets start go: unbounded, since the launcher asks this
    /// task in turn (bounded only by the queue itself).
    launches: Option<mpsc::UnboundedSender<Grant>>,
    /// Runs sent to the launcher and not tracked yet.
    launching: HashSet<String>,
    /// Runs cancelled while being launched: stopped as soon as they are tracked.
    stop_on_track: HashSet<String>,
    /// How to stop each sweep whose driver runs.
    sweeps: HashMap<String, watch::Sender<bool>>,
}

/// Runs the owner until every sender is gone (the manager and its run tasks).
pub(super) async fn run(
    mut messages: mpsc::Receiver<Message>,
    watchers: broadcast::Sender<RunChange>,
    queue: Queue,
    launches: mpsc::UnboundedSender<Grant>,
) {
    let mut state = State {
        live: HashMap::new(),
        starting: HashSet::new(),
        problems: BTreeMap::new(),
        tasks: HashMap::new(),
        drained: Vec::new(),
        queue,
        launches: Some(launches),
        launching: HashSet::new(),
        stop_on_track: HashSet::new(),
        sweeps: HashMap::new(),
    };
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
                    state.release(&id);
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
                self.release(&id);
            }
            RunEvent::Released { id } => self.release(&id),
            RunEvent::SweepEnded { id } => {
                self.sweeps.remove(&id);
            }
        }
    }

    /// Frees what a run held and lets the next runs start.
    fn release(&mut self, id: &str) {
        self.launching.remove(id);
        if self.queue.release(id) {
            self.dispatch();
        }
    }

    /// Sends every run the queue lets start now to the launcher.
    fn dispatch(&mut self) {
        let grants = self.queue.dispatch();
        self.launch(grants);
    }

    fn launch(&mut self, grants: Vec<Grant>) {
        for grant in grants {
            self.launching.insert(grant.id.clone());
            let sent = self.launches.as_ref().is_some_and(|l| l.send(grant.clone()).is_ok());
            if !sent {
                // No launcher (the daemon is ending): the run stays queued in index.db,
                // and the next daemon starts it.
                self.launching.remove(&grant.id);
                self.queue.release(&grant.id);
            }
        }
    }

    fn snapshot(&self) -> QueueSnapshot {
        let resources = self.queue.resources();
        let (running, _) = self.queue.counts();
        QueueSnapshot {
            gpus: resources.gpus.clone(),
            free_gpus: self.queue.free_gpus(),
            max_runs: resources.max_runs,
            running,
            waiting: self.queue.waiting(),
            assigned: self.queue.assignments().into_iter().collect(),
        }
    }

    fn ask(&mut self, ask: Ask, tasks: &mut JoinSet<()>) {
        match ask {
            Ask::Track { id, handle, task } => {
                self.starting.remove(&id);
                self.launching.remove(&id);
                if self.stop_on_track.remove(&id) {
                    let _ = handle.requests.try_send(RunRequest::Stop);
                }
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
            Ask::Admit { request, reply } => {
                let (own, others) = self.queue.admit(request);
                self.launch(others);
                let _ = reply.send(own);
            }
            Ask::Enqueue { request, reply } => {
                let id = request.id.clone();
                self.queue.push(request);
                self.dispatch();
                let position = self
                    .queue
                    .waiting()
                    .iter()
                    .find(|w| w.id == id)
                    .map_or(0, |w| w.position);
                let _ = reply.send(position);
            }
            Ask::Hold { id, gpus } => self.queue.hold(&id, &gpus),
            Ask::Cancel { id, reply } => {
                let outcome = if self.queue.cancel(&id) {
                    Cancelled::Cancelled
                } else if self.launching.contains(&id) {
                    self.stop_on_track.insert(id);
                    Cancelled::Starting
                } else {
                    Cancelled::NotQueued
                };
                let _ = reply.send(outcome);
            }
            Ask::SetPriority { id, priority, reply } => {
                let moved = self.queue.set_priority(&id, priority);
                let _ = reply.send(moved);
            }
            Ask::Queue { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Ask::QueueOf { id, reply } => {
                let mut one = QueueSnapshot {
                    waiting: self.queue.waiting_one(&id).into_iter().collect(),
                    ..QueueSnapshot::default()
                };
                if let Some(gpus) = self.queue.assigned(&id) {
                    one.assigned.insert(id, gpus);
                }
                let _ = reply.send(one);
            }
            Ask::TrackSweep { id, stop } => {
                self.sweeps.insert(id, stop);
            }
            Ask::StopSweep { id, reply } => {
                let found = self.sweeps.get(&id).map(|stop| stop.send_replace(true)).is_some();
                let _ = reply.send(found);
            }
        }
    }
}
