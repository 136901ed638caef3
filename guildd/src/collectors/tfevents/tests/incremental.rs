//! Files read while they grow: records appended a few bytes at a time, a reader
//! resumed from a persisted offset, and polls bounded by `max_bytes`.

use super::*;

#[test]
fn file_appended_in_pieces() {
    let recs: Vec<Vec<u8>> = (0..5).map(|i| scalar_record("loss", i, i as f32)).collect();
    let tmp = Temp::new("pieces");
    tmp.write(&[recs[0].clone(), recs[1].clone()].concat());
    tmp.append(&recs[2][..5]); // part of the length
    let file = tmp.open();
    let mut reader = Reader::new(0);
    let mut seen = Vec::new();
    let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
    assert_eq!((r.records, r.issues.len(), r.more), (2, 0, false));
    let at = (recs[0].len() + recs[1].len()) as u64;
    assert_eq!(reader.offset(), at);

    let half = recs[2].len() / 2; // header and half the data
    tmp.append(&recs[2][5..half]);
    let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
    assert_eq!((r.records, r.issues.len()), (0, 0));
    assert_eq!(reader.offset(), at);

    tmp.append(&recs[2][half..]);
    tmp.append(&recs[3]);
    let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
    assert_eq!((r.records, r.issues.len()), (2, 0));
    tmp.append(&recs[4][..recs[4].len() - 1]); // all but the last CRC byte
    let r = reader.poll(&file, u64::MAX, true, &mut |s| seen.push(s.step)).unwrap();
    assert_eq!((r.records, r.issues.len()), (0, 0));
    tmp.append(&recs[4][recs[4].len() - 1..]);
    let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
    assert_eq!((r.records, r.issues.len()), (1, 0));
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    assert_eq!(reader.offset(), recs.iter().map(Vec::len).sum::<usize>() as u64);
}

#[test]
fn real_file_appended_a_few_bytes_at_a_time() {
    let intact = intact_tbx();
    let (all_reader, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
    let tmp = Temp::new("trickle");
    tmp.write(&[]);
    let file = tmp.open();
    let mut reader = Reader::new(0);
    let mut c = Collected::default();
    for piece in intact.chunks(97) {
        tmp.append(piece);
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
    }
    assert!(c.issues.is_empty(), "{:?}", c.issues);
    assert_eq!(keys(&c.scalars), keys(&all.scalars));
    assert_eq!(reader.others(), all_reader.others());
    assert_eq!(reader.offset(), intact.len() as u64);
}

#[test]
fn resume_from_persisted_offset() {
    let path = event_file(&fixtures().join("tensorboardx/validation"));
    let (_, all) = read_path(&path);
    let file = File::open(&path).unwrap();

    let mut first = Reader::new(0);
    let mut a = Vec::new();
    let r = first.poll(&file, 300, false, &mut |s| a.push(s)).unwrap();
    assert!(r.more);
    assert!(!a.is_empty() && a.len() < all.scalars.len());
    let saved = first.offset();
    drop(first);

    let mut second = Reader::new(saved);
    let mut c = Collected::default();
    poll_all(&mut second, &file, u64::MAX, true, &mut c);
    assert!(c.issues.is_empty());
    a.extend(c.scalars);
    assert_eq!(keys(&a), keys(&all.scalars));
    // The resumed reader only counted what came after the offset.
    assert!(second.others().values().sum::<u64>() <= 3);
}

#[test]
fn max_bytes_bounds_each_poll() {
    let path = event_file(&fixtures().join("tf2/train"));
    let (_, all) = read_path(&path);
    let file = File::open(&path).unwrap();
    for max in [1, 40, 500] {
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        poll_all(&mut reader, &file, max, false, &mut c);
        assert_eq!(keys(&c.scalars), keys(&all.scalars), "max_bytes {max}");
        assert_eq!(c.records, all.records);
        if max == 1 {
            // one record per poll, plus the final poll that finds nothing more
            assert_eq!(c.polls, all.records);
        }
    }
}
