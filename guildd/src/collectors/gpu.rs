//! GPU statistics: a [`GpuSource`] boundary (NVML or nothing) and the pure mapping from
//! readings to samples.
//!
//! NVML is loaded at run time (`libnvidia-ml.so.1`); a host without the library simply has
//! no GPUs. Everything NVML reports per figure is optional: a figure a GPU does not report
//! (fan speed on data-centre GPUs, for example) is absent from the samples, never zero.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;

use nvml_wrapper::enum_wrappers::device::{PerformanceState, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

use crate::collectors::stats::Sample;

/// One GPU's figures at one moment, as NVML reports them (no unit conversion).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    /// NVML index (PCI bus order).
    pub index: u32,
    pub name: String,
    /// `GPU-xxxxxxxx-...`; empty if NVML would not say.
    pub uuid: String,
    /// Percent, 0..100.
    pub gpu_util: Option<f64>,
    /// Percent of time device memory was read or written, 0..100.
    pub mem_util: Option<f64>,
    /// Bytes.
    pub mem_used: Option<u64>,
    pub mem_total: Option<u64>,
    pub mem_free: Option<u64>,
    /// Degrees Celsius.
    pub temp_c: Option<f64>,
    /// Milliwatts.
    pub power_mw: Option<u64>,
    /// Percent of the fan's maximum (NVML notes it may exceed 100).
    pub fan_pct: Option<u32>,
    /// P-state: 0 (maximum performance) ..= 15 (minimum).
    pub pstate: Option<u32>,
}

/// A compute process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuProcess {
    pub gpu_index: u32,
    pub pid: u32,
    pub used_bytes: u64,
}

/// Where GPU figures come from. Implementations never fail as a whole: what cannot be read is
/// left out.
pub trait GpuSource {
    fn read(&mut self) -> Vec<GpuReading>;
    fn processes(&mut self) -> Vec<GpuProcess>;
    fn driver_version(&self) -> Option<String>;
    fn cuda_version(&self) -> Option<String>;
}

/// A host without GPUs (or without NVML).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGpu;

impl GpuSource for NoGpu {
    fn read(&mut self) -> Vec<GpuReading> {
        Vec::new()
    }
    fn processes(&mut self) -> Vec<GpuProcess> {
        Vec::new()
    }
    fn driver_version(&self) -> Option<String> {
        None
    }
    fn cuda_version(&self) -> Option<String> {
        None
    }
}

/// NVML through `nvml-wrapper`. `nvml_wrapper::Nvml` is `Send + Sync` (the crate asserts it
/// with `assert_impl_all!`), so this type is `Send` and can live in a tokio task.
/// `Device` handles borrow the `Nvml`, so they are looked up by index on each read
/// (`nvmlDeviceGetHandleByIndex`, cheap) rather than stored.
pub struct Nvml {
    nvml: nvml_wrapper::Nvml,
    driver_version: Option<String>,
    cuda_version: Option<String>,
}

impl std::fmt::Debug for Nvml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvml")
            .field("driver_version", &self.driver_version)
            .field("cuda_version", &self.cuda_version)
            .finish()
    }
}

/// Library names tried in order.
const NVML_LIBS: [&str; 4] = [
    "libnvidia-ml.so.1",
    "libnvidia-ml.so",
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib64/libnvidia-ml.so.1",
];

/// Loads NVML. `Err` carries a one-line reason for the caller to log (at info level: a host
/// without NVML is a host without GPUs, not a failure); the caller then uses [`NoGpu`].
pub fn open_nvml() -> Result<Nvml, String> {
    let mut not_found = Vec::new();
    for lib in NVML_LIBS {
        match nvml_wrapper::Nvml::builder().lib_path(OsStr::new(lib)).init() {
            Ok(nvml) => {
                let driver_version = nvml.sys_driver_version().ok();
                let cuda_version = nvml.sys_cuda_driver_version().ok().map(|v| {
                    format!(
                        "{}.{}",
                        nvml_wrapper::cuda_driver_version_major(v),
                        nvml_wrapper::cuda_driver_version_minor(v)
                    )
                });
                return Ok(Nvml {
                    nvml,
                    driver_version,
                    cuda_version,
                });
            }
            // The library is not there (dlopen failed): try the next name.
            Err(NvmlError::LibloadingError(e)) => not_found.push(format!("{lib}: {e}")),
            // The library loaded but NVML would not start (no driver, no permission, ...).
            Err(e) => return Err(format!("NVML found ({lib}) but failed to initialize: {e}")),
        }
    }
    Err(format!(
        "NVML library not found, no GPU statistics ({})",
        not_found.join("; ")
    ))
}

fn pstate_number(p: PerformanceState) -> Option<u32> {
    use PerformanceState::*;
    Some(match p {
        Zero => 0,
        One => 1,
        Two => 2,
        Three => 3,
        Four => 4,
        Five => 5,
        Six => 6,
        Seven => 7,
        Eight => 8,
        Nine => 9,
        Ten => 10,
        Eleven => 11,
        Twelve => 12,
        Thirteen => 13,
        Fourteen => 14,
        Fifteen => 15,
        Unknown => return None,
    })
}

impl Nvml {
    fn device_count(&self) -> u32 {
        self.nvml.device_count().unwrap_or(0)
    }
}

impl GpuSource for Nvml {
    fn read(&mut self) -> Vec<GpuReading> {
        let mut out = Vec::new();
        for index in 0..self.device_count() {
            // A device NVML cannot even hand out (lost, no permission) is left out.
            let Ok(dev) = self.nvml.device_by_index(index) else {
                continue;
            };
            let util = dev.utilization_rates().ok();
            let mem = dev.memory_info().ok();
            out.push(GpuReading {
                index,
                name: dev.name().unwrap_or_default(),
                uuid: dev.uuid().unwrap_or_default(),
                gpu_util: util.as_ref().map(|u| f64::from(u.gpu)),
                mem_util: util.as_ref().map(|u| f64::from(u.memory)),
                mem_used: mem.as_ref().map(|m| m.used),
                mem_total: mem.as_ref().map(|m| m.total),
                mem_free: mem.as_ref().map(|m| m.free),
                temp_c: dev.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                power_mw: dev.power_usage().ok().map(u64::from),
                fan_pct: dev.fan_speed(0).ok(),
                pstate: dev.performance_state().ok().and_then(pstate_number),
            });
        }
        out
    }

    fn processes(&mut self) -> Vec<GpuProcess> {
        let mut out = Vec::new();
        for gpu_index in 0..self.device_count() {
            let Ok(dev) = self.nvml.device_by_index(gpu_index) else {
                continue;
            };
            let Ok(procs) = dev.running_compute_processes() else {
                continue;
            };
            for p in procs {
                // `Unavailable` (no figure for this process) is left out rather than counted as 0.
                if let UsedGpuMemory::Used(used_bytes) = p.used_gpu_memory {
                    out.push(GpuProcess {
                        gpu_index,
                        pid: p.pid,
                        used_bytes,
                    });
                }
            }
        }
        out
    }

    fn driver_version(&self) -> Option<String> {
        self.driver_version.clone()
    }

    fn cuda_version(&self) -> Option<String> {
        self.cuda_version.clone()
    }
}

fn push(out: &mut Vec<Sample>, key: String, value: f64) {
    if value.is_finite() {
        out.push(Sample { key, value });
    }
}

/// `sys/gpu<i>/...` samples: utils and fan speed as fractions (NVML percent / 100), memory in
/// bytes, temperature in °C, power in W, pstate as a number. Absent figures give no sample.
pub fn gpu_samples(readings: &[GpuReading]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(readings.len() * 9);
    for r in readings {
        let p = format!("sys/gpu{}/", r.index);
        let figures = [
            ("gpu/util", r.gpu_util.map(|v| v / 100.0)),
            ("mem/util", r.mem_util.map(|v| v / 100.0)),
            ("mem/used", r.mem_used.map(|v| v as f64)),
            ("mem/total", r.mem_total.map(|v| v as f64)),
            ("mem/free", r.mem_free.map(|v| v as f64)),
            ("temp", r.temp_c),
            ("powerdraw", r.power_mw.map(|v| v as f64 / 1000.0)),
            ("fanspeed", r.fan_pct.map(|v| f64::from(v) / 100.0)),
            ("pstate", r.pstate.map(f64::from)),
        ];
        for (name, value) in figures {
            if let Some(v) = value {
                push(&mut out, format!("{p}{name}"), v);
            }
        }
    }
    out
}

/// `op/gpu<i>/mem/used`: GPU memory of the processes in `pids`, summed per GPU. GPUs where
/// none of `pids` runs give no sample. Sorted by GPU index.
pub fn gpu_process_samples(procs: &[GpuProcess], pids: &HashSet<u32>) -> Vec<Sample> {
    let mut per_gpu: BTreeMap<u32, u64> = BTreeMap::new();
    for p in procs.iter().filter(|p| pids.contains(&p.pid)) {
        let sum = per_gpu.entry(p.gpu_index).or_insert(0);
        *sum = sum.saturating_add(p.used_bytes);
    }
    per_gpu
        .into_iter()
        .map(|(i, used)| Sample {
            key: format!("op/gpu{i}/mem/used"),
            value: used as f64,
        })
        .collect()
}

/// Which GPUs (NVML indexes) a process with this `CUDA_VISIBLE_DEVICES` can use.
///
/// - unset: all GPUs in `readings`;
/// - `""` or `-1`: none;
/// - otherwise a comma-separated list of indexes or UUIDs (`GPU-` followed by a unique prefix
///   of the UUID). As CUDA does, the list is read up to the first invalid entry (unknown index,
///   negative number, unknown or ambiguous UUID, empty entry, `MIG-` identifiers); entries
///   before it count. Repeated GPUs are listed once.
///
/// Indexes are matched against NVML indexes, which are PCI bus order. CUDA's own order
/// matches that only with `CUDA_DEVICE_ORDER=PCI_BUS_ID`; with CUDA's default
/// (`FASTEST_FIRST`) the two agree on homogeneous machines, which training hosts usually are.
pub fn visible_gpus(cuda_visible_devices: Option<&str>, readings: &[GpuReading]) -> Vec<u32> {
    let Some(spec) = cuda_visible_devices else {
        return readings.iter().map(|r| r.index).collect();
    };
    let mut out: Vec<u32> = Vec::new();
    if spec.trim().is_empty() {
        return out;
    }
    for entry in spec.split(',').map(str::trim) {
        let found = if entry.starts_with("GPU-") {
            let mut matching = readings
                .iter()
                .filter(|r| !r.uuid.is_empty() && r.uuid.starts_with(entry));
            match (matching.next(), matching.next()) {
                (Some(r), None) => Some(r.index),
                _ => None, // unknown or ambiguous
            }
        } else {
            entry
                .parse::<u32>()
                .ok()
                .filter(|i| readings.iter().any(|r| r.index == *i))
        };
        match found {
            Some(i) => {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(index: u32, uuid: &str) -> GpuReading {
        GpuReading {
            index,
            name: format!("NVIDIA H200 #{index}"),
            uuid: uuid.to_string(),
            ..GpuReading::default()
        }
    }

    fn as_map(samples: &[Sample]) -> BTreeMap<String, f64> {
        samples.iter().map(|s| (s.key.clone(), s.value)).collect()
    }

    #[test]
    fn nvml_and_no_gpu_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Nvml>();
        assert_send::<NoGpu>();
    }

    #[test]
    fn gpu_samples_maps_units_and_leaves_out_absent_figures() {
        let full = GpuReading {
            gpu_util: Some(87.0),
            mem_util: Some(12.0),
            mem_used: Some(1_000),
            mem_total: Some(150_000),
            mem_free: Some(149_000),
            temp_c: Some(41.0),
            power_mw: Some(123_456),
            fan_pct: None, // data-centre GPU: no fan figure
            pstate: Some(0),
            ..reading(0, "GPU-aaaa")
        };
        let sparse = GpuReading {
            gpu_util: Some(5.0),
            fan_pct: Some(30),
            pstate: Some(8),
            ..reading(1, "GPU-bbbb")
        };
        let samples = gpu_samples(&[full, sparse]);
        let expected: Vec<(&str, f64)> = vec![
            ("sys/gpu0/gpu/util", 0.87),
            ("sys/gpu0/mem/util", 0.12),
            ("sys/gpu0/mem/used", 1_000.0),
            ("sys/gpu0/mem/total", 150_000.0),
            ("sys/gpu0/mem/free", 149_000.0),
            ("sys/gpu0/temp", 41.0),
            ("sys/gpu0/powerdraw", 123.456),
            ("sys/gpu0/pstate", 0.0),
            ("sys/gpu1/gpu/util", 0.05),
            ("sys/gpu1/fanspeed", 0.30),
            ("sys/gpu1/pstate", 8.0),
        ];
        assert_eq!(samples.len(), expected.len(), "{samples:?}");
        for (s, (k, v)) in samples.iter().zip(&expected) {
            assert_eq!(s.key, *k);
            assert!((s.value - v).abs() < 1e-12, "{k}: {} != {v}", s.value);
        }
        assert!(!as_map(&samples).contains_key("sys/gpu0/fanspeed"));
        assert!(gpu_samples(&[]).is_empty());
    }

    #[test]
    fn gpu_process_samples_sums_tree_pids_per_gpu() {
        let procs = [
            GpuProcess {
                gpu_index: 0,
                pid: 10,
                used_bytes: 100,
            },
            GpuProcess {
                gpu_index: 0,
                pid: 11,
                used_bytes: 50,
            },
            GpuProcess {
                gpu_index: 0,
                pid: 99,
                used_bytes: 7_000,
            }, // another run
            GpuProcess {
                gpu_index: 1,
                pid: 11,
                used_bytes: 25,
            },
            GpuProcess {
                gpu_index: 2,
                pid: 98,
                used_bytes: 1,
            }, // only other runs
        ];
        let pids: HashSet<u32> = [10, 11, 12].into_iter().collect();
        let got = as_map(&gpu_process_samples(&procs, &pids));
        let want: BTreeMap<String, f64> = [
            ("op/gpu0/mem/used".to_string(), 150.0),
            ("op/gpu1/mem/used".to_string(), 25.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        assert!(gpu_process_samples(&procs, &HashSet::new()).is_empty());
    }

    #[test]
    fn visible_gpus_follows_cuda_semantics() {
        let r = [
            reading(0, "GPU-abc12345-0000"),
            reading(1, "GPU-def67890-1111"),
            reading(2, "GPU-abd00000-2222"),
            reading(3, "GPU-ffff0000-3333"),
        ];
        assert_eq!(visible_gpus(None, &r), vec![0, 1, 2, 3]);
        assert_eq!(visible_gpus(Some("0,1"), &r), vec![0, 1]);
        assert_eq!(visible_gpus(Some("1"), &r), vec![1]);
        assert_eq!(visible_gpus(Some(" 2 , 0 "), &r), vec![2, 0]);
        assert_eq!(visible_gpus(Some("GPU-abc"), &r), vec![0]);
        assert_eq!(visible_gpus(Some("GPU-def67890-1111,3"), &r), vec![1, 3]);
        assert_eq!(visible_gpus(Some("GPU-ab"), &r), Vec::<u32>::new(), "ambiguous prefix");
        assert_eq!(visible_gpus(Some(""), &r), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("-1"), &r), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("0,-1,1"), &r), vec![0]);
        assert_eq!(visible_gpus(Some("1,7,2"), &r), vec![1], "unknown index stops");
        assert_eq!(visible_gpus(Some("1,,2"), &r), vec![1], "empty entry stops");
        assert_eq!(visible_gpus(Some("1,1"), &r), vec![1]);
        assert_eq!(visible_gpus(None, &[]), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("0"), &[]), Vec::<u32>::new());
    }

    #[test]
    fn pstate_numbers() {
        assert_eq!(pstate_number(PerformanceState::Zero), Some(0));
        assert_eq!(pstate_number(PerformanceState::Eight), Some(8));
        assert_eq!(pstate_number(PerformanceState::Fifteen), Some(15));
        assert_eq!(pstate_number(PerformanceState::Unknown), None);
    }

    #[test]
    fn open_nvml_without_library_is_an_err_not_a_panic() {
        // This host has no NVML; on a GPU host this simply opens it.
        match open_nvml() {
            Ok(mut n) => {
                let readings = n.read();
                assert_eq!(gpu_samples(&readings).is_empty(), readings.is_empty());
            }
            Err(why) => assert!(why.contains("NVML"), "{why}"),
        }
    }
}
