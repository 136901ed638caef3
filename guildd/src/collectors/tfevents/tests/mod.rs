//! Tests of the event-file reader, one file per theme: `writers` (real writers' files,
//! value by value), `corruption` (CRCs, corrupt and truncated records, the scan after a
//! corrupt length, oversized records), `incremental` (files read while they grow,
//! resumed from an offset, bounded polls), `values` (tensors as scalars, kinds, half
//! precision, wall times, file names), `fuzz_smoke` (random bytes appended in random
//! pieces) and `throughput` (an ignored timing run). This file holds what they share:
//! fixtures, temporary files, record builders and polling to the end.

mod corruption;
mod fuzz_smoke;
mod incremental;
mod throughput;
mod values;
mod writers;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use super::framing::{HEADER, masked_crc32c};
use super::proto;
use super::{Issue, Kind, Reader, ScalarEvent, is_event_file};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfevents")
}

/// The one event file in `dir`.
fn event_file(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| is_event_file(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    assert_eq!(found.len(), 1, "event files in {}: {found:?}", dir.display());
    found.pop().unwrap()
}

/// The tensorboardX fixture's train file, whole.
fn intact_tbx() -> Vec<u8> {
    std::fs::read(event_file(&fixtures().join("tensorboardx/train"))).unwrap()
}

/// A temporary event file, removed when dropped.
struct Temp(tempfile::TempPath);

impl Temp {
    fn new(name: &str) -> Temp {
        let file = tempfile::Builder::new()
            .prefix(&format!("guild-tfevents-{name}-"))
            .tempfile()
            .unwrap();
        Temp(file.into_temp_path())
    }

    fn write(&self, bytes: &[u8]) {
        std::fs::write(&self.0, bytes).unwrap();
    }

    fn append(&self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
    }

    fn open(&self) -> File {
        File::open(&self.0).unwrap()
    }
}

fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

fn event(step: i64, values: Vec<proto::Value>) -> Vec<u8> {
    proto::Event {
        wall_time: 1_700_000_000.25 + step as f64,
        step,
        summary: Some(proto::Summary { value: values }),
    }
    .encode_to_vec()
}

fn simple(tag: &str, value: f32) -> proto::Value {
    proto::Value {
        tag: tag.as_bytes().to_vec(),
        metadata: None,
        value: Some(proto::value::Payload::SimpleValue(value)),
    }
}

fn tensor(tag: &str, plugin: Option<&str>, t: proto::TensorProto) -> proto::Value {
    proto::Value {
        tag: tag.as_bytes().to_vec(),
        metadata: plugin.map(|p| proto::SummaryMetadata {
            plugin_data: Some(proto::PluginData {
                plugin_name: p.as_bytes().to_vec(),
            }),
        }),
        value: Some(proto::value::Payload::Tensor(t)),
    }
}

fn scalar_record(tag: &str, step: i64, value: f32) -> Vec<u8> {
    frame(&event(step, vec![simple(tag, value)]))
}

/// (start, total length) of each complete record, by framing alone.
fn spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= data.len() {
        let len = u64::from_le_bytes(data[pos..pos + 8].try_into().unwrap()) as usize;
        let total = 12 + len + 4;
        if pos + total > data.len() {
            break;
        }
        out.push((pos, total));
        pos += total;
    }
    out
}

#[derive(Default, Debug)]
struct Collected {
    scalars: Vec<ScalarEvent>,
    issues: Vec<Issue>,
    records: u64,
    polls: u64,
}

/// Polls until the reader stops for lack of bytes rather than for the bound.
fn poll_all(reader: &mut Reader, file: &File, max_bytes: u64, at_eof_final: bool, out: &mut Collected) {
    loop {
        let before = reader.offset();
        let r = reader
            .poll(file, max_bytes, at_eof_final, &mut |s| out.scalars.push(s))
            .unwrap();
        out.polls += 1;
        out.records += r.records;
        out.issues.extend(r.issues);
        assert!(reader.offset() >= before, "offset went back");
        if !r.more {
            break;
        }
        assert!(reader.offset() > before, "a bounded poll made no progress");
    }
}

fn read_path(path: &Path) -> (Reader, Collected) {
    let file = File::open(path).unwrap();
    let mut reader = Reader::new(0);
    let mut c = Collected::default();
    poll_all(&mut reader, &file, u64::MAX, true, &mut c);
    (reader, c)
}

fn keys(scalars: &[ScalarEvent]) -> Vec<(String, i64, u64)> {
    scalars
        .iter()
        .map(|s| (s.tag.clone(), s.step, s.value.to_bits()))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}
