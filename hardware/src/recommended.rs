//! The values weir recommends for the host, shared by the probe (which reports against them) and
//! the tuners (which set them). Each says why.
//!
//! Owns: the numbers and words. Must not: read or write the host.

/// Shards on io_uring want the kernel's full asynchronous I/O budget: glommio sets up one ring
/// per shard plus a latency ring, each taking aio slots (Redpanda and ScyllaDB raise it to 1 M).
pub const AIO_MAX_NR: u64 = 1_048_576;
/// Kafka's documented minimum for brokers with many segments (each segment maps its indexes).
pub const MAX_MAP_COUNT: u64 = 262_144;
/// One socket, one index and one log file per partition replica and connection: 64 Ki or more.
pub const NOFILE_MIN: u64 = 65_536;
/// Swapping a broker's page tables or DMA memory stalls every shard on that core: avoid it.
pub const SWAPPINESS: u64 = 1;
/// io_uring with NVMe: the block layer's scheduler only adds latency; `none` passes requests on.
pub const DISK_SCHEDULER: &str = "none";
/// 2 = no merge attempts at all: weir already writes large aligned runs.
pub const DISK_NOMERGES: u64 = 2;
/// Frequency scaling adds wake-up latency to every request on an idle core.
pub const CPU_GOVERNOR: &str = "performance";
/// `always` lets khugepaged compact memory under a shard (latency spikes); `madvise` keeps huge
/// pages to those who ask.
pub const THP_ENABLED: &str = "madvise";
/// The TSC is read without a system call; xen/kvm-clock cost a trip (AWS recommends tsc).
pub const CLOCKSOURCE: &str = "tsc";
/// Connection and packet backlogs big enough for thousands of clients reconnecting at once.
pub const SOMAXCONN: u64 = 4096;
pub const TCP_MAX_SYN_BACKLOG: u64 = 4096;
pub const NETDEV_MAX_BACKLOG: u64 = 16_384;
/// Linux with io_uring features glommio uses (5.8).
pub const KERNEL_MIN: (u64, u64) = (5, 8);
/// Memory per core Redpanda asks for; a shard's caches and io memory live in it.
pub const MEMORY_PER_CORE_BYTES: u64 = 2 << 30;
/// Where cores go when `kernel.core_pattern` is tuned (the coredump tuner).
pub const COREDUMP_DIR: &str = "/var/lib/weir/coredump";
/// Ballast: space an operator can free at once when the data disk fills.
pub const BALLAST_BYTES: u64 = 1 << 30;
