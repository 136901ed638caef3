//! The daemon's one stats sampler: a thread that owns the `Sampler` (one sysinfo
//! `System`, NVML) and, on a shared clock, sends each registered run its system and
//! process-tree samples. Runs with the same interval are sampled from one refresh.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::gpu::{self, GpuSource, NoGpu};
use super::stats::{Sample, Sampler};
use crate::samples::SampleRow;

/// Stats every 2 s by default: live charts for a cost of about 2 ms of one core per
/// refresh on the build machine (0.1%), shared by every run due at that moment.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// sysinfo needs at least this long between refreshes for CPU figures.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

enum Command {
    Register {
        run: String,
        root_pid: u32,
        interval: Duration,
        sink: tokio_mpsc::Sender<Vec<SampleRow>>,
    },
    /// Stops sampling a run; replies with one last sample.
    Unregister {
        run: String,
        reply: oneshot::Sender<Vec<SampleRow>>,
    },
    /// The GPUs NVML sees (its indexes), for the queue.
    Gpus { reply: oneshot::Sender<Vec<u32>> },
    /// Host facts and the GPUs a run may use, for its attrs.
    HostAttrs {
        cuda_visible_devices: Option<String>,
        reply: oneshot::Sender<Vec<(String, String)>>,
    },
}

struct Registration {
    root_pid: u32,
    interval: Duration,
    due: Instant,
    sink: tokio_mpsc::Sender<Vec<SampleRow>>,
}

#[derive(Clone)]
pub struct StatsService {
    commands: mpsc::Sender<Command>,
}

impl StatsService {
    /// Starts the sampler thread. NVML is loaded when present; without it the daemon
    /// logs one info line and samples everything else.
    pub fn start() -> StatsService {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("guild-sampler".into()).spawn(move || {
            let source: Box<dyn GpuSource + Send> = match gpu::open_nvml() {
                Ok(nvml) => Box::new(nvml),
                Err(reason) => {
                    tracing::info!("no GPU stats: {reason}");
                    Box::new(NoGpu)
                }
            };
            sampler_loop(Sampler::new(source), rx);
        });
        if let Err(err) = spawned {
            tracing::error!("cannot start the stats sampler: {err}");
        }
        StatsService { commands: tx }
    }

    pub fn register(&self, run: &str, root_pid: u32, interval: Duration, sink: tokio_mpsc::Sender<Vec<SampleRow>>) {
        let interval = interval.max(MIN_INTERVAL);
        let _ = self.commands.send(Command::Register {
            run: run.to_string(),
            root_pid,
            interval,
            sink,
        });
    }

    /// Stops sampling the run and returns its final sample (empty if it was not registered).
    pub async fn unregister(&self, run: &str) -> Vec<SampleRow> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Unregister {
                run: run.to_string(),
                reply,
            })
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The GPUs NVML found (their indexes; none without NVML).
    pub async fn gpus(&self) -> Vec<u32> {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Gpus { reply }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    pub async fn host_attrs(&self, cuda_visible_devices: Option<String>) -> Vec<(String, String)> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::HostAttrs {
                cuda_visible_devices,
                reply,
            })
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn rows(samples: impl IntoIterator<Item = Sample>, time: i64) -> Vec<SampleRow> {
    samples
        .into_iter()
        .map(|s| SampleRow {
            key: s.key.into(),
            step: None,
            time,
            value: s.value,
        })
        .collect()
}

/// The next multiple of `interval` after `now`, on a clock shared by every run, so
/// runs with one interval fall due together.
fn next_due(epoch: Instant, now: Instant, interval: Duration) -> Instant {
    let elapsed = now.duration_since(epoch).as_nanos();
    let step = interval.as_nanos().max(1);
    let next = (elapsed / step + 1) * step;
    epoch + Duration::from_nanos(next.min(u64::MAX as u128) as u64)
}

fn sampler_loop(mut sampler: Sampler, commands: mpsc::Receiver<Command>) {
    let epoch = Instant::now();
    let mut last_refresh = epoch;
    let mut system: Vec<Sample> = Vec::new();
    let mut runs: HashMap<String, Registration> = HashMap::new();
    // Refreshes when the last one is old enough for CPU figures; otherwise reuses it.
    // Only the runs' process trees are refreshed, not every process on the host.
    let mut refresh = |sampler: &mut Sampler, system: &mut Vec<Sample>, now: Instant, roots: &[u32]| {
        if system.is_empty() || now.duration_since(last_refresh) >= MIN_INTERVAL {
            *system = sampler.sample_system_for(roots);
            last_refresh = now;
        }
    };
    loop {
        let wait = runs
            .values()
            .map(|r| r.due)
            .min()
            .map(|due| due.saturating_duration_since(Instant::now()));
        let command = match wait {
            Some(wait) => commands.recv_timeout(wait),
            None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match command {
            Ok(Command::Register {
                run,
                root_pid,
                interval,
                sink,
            }) => {
                // A first sample as the run starts: its process tree's memory.
                let first = super::stats::tree_memory(root_pid);
                if !first.is_empty() {
                    let _ = sink.try_send(rows(first, guild_proto::time::now_ms()));
                }
                let due = next_due(epoch, Instant::now(), interval);
                runs.insert(
                    run,
                    Registration {
                        root_pid,
                        interval,
                        due,
                        sink,
                    },
                );
            }
            Ok(Command::Unregister { run, reply }) => {
                let roots: Vec<u32> = runs.values().map(|r| r.root_pid).collect();
                let last = match runs.remove(&run) {
                    Some(reg) => {
                        let now = Instant::now();
                        refresh(&mut sampler, &mut system, now, &roots);
                        let time = guild_proto::time::now_ms();
                        let mut out = rows(system.iter().cloned(), time);
                        out.extend(rows(sampler.sample_process_tree(reg.root_pid), time));
                        out
                    }
                    None => Vec::new(),
                };
                let _ = reply.send(last);
            }
            Ok(Command::Gpus { reply }) => {
                let _ = reply.send(sampler.gpu_readings().iter().map(|r| r.index).collect());
            }
            Ok(Command::HostAttrs {
                cuda_visible_devices,
                reply,
            }) => {
                let roots: Vec<u32> = runs.values().map(|r| r.root_pid).collect();
                refresh(&mut sampler, &mut system, Instant::now(), &roots);
                let mut attrs = sampler.host_attrs();
                let visible = gpu::visible_gpus(cuda_visible_devices.as_deref(), sampler.gpu_readings());
                attrs.push((
                    "gpus".into(),
                    visible.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                ));
                let _ = reply.send(attrs);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if !runs.values().any(|r| r.due <= now) {
            continue;
        }
        let roots: Vec<u32> = runs.values().map(|r| r.root_pid).collect();
        refresh(&mut sampler, &mut system, now, &roots);
        let time = guild_proto::time::now_ms();
        runs.retain(|_, reg| {
            if reg.due > now {
                return true;
            }
            reg.due = next_due(epoch, now, reg.interval);
            let mut out = rows(system.iter().cloned(), time);
            out.extend(rows(sampler.sample_process_tree(reg.root_pid), time));
            match reg.sink.try_send(out) {
                // A run task too busy to take this sample misses it; the next one comes.
                Ok(()) | Err(tokio_mpsc::error::TrySendError::Full(_)) => true,
                Err(tokio_mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_one_interval_fall_due_together() {
        let epoch = Instant::now();
        let second = Duration::from_secs(1);
        let a = next_due(epoch, epoch + Duration::from_millis(130), second);
        let b = next_due(epoch, epoch + Duration::from_millis(870), second);
        assert_eq!(a, b);
        assert_eq!(a, epoch + second);
        assert_eq!(next_due(epoch, epoch + second, second), epoch + 2 * second);
    }
}
