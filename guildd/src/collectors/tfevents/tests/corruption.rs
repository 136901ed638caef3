//! Corruption and framing: a flipped byte or a truncated tail in a real writer's file,
//! garbage between records and the scan to the next valid one, undecodable events,
//! records too large to decode, and the CRC32C that catches it all.

use super::*;

#[test]
fn flipped_byte_skips_only_that_record() {
    let intact = intact_tbx();
    let (intact_reader, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
    let (start, total) = spans(&intact)[2];
    let third = proto::Event::decode(&intact[start + 12..start + total - 4]).unwrap();
    let lost: Vec<(String, i64)> = third
        .summary
        .unwrap()
        .value
        .into_iter()
        .map(|v| (String::from_utf8(v.tag).unwrap(), third.step))
        .collect();
    assert_eq!(lost.len(), 1);

    let path = fixtures().join("corrupt/flipped/events.out.tfevents.flipped");
    let (reader, c) = read_path(&path);
    assert_eq!(c.issues, vec![Issue::CorruptData { offset: start as u64 }]);
    let want: Vec<_> = keys(&all.scalars)
        .into_iter()
        .filter(|(t, s, _)| !lost.contains(&(t.clone(), *s)))
        .collect();
    assert_eq!(keys(&c.scalars), want);
    assert_eq!(c.scalars.len(), all.scalars.len() - 1);
    assert_eq!(reader.others(), intact_reader.others());
    assert_eq!(reader.offset(), intact.len() as u64);
}

#[test]
fn truncated_record_is_waited_for_then_read() {
    let intact = intact_tbx();
    let (_, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
    let cut = std::fs::read(fixtures().join("corrupt/truncated/events.out.tfevents.truncated")).unwrap();
    let (last_start, _) = *spans(&intact).last().unwrap();
    assert!(cut.len() > last_start && cut.len() < intact.len());

    let tmp = Temp::new("truncated");
    tmp.write(&cut);
    let file = tmp.open();
    let mut reader = Reader::new(0);
    let mut c = Collected::default();
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    assert!(c.issues.is_empty(), "{:?}", c.issues);
    assert_eq!(reader.offset(), last_start as u64);
    // The writer may be done: still no issue, still waiting before the partial record.
    poll_all(&mut reader, &file, u64::MAX, true, &mut c);
    assert!(c.issues.is_empty(), "{:?}", c.issues);
    assert_eq!(reader.offset(), last_start as u64);

    tmp.append(&intact[cut.len()..]);
    let before = c.records;
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    assert!(c.issues.is_empty(), "{:?}", c.issues);
    assert_eq!(c.records, before + 1);
    assert_eq!(reader.offset(), intact.len() as u64);
    assert_eq!(keys(&c.scalars), keys(&all.scalars));
    assert_eq!(
        reader.others().get(&("note/text_summary".to_string(), Kind::Text)),
        Some(&1)
    );
}

#[test]
fn garbage_between_records_resyncs() {
    let r0 = scalar_record("a", 0, 0.5);
    let r1 = scalar_record("a", 1, 1.5);
    let r2 = scalar_record("b", 2, 2.5);
    // garbage that includes a header with a valid length CRC whose data CRC fails
    let mut fake = frame(b"0123456789");
    let n = fake.len();
    fake[n - 1] ^= 1;
    let garbage = [&b"\x01\x02garbage\xff\xfe"[..], &fake, &[7u8; 23]].concat();
    let data = [r0.clone(), garbage.clone(), r1, r2].concat();
    let tmp = Temp::new("garbage");
    tmp.write(&data);
    let (reader, c) = read_path(&tmp.0);
    assert_eq!(
        c.issues,
        vec![Issue::CorruptLength {
            offset: r0.len() as u64
        }]
    );
    assert_eq!(
        c.scalars.iter().map(|s| (s.tag.as_str(), s.step)).collect::<Vec<_>>(),
        [("a", 0), ("a", 1), ("b", 2)]
    );
    assert_eq!(reader.offset(), data.len() as u64);
    assert_eq!(c.records, 3);
}

#[test]
fn resync_waits_for_bytes_and_reports_once() {
    let r0 = scalar_record("a", 0, 0.5);
    let r1 = scalar_record("a", 1, 1.5);
    let r2 = scalar_record("a", 2, 2.5);
    let tmp = Temp::new("resync-wait");
    tmp.write(&[&r0[..], b"some garbage bytes here"].concat());
    let file = tmp.open();
    let mut reader = Reader::new(0);
    let mut c = Collected::default();
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    assert_eq!(
        c.issues,
        vec![Issue::CorruptLength {
            offset: r0.len() as u64
        }]
    );
    assert_eq!(c.records, 1);
    // A candidate record whose data is not all there yet is waited for.
    tmp.append(&r1[..r1.len() - 3]);
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    let r1_at = (r0.len() + 23) as u64;
    assert_eq!(reader.offset(), r1_at);
    tmp.append(&r1[r1.len() - 3..]);
    tmp.append(&r2);
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    assert_eq!(c.issues.len(), 1, "{:?}", c.issues);
    assert_eq!(c.scalars.iter().map(|s| s.step).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(c.records, 3);
}

#[test]
fn resync_at_eof_final_scans_past_unconfirmable_candidate() {
    let r0 = scalar_record("a", 0, 0.5);
    let r1 = scalar_record("a", 1, 1.5);
    let data = [&r0[..], b"junk", &r1[..r1.len() - 2]].concat();
    let tmp = Temp::new("resync-final");
    tmp.write(&data);
    let file = tmp.open();
    let mut reader = Reader::new(0);
    let mut c = Collected::default();
    poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    assert_eq!(reader.offset(), (r0.len() + 4) as u64);
    poll_all(&mut reader, &file, u64::MAX, true, &mut c);
    assert_eq!(c.issues.len(), 1);
    assert!(reader.offset() > (r0.len() + 4) as u64);
    assert!(reader.offset() + HEADER > data.len() as u64);
    assert_eq!(c.records, 1);
}

#[test]
fn undecodable_event_is_reported_and_skipped() {
    let r0 = frame(&[0xff, 0xff, 0xff]);
    let r1 = scalar_record("a", 1, 1.0);
    let tmp = Temp::new("bad-event");
    tmp.write(&[r0, r1].concat());
    let (_, c) = read_path(&tmp.0);
    assert!(
        matches!(&c.issues[..], [Issue::BadEvent { offset: 0, .. }]),
        "{:?}",
        c.issues
    );
    assert_eq!(c.scalars.len(), 1);
    assert_eq!(c.records, 1);
}

#[test]
fn oversized_records_are_streamed() {
    // graph_def (field 4) of 300 bytes: no summary, skipped silently
    let mut graph = proto::Event {
        wall_time: 1.0,
        step: 0,
        summary: None,
    }
    .encode_to_vec();
    graph.extend_from_slice(&[0x22, 0xac, 0x02]);
    graph.extend_from_slice(&[9u8; 300]);
    let big_summary = event(3, (0..40).map(|i| simple(&format!("t{i}"), 1.0)).collect());
    let mut corrupt = frame(&graph);
    let n = corrupt.len();
    corrupt[n - 10] ^= 0x40;
    let data = [
        frame(&graph),
        frame(&big_summary),
        corrupt.clone(),
        b"garbage".to_vec(),
        frame(&graph),
        scalar_record("ok", 4, 4.0),
    ]
    .concat();
    let tmp = Temp::new("large");
    tmp.write(&data);
    let file = tmp.open();
    let mut reader = Reader::new(0);
    reader.max_decode = 64;
    let mut c = Collected::default();
    poll_all(&mut reader, &file, u64::MAX, true, &mut c);
    let g = frame(&graph).len() as u64;
    let s = frame(&big_summary).len() as u64;
    assert_eq!(c.issues.len(), 3, "{:?}", c.issues);
    assert!(matches!(&c.issues[0], Issue::BadEvent { offset, .. } if *offset == g));
    assert_eq!(c.issues[1], Issue::CorruptData { offset: g + s });
    assert_eq!(c.issues[2], Issue::CorruptLength { offset: 2 * g + s });
    assert_eq!(c.scalars.len(), 1);
    assert_eq!(c.records, 3);
    assert_eq!(reader.offset(), data.len() as u64);
}

#[test]
fn crc32c_known_values() {
    use crc32c::{crc32c, crc32c_append};
    assert_eq!(crc32c(b""), 0);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    let ascending: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&ascending), 0x46DD_794E);
    let descending: Vec<u8> = (0..32).rev().collect();
    assert_eq!(crc32c(&descending), 0x113F_DB5C);
    // streaming equals one shot, at any split
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
        assert_eq!(
            crc32c_append(crc32c_append(0, &data[..split]), &data[split..]),
            crc32c(&data)
        );
    }
    // bitwise reference
    let bitwise = |data: &[u8]| {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    };
    assert_eq!(bitwise(&data), crc32c(&data));
    // The reference and the crate (with the CPU instruction where there is one) agree at
    // every length and alignment of a short record, and on a long one (the crate works
    // long buffers three lanes at a time).
    for len in 0..=70 {
        for at in 0..8 {
            let d = &data[at..at + len];
            assert_eq!(bitwise(d), crc32c(d), "length {len} at {at}");
        }
    }
    let long: Vec<u8> = (0..100_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    assert_eq!(bitwise(&long), crc32c(&long));
    // The masked form a record stores (TFRecord's rotate and add).
    assert_eq!(
        masked_crc32c(b"123456789"),
        0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
    );
}
