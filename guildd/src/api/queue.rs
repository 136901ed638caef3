//! QueueService (the queue: GPUs, limits, waiting runs; priorities) and SweepService (a
//! sweep with its trials), and what every handler adds to the runs it answers: each
//! run's place in the queue and its sweep.

use std::collections::HashMap;
use std::sync::Arc;

use guild_proto::v1::{self as pb, queue_service_server::QueueService, sweep_service_server::SweepService};
use tonic::{Request, Response, Status};

use super::{Shared, required};
use crate::runs::QueueSnapshot;
use crate::runs::sweeps::{self, SweepView};
use crate::store::queue::TrialOf;

pub struct Queues(pub Arc<Shared>);
pub struct Sweeps(pub Arc<Shared>);

/// The queue and sweep facts of runs, read once for a whole answer.
pub(crate) struct Decor {
    queue: QueueSnapshot,
    positions: HashMap<String, usize>,
    trials: HashMap<String, TrialOf>,
}

impl Decor {
    pub async fn read(shared: &Shared) -> Decor {
        let queue = shared.manager.queue().await;
        // Each waiting run's slot in `waiting` (1-based).
        let positions = queue
            .waiting
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i + 1))
            .collect();
        let trials = shared.manager.index().trial_sweeps().await.unwrap_or_default();
        Decor {
            queue,
            positions,
            trials,
        }
    }

    /// For one run: what it needs, and nothing of the other runs.
    pub async fn one(shared: &Shared, id: &str) -> Decor {
        let queue = shared.manager.queue_of(id).await;
        let positions = queue.waiting.iter().map(|w| (w.id.clone(), 1)).collect();
        let trials = match shared.manager.index().trial_of(id).await {
            Ok(Some(of)) => HashMap::from([(id.to_string(), of)]),
            _ => HashMap::new(),
        };
        Decor {
            queue,
            positions,
            trials,
        }
    }

    /// Fills `queue`, `sweep` and `trial` of a run.
    pub fn apply(&self, run: &mut pb::Run) {
        if let Some(&slot) = self.positions.get(&run.id) {
            let waiting = &self.queue.waiting[slot - 1];
            run.queue = Some(pb::QueueInfo {
                position: waiting.position as u32,
                priority: waiting.priority,
                gpus_requested: waiting.gpus,
                gpus: Vec::new(),
            });
        } else if let Some(gpus) = self.queue.assigned.get(&run.id) {
            run.queue = Some(pb::QueueInfo {
                position: 0,
                priority: 0,
                gpus_requested: Some(gpus.len() as u32),
                gpus: gpus.clone(),
            });
        }
        if let Some(of) = self.trials.get(&run.id) {
            run.sweep = of.sweep_id.clone();
            run.trial = of.trial;
        }
    }

    pub fn apply_all(&self, runs: &mut [pb::Run]) {
        for run in runs {
            self.apply(run);
        }
    }
}

pub(crate) fn sweep_proto(view: SweepView, decor: &Decor) -> pb::Sweep {
    let mut run = view.run.to_proto();
    decor.apply(&mut run);
    pb::Sweep {
        run: Some(run),
        objective: view.spec.objective.clone(),
        maximize: view.spec.maximize,
        optimizer: view.spec.optimizer.to_string(),
        max_trials: view.spec.max_trials,
        parallel: view.spec.parallel,
        seed: view.spec.seed,
        space: view
            .spec
            .flags
            .iter()
            .map(|(name, value)| pb::Flag {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        best_trial: view.best.unwrap_or(0),
        trials: view
            .trials
            .into_iter()
            .map(|t| {
                let mut run = t.run.to_proto();
                decor.apply(&mut run);
                pb::Trial {
                    number: t.number,
                    run: Some(run),
                    flags: t
                        .flags
                        .into_iter()
                        .map(|(name, value)| pb::Flag { name, value })
                        .collect(),
                    objective: t.objective,
                }
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl QueueService for Queues {
    async fn get_queue(&self, _: Request<pb::GetQueueRequest>) -> Result<Response<pb::Queue>, Status> {
        let decor = Decor::read(&self.0).await;
        let index = self.0.manager.index();
        let mut waiting = Vec::with_capacity(decor.queue.waiting.len());
        for w in &decor.queue.waiting {
            if let Some(run) = index.get_run(&w.id).await? {
                let mut run = run.to_proto();
                decor.apply(&mut run);
                waiting.push(run);
            }
        }
        Ok(Response::new(pb::Queue {
            gpus: decor.queue.gpus.clone(),
            free_gpus: decor.queue.free_gpus.clone(),
            max_runs: decor.queue.max_runs.unwrap_or(0) as u32,
            running: decor.queue.running as u32,
            waiting,
        }))
    }

    async fn set_priority(&self, request: Request<pb::SetPriorityRequest>) -> Result<Response<pb::Run>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        let run = self.0.manager.set_priority(selector, req.priority).await?;
        let mut proto = run.to_proto();
        Decor::one(&self.0, &run.id).await.apply(&mut proto);
        Ok(Response::new(proto))
    }
}

#[tonic::async_trait]
impl SweepService for Sweeps {
    async fn get_sweep(&self, request: Request<pb::GetSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let selector = required("sweep", &request.get_ref().sweep)?;
        let view = sweeps::sweep_view(self.0.manager.index(), selector).await?;
        let decor = Decor::read(&self.0).await;
        Ok(Response::new(sweep_proto(view, &decor)))
    }
}
