//! The request decoder allocates only what the frame's bytes can back: a length field on the wire
//! is never trusted for an allocation before the elements it counts have been seen. Measured with
//! a global allocator that records the largest single allocation of the current thread.
//!
//! Why: a frame may be up to socket.request.max.bytes (100 MiB); a decoder that reserves
//! `count × size_of::<Element>()` from a wire count multiplies that by the element size before
//! reading a single element (the kafka-protocol crate's `with_capacity` did, hence
//! `protocol::guard`; the hand-written Produce parser did too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use wire::inspect::inspect_request;

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: same layout, the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same pointer and layout, the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        // SAFETY: the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// The largest single allocation made while decoding `frame` (the frame itself excluded).
fn largest_allocation(frame: Vec<u8>) -> usize {
    let frame = Bytes::from(frame);
    LARGEST.with(|l| l.set(0));
    let _ = inspect_request(frame);
    LARGEST.with(|l| l.get())
}

fn header(api_key: i16, version: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&api_key.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    b
}

const PAD: usize = 1 << 20;

/// A count whose elements are not in the frame reserves nothing sizeable: the decoder fails on
/// the first missing element, having allocated for a few at most.
fn assert_bounded(what: &str, frame: Vec<u8>) {
    let len = frame.len();
    let largest = largest_allocation(frame);
    assert!(
        largest <= 64 << 10,
        "{what}: a {len}-byte frame made a {largest}-byte allocation"
    );
}

#[test]
fn produce_counts_do_not_reserve_more_than_the_frame_backs() {
    // Produce v3: null transactional id, acks, timeout, then a topic count as large as the bytes
    // left, followed by 0xff (the first topic name reads as null and is refused): the count passes
    // "no longer than the frame", but its elements are not there. This reserved 48 MiB.
    let mut f = header(0, 3);
    f.extend_from_slice(&(-1i16).to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.extend_from_slice(&1000i32.to_be_bytes());
    f.extend_from_slice(&(PAD as i32).to_be_bytes());
    f.resize(f.len() + PAD, 0xff);
    assert_bounded("Produce v3 topics", f);

    // One topic whose partition count is as large as the bytes left; the first partition's
    // records length (0x7f7f7f7f) runs past the frame. This reserved 40 MiB.
    let mut f = header(0, 3);
    f.extend_from_slice(&(-1i16).to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.extend_from_slice(&1000i32.to_be_bytes());
    f.extend_from_slice(&1i32.to_be_bytes());
    f.extend_from_slice(&[0, 1, b't']);
    f.extend_from_slice(&(PAD as i32).to_be_bytes());
    f.resize(f.len() + PAD, 0x7f);
    assert_bounded("Produce v3 partitions", f);

    // Flexible (v9): compact counts; the first topic name's varint never ends.
    let mut f = header(0, 9);
    f.push(0); // header tags
    f.push(0); // null transactional id
    f.extend_from_slice(&1i16.to_be_bytes());
    f.extend_from_slice(&1000i32.to_be_bytes());
    let n = PAD as u32 + 1;
    let mut v = n;
    while v >= 0x80 {
        f.push((v as u8) | 0x80);
        v >>= 7;
    }
    f.push(v as u8);
    f.resize(f.len() + PAD, 0xff);
    assert_bounded("Produce v9 topics", f);
}

#[test]
fn control_plane_counts_do_not_reserve_more_than_the_frame_backs() {
    // Metadata v1 claiming as many topics as bytes left (the guard refuses it before the crate's
    // decoder reserves).
    let mut f = header(3, 1);
    f.extend_from_slice(&(PAD as i32).to_be_bytes());
    f.resize(f.len() + PAD, 0xff);
    assert_bounded("Metadata v1 topics", f);
}

#[test]
fn huge_lengths_in_every_seed_reserve_little() {
    // Every committed corpus file (real requests of every API and version), with each 4-byte
    // window and each byte in turn replaced by a huge length (classic int32, compact varint):
    // the largest allocation stays within a small multiple of the frame.
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decoder");
    let mut frames = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let seed = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        for at in 0..seed.len() {
            for huge in [
                &[0x7f, 0xff, 0xff, 0xff][..],
                &[0xff, 0xff, 0xff, 0x0f][..],
                &[0xff][..],
            ] {
                let mut f = seed.clone();
                let end = (at + huge.len()).min(f.len());
                f[at..end].copy_from_slice(&huge[..end - at]);
                let len = f.len();
                let largest = largest_allocation(f);
                assert!(
                    largest <= 4096 + 64 * len,
                    "a {len}-byte frame (huge length at byte {at}) made a {largest}-byte allocation"
                );
                frames += 1;
            }
        }
    }
    assert!(frames > 1000, "only {frames} frames");
}
