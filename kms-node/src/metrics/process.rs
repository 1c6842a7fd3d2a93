//! The standard `process_*` metrics every Prometheus client exposes (CPU, memory, descriptors,
//! threads, start time), read from /proc at scrape time. A value that cannot be read is left
//! out rather than reported as 0.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    start_time_seconds: Option<f64>,
    threads: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

fn sample() -> Sample {
    let Ok(me) = procfs::process::Process::myself() else {
        return Sample::default();
    };
    let mut s = Sample::default();
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        s.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
        s.resident_bytes = Some(stat.rss as f64 * procfs::page_size() as f64);
        s.virtual_bytes = Some(stat.vsize as f64);
        s.threads = Some(stat.num_threads as f64);
        if let Ok(boot) = procfs::boot_time_secs() {
            s.start_time_seconds = Some(boot as f64 + stat.starttime as f64 / ticks);
        }
    }
    s.open_fds = me.fd_count().ok().map(|n| n as f64);
    if let Ok(limits) = me.limits() {
        if let procfs::process::LimitValue::Value(n) = limits.max_open_files.soft_limit {
            s.max_fds = Some(n as f64);
        }
    }
    s
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = sample();
        if let Some(v) = s.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                m.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                s.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds,
            ),
        ] {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample();
        assert!(s.cpu_seconds.is_some_and(|v| v >= 0.0));
        assert!(s.resident_bytes.is_some_and(|v| v > 1e5));
        assert!(s.threads.is_some_and(|v| v >= 1.0));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = s.start_time_seconds.unwrap();
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        let open = s.open_fds.unwrap();
        assert!(s.max_fds.is_some_and(|v| v >= open));
        // Descriptors are counted (with slack for other tests of this process closing theirs).
        let files: Vec<_> = (0..64)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        assert!(sample().open_fds.unwrap() >= open + 32.0);
        drop(files);
    }
}
