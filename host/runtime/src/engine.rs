//! The wasmtime engine: the pooling allocator tuned for many short hook calls, epoch
//! interruption, and the ticker thread that advances the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy};

use sluice_config::{Profiler, RuntimeSettings};

/// Core wasm instances one component may hold: a Rust wasip2 component has a handful, a
/// componentize-py one 14 (CPython, its libraries and the adapters). The total is an upper
/// bound on metadata allocated on demand, not memory reserved up front.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Builds the engine every plugin runs on.
///
/// Pooling allocator: slots for `max_instances` component instances, each memory slot up to
/// `max_memory_mb`, 64 KiB of each memory and 16 KiB of each table kept resident between
/// uses, pagemap scanning where the kernel has it; the profiler `settings.profiler` names. Component-model concurrency is off (it
/// costs several microseconds per store and plugins don't use it).
pub fn build_engine(settings: &RuntimeSettings) -> wasmtime::Result<Engine> {
    let instances = settings.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances)
        .total_tables(instances.saturating_mul(2))
        .total_stacks(instances)
        .max_memory_size((settings.max_memory_mb as usize) << 20)
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .profiler(match settings.profiler {
            Profiler::None => ProfilingStrategy::None,
            Profiler::PerfMap => ProfilingStrategy::PerfMap,
            Profiler::JitDump => ProfilingStrategy::JitDump,
        });
    Engine::new(&config)
}

/// How often the epoch advances while some hook call has run past a tick. Such a call gives
/// its worker back to the other tasks at every advance, so this is the longest stretch it
/// holds the thread (and every connection queued on it): with the default 1 ms tick alone, a
/// plugin looping on its budget would add up to a millisecond to each request behind it.
pub const LONG_CALL_SLICE: Duration = Duration::from_micros(100);

/// Advances the engine's epoch every tick on a thread of its own, until dropped; every
/// [`LONG_CALL_SLICE`] instead while a [`LongCall`] is held.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    tick: Duration,
    long_calls: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`.
    pub fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let long_calls = Arc::new(AtomicUsize::new(0));
        let weak = engine.weak();
        let (flag, long) = (stop.clone(), long_calls.clone());
        let slice = tick.min(LONG_CALL_SLICE);
        let handle = std::thread::Builder::new().name("sluice-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // Parked rather than asleep: the first long call wakes it at once.
                std::thread::park_timeout(if long.load(Ordering::Relaxed) > 0 { slice } else { tick });
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(EpochTicker {
            stop,
            tick,
            long_calls,
            thread: handle.thread().clone(),
        })
    }

    /// The interval between epoch increments when no call runs long.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Marks a hook call as long (it ran past a tick): until the returned guard drops, the
    /// epoch advances every [`LONG_CALL_SLICE`], so the call yields its thread that often.
    pub fn long_call(&self) -> LongCall {
        if self.long_calls.fetch_add(1, Ordering::Relaxed) == 0 {
            self.thread.unpark();
        }
        LongCall(self.long_calls.clone())
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// A hook call running long, from [`EpochTicker::long_call`]; dropped when the call ends.
#[derive(Debug)]
pub struct LongCall(Arc<AtomicUsize>);

impl Drop for LongCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
