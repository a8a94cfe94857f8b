//! A `ResourceLimiter` that sums all of an instance's linear memories against the plugin's
//! memory limit and remembers when it refused growth.

use wasmtime::ResourceLimiter;

/// Table elements an instance may have in all.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Caps the memory of one plugin instance.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    used: usize,
    refused: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes over all memories.
    pub fn new(limit: usize) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            refused: false,
        }
    }

    /// Bytes of linear memory the instance has now, over all its memories.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether a growth was refused since the last [`MemoryLimiter::clear_refused`].
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// Forgets earlier refusals (at the start of each call, so a failure is only blamed on
    /// memory when this call hit the limit).
    pub fn clear_refused(&mut self) {
        self.refused = false;
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        match self.used.checked_add(grow) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(true)
            }
            _ => {
                self.refused = true;
                Ok(false)
            }
        }
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_of_all_memories_is_summed() {
        let mut l = MemoryLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert_eq!(l.used(), 100);
        assert!(!l.refused());
        assert!(!l.memory_growing(40, 41, None).unwrap());
        assert!(l.refused());
        assert_eq!(l.used(), 100);
    }
}
