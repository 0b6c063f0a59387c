//! CPU time the hypervisor stole from this machine during a phase. On a shared VM a phase can
//! take several times longer while neighbours hold the physical cores (the same Kubernetes
//! floor took 4 s in one run and 21 s in another on the 2-core testbed VM); the steal counter
//! of `/proc/stat`, sampled at a phase's start and end, tells such a phase apart. Where
//! `/proc/stat` cannot be read or parsed (not Linux) the figure is `-` and the bench goes on.
//! May touch: `/proc/stat` (read).

use serde::Serialize;

/// Ticks per second of the `/proc/stat` counters (USER_HZ, what `getconf CLK_TCK` prints).
/// The e2e crate has no `libc` to ask `sysconf(_SC_CLK_TCK)` (and denies unsafe code), so this
/// assumes 100: the value Linux shows user space on x86 and arm64, whatever the kernel's HZ.
const USER_HZ: f64 = 100.0;

/// The machine's CPU time counters at one moment, all CPUs together, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTimes {
    /// Time a virtual CPU of this machine was ready to run while the hypervisor ran another.
    steal: u64,
    /// user + nice + system + idle + iowait + irq + softirq + steal: all CPU time. The later
    /// fields (guest, guest_nice) are left out, as the kernel already counts them in user and
    /// nice.
    total: u64,
}

/// The counters of the first line of `/proc/stat`,
/// `cpu  user nice system idle iowait irq softirq steal [guest guest_nice]`; none when the text
/// does not start with that line or the line has no steal field (kernels before 2.6.11).
pub(super) fn parse_cpu_line(stat: &str) -> Option<CpuTimes> {
    let mut fields = stat.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let counters = fields
        .take(8)
        .map(|f| f.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    let &[_, _, _, _, _, _, _, steal] = counters.as_slice() else {
        return None;
    };
    let total = counters
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(*c))?;
    Some(CpuTimes { steal, total })
}

/// The counters now; none when `/proc/stat` cannot be read or parsed.
pub(super) fn sample() -> Option<CpuTimes> {
    parse_cpu_line(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// CPU time stolen during one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct Steal {
    /// CPU seconds, summed over all CPUs (two CPUs stolen for all of one second make 2 s).
    pub(super) seconds: f64,
    /// Share of all CPU time of the phase (every CPU, busy or idle), in percent.
    pub(super) percent: f64,
}

/// The steal between two samples, rounded to 0.01 s and 0.1 %; none when a sample is missing
/// or a counter went backwards.
pub(super) fn between(before: Option<CpuTimes>, after: Option<CpuTimes>) -> Option<Steal> {
    let (before, after) = (before?, after?);
    let steal = after.steal.checked_sub(before.steal)?;
    let total = after.total.checked_sub(before.total)?;
    // Under one tick of CPU time in all: nothing could be stolen either.
    let share = if total == 0 {
        0.0
    } else {
        steal as f64 / total as f64
    };
    Some(Steal {
        seconds: (steal as f64 / USER_HZ * 100.0).round() / 100.0,
        percent: (share * 1000.0).round() / 10.0,
    })
}

/// The steal from the sample `before` until now.
pub(super) fn since(before: Option<CpuTimes>) -> Option<Steal> {
    between(before, sample())
}

/// A phase line's `steal 0.42 s (7%)`; `steal -` when it could not be measured.
pub(super) fn show(steal: Option<Steal>) -> String {
    match steal {
        Some(s) => format!("steal {:.2} s ({:.0}%)", s.seconds, s.percent),
        None => "steal -".into(),
    }
}

/// A table cell's percentage without the sign, `7`; `-` when it could not be measured.
pub(super) fn percent(steal: Option<Steal>) -> String {
    steal.map_or_else(|| "-".into(), |s| format!("{:.0}", s.percent))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-CPU VM's line, with guest and guest_nice.
    const LINE: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 175628 0 0\n\
                        cpu0 5066076 145348 1542359 23414241 8341 0 12597 87814 0 0\n";

    #[test]
    fn a_normal_line_gives_steal_and_the_total_without_guest_time() {
        let t = parse_cpu_line(LINE).unwrap();
        assert_eq!(t.steal, 175_628);
        assert_eq!(
            t.total,
            10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195 + 175628
        );
        // Guest time is part of user and nice: counted once.
        let with_guest = LINE.replacen(" 0 0\n", " 500 7\n", 1);
        assert_eq!(parse_cpu_line(&with_guest), Some(t));
        // Kernels 2.6.11 to 2.6.23: steal is the last field.
        assert_eq!(
            parse_cpu_line("cpu  1 2 3 4 5 6 7 8"),
            Some(CpuTimes {
                steal: 8,
                total: 36
            })
        );
    }

    #[test]
    fn a_line_without_steal_gives_none() {
        assert_eq!(parse_cpu_line("cpu  1 2 3 4 5 6 7\n"), None);
        assert_eq!(parse_cpu_line("cpu  1 2 3 4"), None);
        assert_eq!(parse_cpu_line("cpu"), None);
        assert_eq!(parse_cpu_line(""), None);
    }

    #[test]
    fn garbage_gives_none() {
        for text in [
            "hello world",
            "cpu  1 2 3 x 5 6 7 8",
            "cpu  1 2 3 -4 5 6 7 8",
            // A CPU's own line, or the aggregate line not first.
            "cpu0 1 2 3 4 5 6 7 8",
            "intr 1 2 3\ncpu  1 2 3 4 5 6 7 8",
            "cpu  18446744073709551615 1 0 0 0 0 0 0",
            "\u{0}\u{1}binary",
        ] {
            assert_eq!(parse_cpu_line(text), None, "{text:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machines_proc_stat_parses() {
        let t = sample().expect("/proc/stat's cpu line");
        assert!(t.steal <= t.total && t.total > 0, "{t:?}");
    }

    #[test]
    fn steal_between_two_samples() {
        let at = |steal, total| Some(CpuTimes { steal, total });
        // 10 s on 2 CPUs: 2000 ticks, 140 of them stolen.
        let s = between(at(1000, 50_000), at(1140, 52_000)).unwrap();
        assert_eq!(
            s,
            Steal {
                seconds: 1.4,
                percent: 7.0
            }
        );
        assert_eq!(show(Some(s)), "steal 1.40 s (7%)");
        assert_eq!(percent(Some(s)), "7");
        assert_eq!(
            between(at(5, 100), at(5, 100)),
            Some(Steal {
                seconds: 0.0,
                percent: 0.0
            })
        );
        // Not measured, or counters that went backwards: a dash, never an error.
        assert_eq!(between(None, at(1, 2)), None);
        assert_eq!(between(at(1, 2), None), None);
        assert_eq!(between(at(10, 100), at(5, 200)), None);
        assert_eq!(show(None), "steal -");
        assert_eq!(percent(None), "-");
    }
}
