//! The wasmtime engine: the pooling allocator tuned for many short hook calls, epoch
//! interruption, and the ticker thread that advances the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Advances the engine's epoch every tick on a thread of its own, until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    tick: Duration,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`.
    pub fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new().name("sluice-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(EpochTicker { stop, tick })
    }

    /// The interval between epoch increments.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Epoch ticks until the deadline callback should next look at a call with `remaining`
    /// CPU budget. The callback may run up to one tick early (the first tick can come at any
    /// moment); it then extends the deadline, so a call is stopped within one tick after its
    /// budget is spent.
    pub fn ticks_for(&self, remaining: Duration) -> u64 {
        (remaining.as_nanos().div_ceil(self.tick.as_nanos().max(1)) as u64).max(1)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
