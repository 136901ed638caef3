//! The node's side of a Slurm run, and how guildd reads it: the run's supervisor (in the
//! job, on the cluster's node) appends JSON lines to `guild.d/node.jsonl`, and guildd
//! tails that file into run.db as it tails the output files, so guildd stays the only
//! writer of run.db and a restart resumes at the committed offset (no sample lost or
//! doubled).
//!
//! ```text
//! {"started_ms":1764979200000,"host":"node7","pid":4242}        the op started
//! {"attrs":{"cpu_model":"...","cpu_cores":"64","gpu_count":"4"}}  the node's facts
//! {"time":1764979202000,"samples":{"sys/cpu/util":0.31,"op/mem/rss":1.2e9}}
//! ```
//!
//! Samples are the local sampler's (`collectors::stats`): `sys/*`, `op/*` for the
//! supervisor's process tree (the op and its children), `sys/gpu<i>/*` through NVML.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::collectors::gpu::{self, GpuSource, NoGpu};
use crate::collectors::stats::{Sample, Sampler};
use crate::samples::SampleRow;

/// The file in `guild.d/`.
pub const NODE_FILE: &str = "node.jsonl";
/// At most this much is read per poll (the rest at the next).
const READ_LIMIT: u64 = 1024 * 1024;
/// A line longer than this is not ours: skipped.
const LINE_LIMIT: usize = 1024 * 1024;

fn write_line(file: &mut File, value: serde_json::Value) {
    let mut line = value.to_string();
    line.push('\n');
    // One write per line, appended: a reader sees whole lines or waits for the newline.
    // Nothing to do when it fails (a full disk): the samples are lost, the run goes on.
    let _ = file.write_all(line.as_bytes());
}

fn samples_line(samples: &[Sample]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = samples
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| (s.key.clone(), serde_json::Value::from(s.value)))
        .collect();
    serde_json::json!({"time": guild_proto::time::now_ms(), "samples": map})
}

/// The sampler thread the supervisor runs beside the op, on the node.
pub struct NodeStats {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeStats {
    /// Says the op started (the first line), then samples the tree rooted at `root`
    /// every `interval` seconds (0: no samples) until [`NodeStats::finish`].
    pub fn start(guild_d: &Path, root: u32, interval: f64) -> Option<NodeStats> {
        let path = guild_d.join(NODE_FILE);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
        let host = whoami::hostname().unwrap_or_default();
        write_line(
            &mut file,
            serde_json::json!({"started_ms": guild_proto::time::now_ms(), "host": host, "pid": root}),
        );
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = stop.clone();
        let interval = (interval.is_finite() && interval > 0.0)
            .then(|| Duration::from_secs_f64(interval).max(crate::collectors::sampler::MIN_INTERVAL));
        let thread = std::thread::Builder::new()
            .name("guild-node-stats".into())
            .spawn(move || sample(file, root, interval, &stopped))
            .ok();
        Some(NodeStats { stop, thread })
    }

    /// Takes a last sample and waits for it to be written.
    pub fn finish(mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn sample(mut file: File, root: u32, interval: Option<Duration>, stop: &(Mutex<bool>, Condvar)) {
    let source: Box<dyn GpuSource + Send> = match gpu::open_nvml() {
        Ok(nvml) => Box::new(nvml),
        Err(_) => Box::new(NoGpu),
    };
    let mut sampler = Sampler::new(source);
    let mut attrs = sampler.host_attrs();
    let visible = gpu::visible_gpus(
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        sampler.gpu_readings(),
    );
    attrs.push((
        "gpus".into(),
        visible.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
    ));
    let attrs: serde_json::Map<String, serde_json::Value> = attrs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    write_line(&mut file, serde_json::json!({ "attrs": attrs }));
    let Some(interval) = interval else { return };
    // The tree's memory at once (CPU use needs two readings, so it waits for the first
    // interval), as a local run's first sample.
    let first = crate::collectors::stats::tree_memory(root);
    if !first.is_empty() {
        write_line(&mut file, samples_line(&first));
    }
    let (lock, wake) = stop;
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let last = *done;
        if !last {
            let (guard, _) = wake.wait_timeout(done, interval).unwrap_or_else(|e| e.into_inner());
            done = guard;
        }
        let mut samples = sampler.sample_system_for(&[root]);
        samples.extend(sampler.sample_process_tree(root));
        write_line(&mut file, samples_line(&samples));
        if last || *done {
            return;
        }
    }
}

/// What a poll of the node file found.
#[derive(Default)]
pub struct NodeFound {
    pub samples: Vec<SampleRow>,
    /// The op started at this time (ms) on this host, as pid.
    pub started: Option<(i64, String, u32)>,
    /// The node's facts, for the run's attrs.
    pub attrs: Vec<(String, String)>,
    /// How far the file is read (to commit with the samples).
    pub offset: Option<(String, u64)>,
    /// Lines that were not ours, for errors.log.
    pub issues: Vec<String>,
    /// More than one poll's worth was there.
    pub more: bool,
}

/// guildd's reader of the node file.
pub struct NodeTail {
    path: PathBuf,
    /// Everything before it is in run.db (or in a batch on its way).
    offset: u64,
    reported: u64,
    carry: Vec<u8>,
    keys: HashMap<String, Arc<str>>,
}

impl NodeTail {
    /// `offsets`: run.db's `tail_offset`.
    pub fn new(guild_d: &Path, offsets: &HashMap<String, u64>) -> NodeTail {
        let offset = offsets.get(NODE_FILE).copied().unwrap_or(0);
        NodeTail {
            path: guild_d.join(NODE_FILE),
            offset,
            reported: offset,
            carry: Vec::new(),
            keys: HashMap::new(),
        }
    }

    /// Reads the whole lines the file gained. The file is opened afresh each time: on a
    /// network filesystem, an open is what makes another node's writes visible.
    pub fn poll(&mut self) -> NodeFound {
        let mut found = NodeFound::default();
        let Ok(file) = File::open(&self.path) else {
            return found;
        };
        let pos = self.offset + self.carry.len() as u64;
        let size = file.metadata().map_or(0, |m| m.len());
        if size > pos {
            let want = (size - pos).min(READ_LIMIT);
            found.more = size - pos > READ_LIMIT;
            let start = self.carry.len();
            self.carry.resize(start + want as usize, 0);
            let mut filled = 0;
            while filled < want as usize {
                match file.read_at(&mut self.carry[start + filled..], pos + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            self.carry.truncate(start + filled);
        }
        let cut = self.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let whole: Vec<u8> = self.carry.drain(..cut).collect();
        if self.carry.len() > LINE_LIMIT {
            found.issues.push(format!(
                "{}: a line over {} bytes at offset {} is not Guild's: skipped",
                self.path.display(),
                LINE_LIMIT,
                self.offset + cut as u64
            ));
            let skipped = self.carry.len() as u64;
            self.carry.clear();
            self.offset += skipped;
        }
        self.offset += cut as u64;
        for line in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.parse(line, &mut found);
        }
        if self.offset != self.reported {
            found.offset = Some((NODE_FILE.to_string(), self.offset));
            self.reported = self.offset;
        }
        found
    }

    fn key(&mut self, key: &str) -> Arc<str> {
        if let Some(k) = self.keys.get(key) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(key);
        self.keys.insert(key.to_string(), k.clone());
        k
    }

    fn parse(&mut self, line: &[u8], found: &mut NodeFound) {
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(err) => {
                found.issues.push(format!(
                    "{}: a line that is not JSON ({err}): skipped",
                    self.path.display()
                ));
                return;
            }
        };
        if let Some(ms) = value.get("started_ms").and_then(|v| v.as_i64()) {
            let host = value.get("host").and_then(|v| v.as_str()).unwrap_or("").to_string();
            let pid = value.get("pid").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
            found.started = Some((ms, host, pid));
        }
        if let Some(attrs) = value.get("attrs").and_then(|v| v.as_object()) {
            for (name, v) in attrs {
                if let Some(text) = v.as_str() {
                    found.attrs.push((name.clone(), text.to_string()));
                }
            }
        }
        if let (Some(time), Some(samples)) = (
            value.get("time").and_then(|v| v.as_i64()),
            value.get("samples").and_then(|v| v.as_object()),
        ) {
            for (key, v) in samples {
                let Some(number) = v.as_f64() else { continue };
                let key = self.key(key);
                found.samples.push(SampleRow {
                    key,
                    step: None,
                    time,
                    value: number,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `check` with a short backoff (a file another thread writes: nothing to ask).
    fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(5);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    #[test]
    fn the_supervisors_lines_become_samples_attrs_and_a_start() {
        let tmp = tempfile::tempdir().unwrap();
        let guild_d = tmp.path();
        let stats = NodeStats::start(guild_d, std::process::id(), 0.25).expect("node file");
        // Two samples at least: 0.25 s apart.
        let mut tail = NodeTail::new(guild_d, &HashMap::new());
        let mut all = NodeFound::default();
        wait_for("two samples", || {
            let found = tail.poll();
            all.samples.extend(found.samples);
            all.attrs.extend(found.attrs);
            all.started = all.started.take().or(found.started);
            all.samples.iter().filter(|s| &*s.key == "sys/cpu/util").count() >= 2
        });
        stats.finish();
        let (ms, _host, pid) = all.started.expect("the start line");
        assert!(ms > 0);
        assert_eq!(pid, std::process::id());
        assert!(
            all.attrs.iter().any(|(k, v)| k == "gpu_count" && !v.is_empty()),
            "{:?}",
            all.attrs
        );
        assert!(all.attrs.iter().any(|(k, _)| k == "cpu_cores"));
        let keys: std::collections::BTreeSet<&str> = all.samples.iter().map(|s| &*s.key).collect();
        for key in ["sys/cpu/util", "sys/mem/used", "op/mem/rss", "op/cpu/util"] {
            assert!(keys.contains(key), "{key} missing from {keys:?}");
        }
        // A restart resumes at the committed offset: nothing read twice.
        let size = std::fs::metadata(guild_d.join(NODE_FILE)).unwrap().len();
        let mut offsets = HashMap::new();
        offsets.insert(NODE_FILE.to_string(), size);
        let mut again = NodeTail::new(guild_d, &offsets);
        assert!(again.poll().samples.is_empty());
    }

    #[test]
    fn lines_that_are_not_ours_are_skipped_and_told() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(NODE_FILE);
        std::fs::write(
            &path,
            "not json\n{\"time\": 5, \"samples\": {\"sys/cpu/util\": 0.5, \"x\": \"y\"}}\n{\"time\": 6",
        )
        .unwrap();
        let mut tail = NodeTail::new(tmp.path(), &HashMap::new());
        let found = tail.poll();
        assert_eq!(found.issues.len(), 1, "{:?}", found.issues);
        assert_eq!(found.samples.len(), 1);
        assert_eq!((found.samples[0].time, found.samples[0].value), (5, 0.5));
        // The partial line waits for its newline.
        let offset = found.offset.unwrap().1;
        assert_eq!(
            offset,
            std::fs::read(&path).unwrap().iter().rposition(|&b| b == b'\n').unwrap() as u64 + 1
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b", \"samples\": {\"a\": 1}}\n")
            .unwrap();
        let found = tail.poll();
        assert_eq!(found.samples.len(), 1);
        assert_eq!(&*found.samples[0].key, "a");
    }
}
