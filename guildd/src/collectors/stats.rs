//! System, process-tree and GPU sampling for runs.
//!
//! One [`Sampler`] serves the whole daemon: it owns the single `sysinfo::System` (CPU usage
//! in sysinfo is a difference between two refreshes, so several `System`s would each need
//! their own warm-up and would re-read `/proc` for nothing), the network counters, the
//! previous `/proc/diskstats` snapshot and the GPU source. [`Sampler::sample_system`]
//! refreshes everything; [`Sampler::sample_process_tree`] reads that same snapshot for any
//! number of runs.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System, ThreadKind,
};

use crate::collectors::gpu::{GpuProcess, GpuReading, GpuSource, gpu_process_samples, gpu_samples};

/// One scalar figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub key: String,
    pub value: f64,
}

/// Counters of one `/proc/diskstats` line that the samples use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiskCounters {
    reads: u64,
    sectors_read: u64,
    writes: u64,
    sectors_written: u64,
    /// Milliseconds spent doing I/O.
    io_ticks: u64,
}

/// One sampler for the whole daemon.
pub struct Sampler {
    /// `None` only where sysinfo does not support the platform.
    sys: Option<System>,
    networks: Option<Networks>,
    /// Interfaces present at the previous network refresh (a new interface has no rate yet).
    net_prev: HashSet<OsString>,
    net_last: Option<Instant>,
    disk_prev: HashMap<String, DiskCounters>,
    disk_last: Option<Instant>,
    gpu: Box<dyn GpuSource + Send>,
    gpu_readings: Vec<GpuReading>,
    gpu_procs: Vec<GpuProcess>,
    physical_cores: Option<usize>,
    /// Process trees read from /proc at the last [`Sampler::sample_system_for`] (root →
    /// pids); empty after a [`Sampler::sample_system`], which refreshes every process.
    trees: HashMap<u32, HashSet<u32>>,
    /// The pids that refresh refreshed last time (so that ended ones get dropped).
    refreshed: Vec<Pid>,
    /// False once /proc turned out to have no `task/<tid>/children` files.
    proc_children: bool,
}

fn process_refresh_kind() -> ProcessRefreshKind {
    // Threads are not needed (a process's CPU time already includes its threads) and listing
    // them would both cost a /proc/<pid>/task walk and double-count CPU in the tree.
    ProcessRefreshKind::nothing().with_cpu().with_memory().without_tasks()
}

fn push(out: &mut Vec<Sample>, key: impl Into<String>, value: f64) {
    if value.is_finite() {
        out.push(Sample { key: key.into(), value });
    }
}

impl Sampler {
    /// Creates the sampler and does the first refresh (the CPU baseline). The first
    /// [`sample_system`](Self::sample_system) should come at least
    /// `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` (200 ms) later.
    pub fn new(gpu: Box<dyn GpuSource + Send>) -> Self {
        let mut sampler = Sampler {
            sys: System::new().ok(),
            networks: Networks::new().ok(),
            net_prev: HashSet::new(),
            net_last: None,
            disk_prev: HashMap::new(),
            disk_last: None,
            gpu,
            gpu_readings: Vec::new(),
            gpu_procs: Vec::new(),
            physical_cores: System::physical_core_count().ok(),
            trees: HashMap::new(),
            refreshed: Vec::new(),
            proc_children: true,
        };
        sampler.refresh_system();
        sampler.refresh_gpu();
        sampler
    }

    /// CPU (per core; the global figure comes with it), memory, swap and all processes.
    /// CPU must be refreshed before processes: the process refresh reuses the CPU times read
    /// here (sysinfo skips re-reading /proc/stat within 200 ms), so both cover the same span.
    fn refresh_system(&mut self) {
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            sys.refresh_memory_specifics(MemoryRefreshKind::everything());
            sys.refresh_processes_specifics(ProcessesToUpdate::All, true, process_refresh_kind());
        }
    }

    fn refresh_gpu(&mut self) {
        self.gpu_readings = self.gpu.read();
        self.gpu_procs = self.gpu.processes();
    }

    /// Refreshes everything and returns the system-wide samples:
    ///
    /// - `sys/cpu/util`, `sys/cpu<N>/util`: fractions 0..1;
    /// - `sys/mem/{total,used,free,util}`, `sys/swap/{total,used,free,util}`: bytes; `free` is
    ///   the kernel's *MemAvailable* (memory usable without swapping, including reclaimable
    ///   cache), `used = total - free`, `util = used / total` (absent when total is 0, e.g.
    ///   no swap). For swap, `free` is SwapFree;
    /// - `sys/dev<name>/{rps,wps,rkbps,wkbps,util}` for whole block devices (1 kB = 1024 bytes);
    /// - `sys/net/<iface>/{rxkbps,txkbps}` (1 kB = 1024 bytes), `lo` left out;
    /// - `sys/gpu<i>/...` (see [`gpu_samples`]).
    ///
    /// Disk and network figures are rates since the previous call; the first call after
    /// [`new`](Self::new) only takes their baseline and returns none of them.
    ///
    /// Calls (and `new`) must be at least 200 ms apart: sysinfo does not re-read CPU times
    /// sooner, and process CPU shares would then be computed over mismatched spans.
    pub fn sample_system(&mut self) -> Vec<Sample> {
        self.trees.clear();
        self.refresh_system();
        self.finish_sample()
    }

    /// [`sample_system`](Self::sample_system) that refreshes only the processes of the
    /// trees rooted at `roots` (found through /proc's `children` files), not every process
    /// on the host: most of a refresh's cost on a busy machine. Falls back to every
    /// process where /proc has no `children` files.
    pub fn sample_system_for(&mut self, roots: &[u32]) -> Vec<Sample> {
        self.trees.clear();
        if self.proc_children {
            for &root in roots {
                match proc_tree(root) {
                    Some(pids) => {
                        self.trees.insert(root, pids);
                    }
                    None => {
                        self.proc_children = false;
                        self.trees.clear();
                        break;
                    }
                }
            }
        }
        if !self.proc_children {
            self.refresh_system();
            return self.finish_sample();
        }
        let mut pids: Vec<Pid> = self.trees.values().flatten().map(|p| Pid::from_u32(*p)).collect();
        pids.sort_unstable();
        pids.dedup();
        // Pids refreshed last time but gone from the trees now: listed once more so that
        // sysinfo drops the ones that ended.
        let mut listed = pids.clone();
        listed.extend(self.refreshed.iter().filter(|p| pids.binary_search(p).is_err()));
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            sys.refresh_memory_specifics(MemoryRefreshKind::everything());
            if !listed.is_empty() {
                sys.refresh_processes_specifics(ProcessesToUpdate::Some(&listed), true, process_refresh_kind());
            }
        }
        self.refreshed = pids;
        self.finish_sample()
    }

    fn finish_sample(&mut self) -> Vec<Sample> {
        // Every sample reads the GPUs afresh (a reading kept from `new` would repeat the
        // figures of the moment the daemon started).
        self.refresh_gpu();
        let mut out = Vec::with_capacity(64);
        self.cpu_mem_samples(&mut out);
        self.disk_samples(&mut out);
        self.net_samples(&mut out);
        out.extend(gpu_samples(&self.gpu_readings));
        out
    }

    fn cpu_mem_samples(&self, out: &mut Vec<Sample>) {
        let Some(sys) = self.sys.as_ref() else {
            return;
        };
        let frac = |pct: f32| (f64::from(pct) / 100.0).clamp(0.0, 1.0);
        if !sys.cpus().is_empty() {
            push(out, "sys/cpu/util", frac(sys.global_cpu_usage()));
        }
        for (i, cpu) in sys.cpus().iter().enumerate() {
            push(out, format!("sys/cpu{i}/util"), frac(cpu.usage()));
        }
        let mut mem = |prefix: &str, total: u64, free: u64| {
            let free = free.min(total);
            let used = total - free;
            push(out, format!("{prefix}/total"), total as f64);
            push(out, format!("{prefix}/used"), used as f64);
            push(out, format!("{prefix}/free"), free as f64);
            if total > 0 {
                push(out, format!("{prefix}/util"), used as f64 / total as f64);
            }
        };
        mem("sys/mem", sys.total_memory(), sys.available_memory());
        mem("sys/swap", sys.total_swap(), sys.free_swap());
    }

    fn disk_samples(&mut self, out: &mut Vec<Sample>) {
        let now = Instant::now();
        let Ok(text) = std::fs::read_to_string("/proc/diskstats") else {
            return;
        };
        let current = whole_disks(parse_diskstats(&text));
        let elapsed = self.disk_last.map(|t| now.duration_since(t).as_secs_f64());
        if let Some(secs) = elapsed.filter(|s| *s > 0.0) {
            for (name, cur) in &current {
                let Some(prev) = self.disk_prev.get(name) else {
                    continue; // new device: no baseline yet
                };
                let Some(d) = cur.delta(prev) else {
                    continue; // counters went back (device reset or 32-bit wrap): skip once
                };
                let p = format!("sys/dev{name}");
                push(out, format!("{p}/rps"), d.reads as f64 / secs);
                push(out, format!("{p}/wps"), d.writes as f64 / secs);
                // diskstats sectors are always 512 bytes: 2 sectors per kB.
                push(out, format!("{p}/rkbps"), d.sectors_read as f64 / 2.0 / secs);
                push(out, format!("{p}/wkbps"), d.sectors_written as f64 / 2.0 / secs);
                let util = d.io_ticks as f64 / (secs * 1000.0);
                push(out, format!("{p}/util"), util.clamp(0.0, 1.0));
            }
        }
        self.disk_prev = current.into_iter().collect();
        self.disk_last = Some(now);
    }

    fn net_samples(&mut self, out: &mut Vec<Sample>) {
        let Some(networks) = self.networks.as_mut() else {
            return;
        };
        let now = Instant::now();
        networks.refresh(true);
        let elapsed = self.net_last.map(|t| now.duration_since(t).as_secs_f64());
        if let Some(secs) = elapsed.filter(|s| *s > 0.0) {
            let mut names: Vec<&OsString> = networks
                .keys()
                .filter(|n| n.as_os_str() != "lo" && self.net_prev.contains(*n))
                .collect();
            names.sort();
            for name in names {
                let Some(data) = networks.get(name) else {
                    continue;
                };
                let p = format!("sys/net/{}", name.to_string_lossy());
                push(out, format!("{p}/rxkbps"), data.received() as f64 / 1024.0 / secs);
                push(out, format!("{p}/txkbps"), data.transmitted() as f64 / 1024.0 / secs);
            }
        }
        self.net_prev = networks.keys().cloned().collect();
        self.net_last = Some(now);
    }

    /// Samples for the process tree rooted at `root_pid` (the root and all its descendants,
    /// through the parent links of the last refresh; threads are not separate entries):
    /// `op/cpu/util` (sum, in cores: 1.5 = one and a half cores busy), `op/mem/rss`,
    /// `op/mem/vms` (bytes, summed) and `op/gpu<i>/mem/used` for the GPUs the tree uses.
    /// Empty if the root is not in the last refresh (not started yet, or gone).
    /// Processes that appeared since the previous refresh count with 0 CPU (no baseline yet).
    pub fn sample_process_tree(&self, root_pid: u32) -> Vec<Sample> {
        let Some(sys) = self.sys.as_ref() else {
            return Vec::new();
        };
        let pids = match self.trees.get(&root_pid) {
            Some(pids) if sys.process(Pid::from_u32(root_pid)).is_some() => pids.clone(),
            Some(_) => HashSet::new(),
            None => tree_pids(sys, root_pid),
        };
        if pids.is_empty() {
            return Vec::new();
        }
        let (mut cpu_pct, mut rss, mut vms) = (0.0_f64, 0_u64, 0_u64);
        for pid in &pids {
            if let Some(p) = sys.process(Pid::from_u32(*pid)) {
                cpu_pct += f64::from(p.cpu_usage());
                rss = rss.saturating_add(p.memory());
                vms = vms.saturating_add(p.virtual_memory());
            }
        }
        // A tree that reads no memory at all has ended (its root a zombie in the last
        // refresh, which a run's last sample may reuse): nothing rather than a false 0.
        if rss == 0 && vms == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(4);
        push(&mut out, "op/cpu/util", cpu_pct / 100.0);
        push(&mut out, "op/mem/rss", rss as f64);
        push(&mut out, "op/mem/vms", vms as f64);
        out.extend(gpu_process_samples(&self.gpu_procs, &pids));
        out
    }

    /// Host facts for run attributes. Values are strings: `cpu_model`, `cpu_cores` (logical),
    /// `cpu_physical_cores`, `mem_total` (bytes), `gpu_count`, `gpu<i>_name`, `gpu<i>_uuid`,
    /// `driver_version`, `cuda_version`. Facts that cannot be read are left out
    /// (`gpu_count` is always there, `0` without GPUs). GPU facts come from the last refresh.
    /// The GPUs as of the last refresh.
    pub fn gpu_readings(&self) -> &[GpuReading] {
        &self.gpu_readings
    }

    pub fn host_attrs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(sys) = self.sys.as_ref() {
            if let Some(brand) = sys.cpus().first().map(|c| c.brand().trim()).filter(|b| !b.is_empty()) {
                out.push(("cpu_model".to_string(), brand.to_string()));
            }
            if !sys.cpus().is_empty() {
                out.push(("cpu_cores".to_string(), sys.cpus().len().to_string()));
            }
            if let Some(n) = self.physical_cores {
                out.push(("cpu_physical_cores".to_string(), n.to_string()));
            }
            if sys.total_memory() > 0 {
                out.push(("mem_total".to_string(), sys.total_memory().to_string()));
            }
        }
        out.push(("gpu_count".to_string(), self.gpu_readings.len().to_string()));
        for r in &self.gpu_readings {
            if !r.name.is_empty() {
                out.push((format!("gpu{}_name", r.index), r.name.clone()));
            }
            if !r.uuid.is_empty() {
                out.push((format!("gpu{}_uuid", r.index), r.uuid.clone()));
            }
        }
        if let Some(v) = self.gpu.driver_version() {
            out.push(("driver_version".to_string(), v));
        }
        if let Some(v) = self.gpu.cuda_version() {
            out.push(("cuda_version".to_string(), v));
        }
        out
    }
}

/// The memory of the process tree rooted at `root` (`op/mem/rss`, `op/mem/vms`, as the
/// sampler reports them), read from /proc without a refresh: a run's first sample, taken
/// as it starts, so a run shorter than the stats interval has its op series too. CPU
/// use needs two readings apart, so it waits for the first interval. Empty when the
/// root is gone or /proc lacks `children` files.
pub fn tree_memory(root: u32) -> Vec<Sample> {
    let Some(pids) = proc_tree(root) else {
        return Vec::new();
    };
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    let (mut rss, mut vms, mut any) = (0u64, 0u64, false);
    for stat in pids.iter().filter_map(|pid| crate::process::Stat::of(*pid)) {
        any = true;
        rss = rss.saturating_add(stat.rss_pages.saturating_mul(page));
        vms = vms.saturating_add(stat.vsize);
    }
    let mut out = Vec::new();
    if any {
        push(&mut out, "op/mem/rss", rss as f64);
        push(&mut out, "op/mem/vms", vms as f64);
    }
    out
}

/// The root and its descendants from /proc/<pid>/task/<tid>/children (empty if the root
/// is gone). `None` if the kernel does not provide those files.
fn proc_tree(root: u32) -> Option<HashSet<u32>> {
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // ended
        };
        if !seen.insert(pid) {
            continue;
        }
        for task in tasks.flatten() {
            match std::fs::read_to_string(task.path().join("children")) {
                Ok(text) => stack.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && task.path().is_dir() => return None,
                Err(_) => {}
            }
        }
    }
    Some(seen)
}

/// The root and every process whose parent chain reaches it. Empty if the root is unknown.
fn tree_pids(sys: &System, root_pid: u32) -> HashSet<u32> {
    let root = Pid::from_u32(root_pid);
    if sys.process(root).is_none() {
        return HashSet::new();
    }
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for (pid, p) in sys.processes() {
        if p.thread_kind() == Some(ThreadKind::Userland) {
            continue;
        }
        if let Some(parent) = p.parent().filter(|parent| parent != pid) {
            children.entry(parent).or_default().push(*pid);
        }
    }
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if seen.insert(pid.as_u32())
            && let Some(kids) = children.get(&pid)
        {
            stack.extend(kids.iter().copied());
        }
    }
    seen
}

impl DiskCounters {
    /// `None` if any counter went backwards.
    fn delta(&self, prev: &DiskCounters) -> Option<DiskCounters> {
        Some(DiskCounters {
            reads: self.reads.checked_sub(prev.reads)?,
            sectors_read: self.sectors_read.checked_sub(prev.sectors_read)?,
            writes: self.writes.checked_sub(prev.writes)?,
            sectors_written: self.sectors_written.checked_sub(prev.sectors_written)?,
            io_ticks: self.io_ticks.checked_sub(prev.io_ticks)?,
        })
    }
}

/// Parses `/proc/diskstats` lines: `major minor name reads reads_merged sectors_read ms_read
/// writes writes_merged sectors_written ms_written in_flight io_ticks ...`. Malformed lines
/// are skipped.
fn parse_diskstats(text: &str) -> Vec<(String, DiskCounters)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 13 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some((
                f[2].to_string(),
                DiskCounters {
                    reads: n(3)?,
                    sectors_read: n(5)?,
                    writes: n(7)?,
                    sectors_written: n(9)?,
                    io_ticks: n(12)?,
                },
            ))
        })
        .collect()
}

/// Keeps whole devices: drops `loop*` and `ram*`, and partitions whose parent device is in the
/// list. A partition is named after its disk (kernel rule): `sda` → `sda1`, and with a `p`
/// when the disk name ends in a digit: `nvme0n1` → `nvme0n1p1`, `mmcblk0` → `mmcblk0p2`.
/// `dm-*`, `md*`, `nvme0n10` (next to `nvme0n1`) etc. stay.
fn whole_disks(devs: Vec<(String, DiskCounters)>) -> Vec<(String, DiskCounters)> {
    let names: HashSet<String> = devs.iter().map(|(n, _)| n.clone()).collect();
    let is_partition = |name: &str| {
        name.char_indices().any(|(i, _)| {
            let (parent, rest) = name.split_at(i);
            if parent.is_empty() || !names.contains(parent) {
                return false;
            }
            let digits = if parent.ends_with(|c: char| c.is_ascii_digit()) {
                rest.strip_prefix('p')
            } else {
                Some(rest)
            };
            digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    devs.into_iter()
        .filter(|(name, _)| !name.starts_with("loop") && !name.starts_with("ram") && !is_partition(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::gpu::NoGpu;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    fn as_map(samples: &[Sample]) -> BTreeMap<String, f64> {
        samples.iter().map(|s| (s.key.clone(), s.value)).collect()
    }

    /// 250 ms: above sysinfo's 200 ms minimum for CPU usage.
    const INTERVAL: Duration = Duration::from_millis(250);

    /// A CPU-burning child, killed on drop.
    struct Burner(std::process::Child);

    impl Burner {
        fn start() -> Burner {
            let child = std::process::Command::new("python3")
                .args(["-c", "while True: pass"])
                .spawn()
                .expect("python3 must be available for this test");
            Burner(child)
        }

        /// The child's CPU time (utime + stime) in seconds, from /proc.
        fn cpu_seconds(&self) -> Option<f64> {
            let stat = crate::process::Stat::of(self.0.id())?;
            let ticks = stat.utime + stat.stime;
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            (hz > 0).then(|| ticks as f64 / hz as f64)
        }

        /// Waits (up to 5 s) until the child has used some CPU time: sysinfo computes no
        /// usage for a process whose CPU time was zero at the previous refresh (and the
        /// child may start behind a pyenv shim).
        fn wait_for_cpu_time(&self) {
            for _ in 0..100 {
                if self.cpu_seconds().is_some_and(|t| t > 0.0) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Burner {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn sampler_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Sampler>();
    }

    #[test]
    fn tree_only_refresh_matches_the_process_tree() {
        let burner = Burner::start();
        burner.wait_for_cpu_time();
        let me = std::process::id();
        let tree = proc_tree(me).expect("this kernel has /proc/<pid>/task/<tid>/children");
        assert!(tree.contains(&me) && tree.contains(&burner.0.id()), "{tree:?}");
        assert_eq!(proc_tree(u32::MAX), Some(HashSet::new()), "no such root");

        let mut sampler = Sampler::new(Box::new(NoGpu));
        std::thread::sleep(INTERVAL);
        let _ = sampler.sample_system_for(&[me]);
        std::thread::sleep(INTERVAL);
        let system = as_map(&sampler.sample_system_for(&[me]));
        assert!(system.contains_key("sys/cpu/util") && system.contains_key("sys/mem/total"));
        // Only the tree was refreshed, not every process on the host.
        let refreshed: HashSet<u32> = sampler.refreshed.iter().map(|p| p.as_u32()).collect();
        assert_eq!(&refreshed, &sampler.trees[&me]);
        assert!(refreshed.contains(&burner.0.id()));
        let op = as_map(&sampler.sample_process_tree(me));
        assert!(op["op/cpu/util"] > 0.1, "{op:?}");
        assert!(op["op/mem/rss"] > 0.0);
        let child_pid = burner.0.id();
        drop(burner);
        std::thread::sleep(INTERVAL);
        let _ = sampler.sample_system_for(&[me]);
        assert!(
            !sampler.trees[&me].contains(&child_pid),
            "the ended child left the tree"
        );
        let sys = sampler.sys.as_ref().expect("linux has sysinfo");
        assert!(
            sys.process(Pid::from_u32(child_pid)).is_none(),
            "and sysinfo dropped it"
        );
    }

    #[test]
    fn sampler_reports_system_and_process_tree() {
        let burner = Burner::start();
        burner.wait_for_cpu_time();
        let before = (burner.cpu_seconds(), Instant::now());
        let mut sampler = Sampler::new(Box::new(NoGpu));
        std::thread::sleep(INTERVAL);
        let first = as_map(&sampler.sample_system());
        // The child's real share of a core over (about) the same span, from /proc.
        let child_share = burner
            .cpu_seconds()
            .zip(before.0)
            .map(|(t1, t0)| (t1 - t0) / before.1.elapsed().as_secs_f64())
            .expect("child /proc stat readable");

        let cpu = first["sys/cpu/util"];
        assert!((0.0..=1.0).contains(&cpu), "sys/cpu/util {cpu}");
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..ncpu {
            let u = first[&format!("sys/cpu{i}/util")];
            assert!((0.0..=1.0).contains(&u));
        }
        assert!(!first.contains_key(&format!("sys/cpu{ncpu}/util")));

        let total = first["sys/mem/total"];
        assert!(total > 0.0);
        assert_eq!(first["sys/mem/used"] + first["sys/mem/free"], total);
        let util = first["sys/mem/util"];
        assert!((util - first["sys/mem/used"] / total).abs() < 1e-12);
        assert!(first.contains_key("sys/swap/total"));
        if first["sys/swap/total"] == 0.0 {
            assert!(!first.contains_key("sys/swap/util"));
        }
        // First call: disk and network baselines only.
        assert!(
            !first
                .keys()
                .any(|k| k.starts_with("sys/dev") || k.starts_with("sys/net/"))
        );
        assert!(!first.keys().any(|k| k.starts_with("sys/gpu")));

        let tree = as_map(&sampler.sample_process_tree(std::process::id()));
        let op_cpu = tree["op/cpu/util"];
        // The burner gets a whole core unless the host is saturated (a 2-core CI box
        // running other tests); then it must still match what /proc says it got.
        if child_share > 0.6 {
            assert!(op_cpu > 0.5, "op/cpu/util {op_cpu}, child got {child_share:.2} core");
        }
        assert!(
            op_cpu >= child_share - 0.15,
            "op/cpu/util {op_cpu}, child {child_share:.2}"
        );
        assert!(tree["op/mem/rss"] > 0.0);
        assert!(tree["op/mem/vms"] >= tree["op/mem/rss"]);
        assert!(!tree.keys().any(|k| k.starts_with("op/gpu")));
        let pids = tree_pids(sampler.sys.as_ref().expect("linux has sysinfo"), std::process::id());
        assert!(pids.contains(&burner.0.id()), "child in tree");
        assert!(pids.contains(&std::process::id()));
        // The child's own tree is just the child, and it alone burns ~a core.
        let child = as_map(&sampler.sample_process_tree(burner.0.id()))["op/cpu/util"];
        assert!(
            (child - child_share).abs() < 0.15,
            "child {child} vs /proc {child_share:.2}"
        );
        assert!(child <= op_cpu + 1e-9);
        drop(burner);

        std::thread::sleep(INTERVAL);
        let second = as_map(&sampler.sample_system());
        let diskstats = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
        if !whole_disks(parse_diskstats(&diskstats)).is_empty() {
            let dev_keys: Vec<&String> = second.keys().filter(|k| k.starts_with("sys/dev")).collect();
            assert!(!dev_keys.is_empty(), "disk keys on the second call");
            for k in dev_keys {
                assert!(second[k] >= 0.0, "{k}");
                if k.ends_with("/util") {
                    assert!(second[k] <= 1.0);
                }
            }
        }
        assert!(!second.keys().any(|k| k.starts_with("sys/net/lo/")));
        for (k, v) in &second {
            assert!(v.is_finite(), "{k}");
        }

        assert!(sampler.sample_process_tree(u32::MAX).is_empty(), "unknown root");
    }

    #[test]
    fn host_attrs_without_gpu() {
        let sampler = Sampler::new(Box::new(NoGpu));
        let attrs: BTreeMap<String, String> = sampler.host_attrs().into_iter().collect();
        let cores: usize = attrs["cpu_cores"].parse().expect("number");
        assert!(cores >= 1);
        assert!(attrs["mem_total"].parse::<u64>().expect("number") > 0);
        assert_eq!(attrs["gpu_count"], "0");
        assert!(!attrs.contains_key("driver_version"));
        if let Some(phys) = attrs.get("cpu_physical_cores") {
            assert!(phys.parse::<usize>().expect("number") <= cores);
        }
    }

    /// A GPU source: one GPU on which this test process has 3 GiB. Each read reports
    /// utilization 1% higher than the one before (the first read is `new`'s, at 86%).
    struct FakeGpu {
        reads: u32,
    }

    impl GpuSource for FakeGpu {
        fn read(&mut self) -> Vec<GpuReading> {
            self.reads += 1;
            vec![GpuReading {
                index: 0,
                name: "NVIDIA H200".into(),
                uuid: "GPU-12345678-abcd".into(),
                gpu_util: Some(85.0 + f64::from(self.reads)),
                mem_util: Some(40.0),
                mem_used: Some(3 << 30),
                mem_total: Some(141 << 30),
                mem_free: Some(138 << 30),
                temp_c: Some(35.0),
                power_mw: Some(250_000),
                fan_pct: None,
                pstate: Some(0),
            }]
        }
        fn processes(&mut self) -> Vec<GpuProcess> {
            vec![
                GpuProcess {
                    gpu_index: 0,
                    pid: std::process::id(),
                    used_bytes: 3 << 30,
                },
                GpuProcess {
                    gpu_index: 0,
                    pid: u32::MAX - 1,
                    used_bytes: 1 << 30,
                },
            ]
        }
        fn driver_version(&self) -> Option<String> {
            Some("570.86.15".into())
        }
        fn cuda_version(&self) -> Option<String> {
            Some("12.8".into())
        }
    }

    #[test]
    fn sampler_with_fake_gpu() {
        let mut sampler = Sampler::new(Box::new(FakeGpu { reads: 0 }));
        let sys = as_map(&sampler.sample_system());
        assert_eq!(sys["sys/gpu0/gpu/util"], 0.87);
        // Each sample is a fresh reading, for the tree-only refresh too.
        std::thread::sleep(INTERVAL);
        let again = as_map(&sampler.sample_system_for(&[std::process::id()]));
        assert_eq!(again["sys/gpu0/gpu/util"], 0.88);
        assert_eq!(sys["sys/gpu0/mem/total"], (141_u64 << 30) as f64);
        assert_eq!(sys["sys/gpu0/powerdraw"], 250.0);
        assert_eq!(sys["sys/gpu0/pstate"], 0.0);
        assert!(!sys.contains_key("sys/gpu0/fanspeed"));
        let tree = as_map(&sampler.sample_process_tree(std::process::id()));
        assert_eq!(tree["op/gpu0/mem/used"], (3_u64 << 30) as f64);
        let attrs: BTreeMap<String, String> = sampler.host_attrs().into_iter().collect();
        assert_eq!(attrs["gpu_count"], "1");
        assert_eq!(attrs["gpu0_name"], "NVIDIA H200");
        assert_eq!(attrs["gpu0_uuid"], "GPU-12345678-abcd");
        assert_eq!(attrs["driver_version"], "570.86.15");
        assert_eq!(attrs["cuda_version"], "12.8");
    }

    const DISKSTATS: &str = "\
   7       0 loop0 10 0 20 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   1       0 ram0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 25739 4556 2052138 10018 4329 24467 4583400 22610 0 3756 33104 4906 8 279024 464 174 11
 254       1 vda1 25000 4556 2000000 10018 4300 24467 4583000 22610 0 3700 33104 4906 8 279024 464 174 11
   8       0 sda 100 0 800 5 50 0 400 5 0 30 10
   8       1 sda1 90 0 700 5 50 0 400 5 0 30 10
 259       0 nvme0n1 1 0 8 0 1 0 8 0 0 1 0
 259       1 nvme0n1p1 1 0 8 0 1 0 8 0 0 1 0
 259       2 nvme0n10 1 0 8 0 1 0 8 0 0 1 0
 179       0 mmcblk0 1 0 8 0 1 0 8 0 0 1 0
 179       1 mmcblk0p2 1 0 8 0 1 0 8 0 0 1 0
 253       0 dm-1 1 0 8 0 1 0 8 0 0 1 0
 253      10 dm-10 1 0 8 0 1 0 8 0 0 1 0
 252       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 8        16 sdb1 3 0 8 0 1 0 8 0 0 1 0
garbage line
   8      32 sdc x 0 8 0 1 0 8 0 0 1 0
";

    #[test]
    fn diskstats_parsing_and_whole_devices() {
        let parsed = parse_diskstats(DISKSTATS);
        let vda = parsed.iter().find(|(n, _)| n == "vda").map(|(_, c)| *c);
        assert_eq!(
            vda,
            Some(DiskCounters {
                reads: 25739,
                sectors_read: 2052138,
                writes: 4329,
                sectors_written: 4583400,
                io_ticks: 3756,
            })
        );
        assert!(!parsed.iter().any(|(n, _)| n == "sdc"), "malformed line skipped");
        let whole: Vec<String> = whole_disks(parsed).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            whole,
            [
                "vda", "sda", "nvme0n1", "nvme0n10", "mmcblk0", "dm-1", "dm-10", "zram0", "sdb1"
            ]
        );
    }

    #[test]
    fn disk_delta_skips_counters_that_went_back() {
        let a = DiskCounters {
            reads: 10,
            sectors_read: 100,
            writes: 5,
            sectors_written: 50,
            io_ticks: 1000,
        };
        let b = DiskCounters {
            reads: 15,
            sectors_read: 140,
            writes: 5,
            sectors_written: 60,
            io_ticks: 1250,
        };
        assert_eq!(
            b.delta(&a),
            Some(DiskCounters {
                reads: 5,
                sectors_read: 40,
                writes: 0,
                sectors_written: 10,
                io_ticks: 250
            })
        );
        assert_eq!(a.delta(&b), None);
    }
}
