use super::*;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[test]
fn sizes_map_to_the_smallest_class_that_holds_them() {
    assert_eq!(class(layout(1, 1)), Some(0));
    assert_eq!(class(layout(16, 8)), Some(0));
    assert_eq!(class(layout(17, 1)), Some(1));
    assert_eq!(class(layout(1000, 8)), Some(6), "1 KiB");
    assert_eq!(class(layout(MAX_SMALL, 16)), Some(CLASSES - 1));
    assert_eq!(class(layout(MAX_SMALL + 1, 1)), None, "large: the system allocator");
    assert_eq!(class(layout(8, 32)), None, "over-aligned: the system allocator");
}

#[test]
fn blocks_are_aligned_distinct_and_reused_after_free() {
    let a = SizeClasses::new();
    unsafe {
        let l = layout(24, 8);
        let blocks: Vec<*mut u8> = (0..100).map(|_| a.alloc(l)).collect();
        for (i, &p) in blocks.iter().enumerate() {
            assert_eq!(p as usize % ALIGN, 0);
            p.write_bytes(i as u8, 24);
        }
        for (i, &p) in blocks.iter().enumerate() {
            assert!(
                std::slice::from_raw_parts(p, 24).iter().all(|&b| b == i as u8),
                "block {i} was overwritten"
            );
        }
        a.dealloc(blocks[7], l);
        assert_eq!(a.alloc(l), blocks[7], "a freed block is the next one of its class");
        for &p in &blocks {
            a.dealloc(p, l);
        }
    }
}

#[test]
fn realloc_keeps_the_bytes_across_classes_and_to_the_system_allocator() {
    let a = SizeClasses::new();
    unsafe {
        let p = a.alloc(layout(10, 1));
        p.copy_from_nonoverlapping(b"0123456789".as_ptr(), 10);
        assert_eq!(a.realloc(p, layout(10, 1), 16), p, "same class: same block");
        let q = a.realloc(p, layout(16, 1), 100);
        assert_eq!(std::slice::from_raw_parts(q, 10), b"0123456789");
        let big = a.realloc(q, layout(100, 1), MAX_SMALL * 2);
        assert_eq!(std::slice::from_raw_parts(big, 10), b"0123456789");
        let bigger = a.realloc(big, layout(MAX_SMALL * 2, 1), MAX_SMALL * 4);
        assert_eq!(std::slice::from_raw_parts(bigger, 10), b"0123456789");
        let small = a.realloc(bigger, layout(MAX_SMALL * 4, 1), 4);
        assert_eq!(std::slice::from_raw_parts(small, 4), b"0123");
        a.dealloc(small, layout(4, 1));
    }
}

#[test]
fn many_chunks_of_large_classes_stay_usable() {
    let a = SizeClasses::new();
    unsafe {
        let l = layout(20_000, 16);
        let blocks: Vec<*mut u8> = (0..10).map(|_| a.alloc(l)).collect();
        for &p in &blocks {
            assert!(!p.is_null());
            p.write_bytes(0xab, 20_000);
        }
        let mut sorted = blocks.clone();
        sorted.sort();
        for pair in sorted.windows(2) {
            assert!(pair[1] as usize - pair[0] as usize >= 20_000, "blocks overlap");
        }
        for &p in &blocks {
            a.dealloc(p, l);
        }
    }
}

#[test]
fn refills_start_small_and_double_and_a_large_block_gets_its_own_chunk() {
    let a = SizeClasses::new();
    let state = || unsafe { &*a.0.get() };
    unsafe {
        let first = a.alloc(layout(16, 1));
        assert_eq!(state().end as usize - first as usize, FIRST_CHUNK);
        // The class of 8 KiB does not fit the rest of the first chunk: the next one is 16 KiB.
        let second = a.alloc(layout(FIRST_CHUNK, 16));
        assert_eq!(state().end as usize - second as usize, 2 * FIRST_CHUNK);
        // A 32 KiB block is larger than the next refill (32 KiB): a chunk of exactly that.
        let third = a.alloc(layout(MAX_SMALL, 16));
        assert_eq!(state().end as usize - third as usize, MAX_SMALL);
        assert_eq!(state().chunk, CHUNK);
        let fourth = a.alloc(layout(MAX_SMALL, 16));
        assert_eq!(
            state().end as usize - fourth as usize,
            CHUNK,
            "refills stop growing at 64 KiB"
        );
        for (p, size) in [
            (first, 16),
            (second, FIRST_CHUNK),
            (third, MAX_SMALL),
            (fourth, MAX_SMALL),
        ] {
            a.dealloc(p, layout(size, 16));
        }
    }
}
