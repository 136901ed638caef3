//! The queue's state machine: which waiting run may start now, and with which GPUs. It
//! knows the daemon's resources (its GPUs and the most runs at once), the runs holding
//! them, and the runs waiting, in order; it decides, and does nothing else: no I/O, no
//! clock. The run manager's owner task holds one and tells it what happened (a run asks,
//! a run ends, a queued run is cancelled); whatever it grants, the manager starts.
//! Another kind of resource (a cluster's slots) plugs in here as another field of
//! [`Resources`] and another check in [`Queue::dispatch`].
//!
//! Order: higher priority first, then the order runs asked. A run that fits starts; a
//! run that needs GPUs and does not fit holds back every later run that needs GPUs (so
//! a 2-GPU run is never passed for ever by 1-GPU runs), while runs that need no GPU may
//! pass it; a run that does not fit `max_runs` holds back every later run.

use std::collections::{BTreeSet, HashMap};

/// What the daemon has to give.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    /// The GPUs, as `CUDA_VISIBLE_DEVICES` names them (NVML indexes, or what
    /// `GUILD_GPUS` / `guildd --gpus` lists).
    pub gpus: Vec<String>,
    /// The most runs at once (`guildd --max-runs`); None: no limit.
    pub max_runs: Option<usize>,
}

impl Resources {
    /// `0,1,2,3` (as `GUILD_GPUS` and `guildd --gpus` take it): names in order, each once.
    pub fn parse_gpus(text: &str) -> Result<Vec<String>, String> {
        let mut gpus: Vec<String> = Vec::new();
        for (i, name) in text.split(',').map(str::trim).enumerate() {
            if name.is_empty() {
                if text.trim().is_empty() {
                    return Ok(Vec::new());
                }
                return Err(format!(
                    "GPU {} of \"{text}\" is empty (expected a list like 0,1,2,3)",
                    i + 1
                ));
            }
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
            {
                return Err(format!(
                    "GPU \"{name}\" in \"{text}\": expected an index or UUID (letters, digits, '-', '_', ':')"
                ));
            }
            if gpus.iter().any(|g| g == name) {
                return Err(format!("GPU \"{name}\" is listed twice in \"{text}\""));
            }
            gpus.push(name.to_string());
        }
        Ok(gpus)
    }
}

/// A run asking to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: String,
    /// GPUs it needs; None: it asked for none (it keeps the environment's
    /// `CUDA_VISIBLE_DEVICES` and takes no GPU from the queue).
    pub gpus: Option<u32>,
    /// Higher starts first.
    pub priority: i32,
}

/// A run that may start now, with the GPUs it was given (None: it asked for none).
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub id: String,
    pub gpus: Option<Vec<String>>,
}

/// A waiting run as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub id: String,
    /// 1: the next to start.
    pub position: usize,
    pub gpus: Option<u32>,
    pub priority: i32,
}

#[derive(Debug)]
struct Entry {
    request: Request,
    arrival: u64,
}

#[derive(Debug)]
pub struct Queue {
    resources: Resources,
    /// Indexes into `resources.gpus` that no run holds.
    free: BTreeSet<usize>,
    /// Runs started (and adopted) and the GPUs (indexes) each holds, until they end.
    holding: HashMap<String, (Option<u32>, Vec<usize>)>,
    /// In start order (see the module's comment).
    waiting: Vec<Entry>,
    arrivals: u64,
}

impl Queue {
    pub fn new(resources: Resources) -> Queue {
        Queue {
            free: (0..resources.gpus.len()).collect(),
            resources,
            holding: HashMap::new(),
            waiting: Vec::new(),
            arrivals: 0,
        }
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Refuses what could never start: more GPUs than the daemon has.
    pub fn check(resources: &Resources, gpus: Option<u32>) -> Result<(), String> {
        let want = gpus.unwrap_or(0) as usize;
        if want > resources.gpus.len() {
            return Err(format!(
                "the run asks for {want} GPU{} and guildd has {} ({}); set them with GUILD_GPUS or `guildd --gpus 0,1,...`",
                if want == 1 { "" } else { "s" },
                resources.gpus.len(),
                if resources.gpus.is_empty() {
                    "none found through NVML".to_string()
                } else {
                    resources.gpus.join(",")
                }
            ));
        }
        Ok(())
    }

    /// A run that holds resources already (adopted by a restarted daemon): its GPUs by
    /// name (names the daemon no longer has are left out) count as taken.
    pub fn hold(&mut self, id: &str, gpus: &[String]) {
        let taken: Vec<usize> = gpus
            .iter()
            .filter_map(|name| self.resources.gpus.iter().position(|g| g == name))
            .filter(|i| self.free.remove(i))
            .collect();
        let asked = (!gpus.is_empty()).then_some(taken.len() as u32);
        self.holding.insert(id.to_string(), (asked, taken));
    }

    /// Puts a run in the queue (it starts at the next [`dispatch`](Self::dispatch) that
    /// finds room for it).
    pub fn push(&mut self, request: Request) {
        self.waiting.retain(|e| e.request.id != request.id);
        self.arrivals += 1;
        let entry = Entry {
            request,
            arrival: self.arrivals,
        };
        let at = self
            .waiting
            .iter()
            .position(|e| e.request.priority < entry.request.priority)
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, entry);
    }

    /// A run that asks to start now: its grant when it may (with any other run that the
    /// same pass lets start), else None and it is not kept (the caller queues it with
    /// [`push`](Self::push) once it is recorded as queued).
    pub fn admit(&mut self, request: Request) -> (Option<Grant>, Vec<Grant>) {
        let id = request.id.clone();
        self.push(request);
        let mut granted = self.dispatch();
        let own = granted.iter().position(|g| g.id == id).map(|i| granted.remove(i));
        if own.is_none() {
            self.waiting.retain(|e| e.request.id != id);
        }
        (own, granted)
    }

    /// Every waiting run that may start now, in order, with its GPUs (taken from the
    /// lowest free ones); they hold them until [`release`](Self::release).
    pub fn dispatch(&mut self) -> Vec<Grant> {
        let mut granted = Vec::new();
        let mut gpu_blocked = false;
        let mut i = 0;
        while i < self.waiting.len() {
            if self.resources.max_runs.is_some_and(|max| self.holding.len() >= max) {
                break;
            }
            let want = self.waiting[i].request.gpus.unwrap_or(0) as usize;
            if want > 0 && (gpu_blocked || want > self.free.len()) {
                gpu_blocked = true;
                i += 1;
                continue;
            }
            let entry = self.waiting.remove(i);
            let taken: Vec<usize> = self.free.iter().copied().take(want).collect();
            for gpu in &taken {
                self.free.remove(gpu);
            }
            let gpus = entry
                .request
                .gpus
                .map(|_| taken.iter().map(|&g| self.resources.gpus[g].clone()).collect());
            self.holding
                .insert(entry.request.id.clone(), (entry.request.gpus, taken));
            granted.push(Grant {
                id: entry.request.id,
                gpus,
            });
        }
        granted
    }

    /// A run that held resources ended (or never started): they are free again. False
    /// when it held none.
    pub fn release(&mut self, id: &str) -> bool {
        match self.holding.remove(id) {
            Some((_, gpus)) => {
                self.free.extend(gpus);
                true
            }
            None => false,
        }
    }

    /// Takes a waiting run out of the queue; false when it is not waiting.
    pub fn cancel(&mut self, id: &str) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|e| e.request.id != id);
        self.waiting.len() != before
    }

    /// Moves a waiting run to its place for a new priority (after the runs of that
    /// priority that asked before it); false when it is not waiting.
    pub fn set_priority(&mut self, id: &str, priority: i32) -> bool {
        let Some(at) = self.waiting.iter().position(|e| e.request.id == id) else {
            return false;
        };
        let mut entry = self.waiting.remove(at);
        entry.request.priority = priority;
        let at = self
            .waiting
            .iter()
            .position(|e| {
                e.request.priority < priority || (e.request.priority == priority && e.arrival > entry.arrival)
            })
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, entry);
        true
    }

    /// The waiting runs in start order.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.waiting
            .iter()
            .enumerate()
            .map(|(i, e)| Waiting {
                id: e.request.id.clone(),
                position: i + 1,
                gpus: e.request.gpus,
                priority: e.request.priority,
            })
            .collect()
    }

    /// One waiting run's place (its position found by a scan, nothing copied).
    pub fn waiting_one(&self, id: &str) -> Option<Waiting> {
        self.waiting.iter().position(|e| e.request.id == id).map(|i| {
            let request = &self.waiting[i].request;
            Waiting {
                id: request.id.clone(),
                position: i + 1,
                gpus: request.gpus,
                priority: request.priority,
            }
        })
    }

    pub fn is_waiting(&self, id: &str) -> bool {
        self.waiting.iter().any(|e| e.request.id == id)
    }

    /// The GPUs a run holds, by name (None: it holds none from the queue).
    pub fn assigned(&self, id: &str) -> Option<Vec<String>> {
        let (asked, gpus) = self.holding.get(id)?;
        asked.map(|_| gpus.iter().map(|&g| self.resources.gpus[g].clone()).collect())
    }

    /// The GPUs each run holds, by name (runs that asked for none left out).
    pub fn assignments(&self) -> Vec<(String, Vec<String>)> {
        self.holding
            .keys()
            .filter_map(|id| self.assigned(id).map(|gpus| (id.clone(), gpus)))
            .collect()
    }

    /// GPUs no run holds, by name, in order.
    pub fn free_gpus(&self) -> Vec<String> {
        self.free.iter().map(|&g| self.resources.gpus[g].clone()).collect()
    }

    /// Runs holding resources, and runs waiting.
    pub fn counts(&self) -> (usize, usize) {
        (self.holding.len(), self.waiting.len())
    }
}

#[cfg(test)]
mod tests;
