//! The fast path: the event most records hold (wall time, step and a summary whose
//! values are only a tag and a `simple_value`, as `add_scalar` writes them) read
//! straight from its bytes, with no protobuf decode and nothing allocated; tags are
//! borrowed from the record. Anything else is left to the general path in `reader`.

use super::ScalarRef;
use super::proto::read_varint;
use super::wall_ms;

/// At most this many values are handled here; more go the general way.
const MAX: usize = 8;

/// Hands out the scalars of `data` if it is a scalar-only event and returns how many;
/// `None` (nothing handed out) for anything else, which then takes the general path.
pub(super) fn simple_scalars(data: &[u8], on_scalar: &mut impl FnMut(ScalarRef<'_>)) -> Option<u64> {
    let mut values: [(&str, f32); MAX] = [("", 0.0); MAX];
    let mut count = 0;
    let (mut wall_time, mut step, mut summary) = (None, None, None);
    let mut cur = data;
    while !cur.is_empty() {
        let key = read_varint(&mut cur)?;
        match key {
            // wall_time: double
            0x09 if wall_time.is_none() => {
                let (v, rest) = cur.split_first_chunk::<8>()?;
                wall_time = Some(f64::from_le_bytes(*v));
                cur = rest;
            }
            // step: int64
            0x10 if step.is_none() => {
                let v = read_varint(&mut cur)?;
                step = Some(v as i64);
            }
            // summary: message
            0x2a if summary.is_none() => {
                let len = read_varint(&mut cur)?;
                let body = cur.get(..len as usize)?;
                summary = Some(body);
                cur = &cur[len as usize..];
            }
            _ => return None,
        }
    }
    let mut summary = summary?;
    while !summary.is_empty() {
        // Summary.value: repeated message (1)
        if read_varint(&mut summary) != Some(0x0a) {
            return None;
        }
        let len = read_varint(&mut summary)?;
        let mut value = summary.get(..len as usize)?;
        summary = &summary[len as usize..];
        let (mut tag, mut simple) = (None, None);
        while !value.is_empty() {
            match read_varint(&mut value) {
                // tag: bytes
                Some(0x0a) if tag.is_none() => {
                    let len = read_varint(&mut value)?;
                    let bytes = value.get(..len as usize)?;
                    let text = std::str::from_utf8(bytes).ok()?;
                    tag = Some(text);
                    value = &value[len as usize..];
                }
                // simple_value: float
                Some(0x15) if simple.is_none() => {
                    let (v, rest) = value.split_first_chunk::<4>()?;
                    simple = Some(f32::from_le_bytes(*v));
                    value = rest;
                }
                _ => return None,
            }
        }
        // A value with only a tag is skipped, as the general path does.
        if let Some(x) = simple {
            if count == MAX {
                return None;
            }
            values[count] = (tag.unwrap_or(""), x);
            count += 1;
        }
    }
    let step = step.unwrap_or(0);
    let wall_time_ms = wall_ms(wall_time.unwrap_or(0.0));
    for &(tag, x) in &values[..count] {
        on_scalar(ScalarRef {
            tag,
            step,
            wall_time_ms,
            value: f64::from(x),
        });
    }
    Some(count as u64)
}
