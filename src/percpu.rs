//! Per-CPU kthread sets: one bound kthread per allowed CPU (the kernel's smpboot).
//!
//! Mirrors `smpboot_register_percpu_thread()`: each thread is created bound
//! to its CPU before it runs, named from a pattern (`"poller/%u"` →
//! `poller/0`, `poller/1`, ...). Taking a CPU offline parks its thread;
//! bringing it online re-binds and unparks it. The thread function receives
//! its CPU and, like any parkable kthread, calls [`should_park`](crate::should_park)
//! / [`parkme`](crate::parkme) in its loop.

use crate::error::{Error, StopError};
use crate::kthread::{Builder, Kthread};
use crate::sync::Arc;
use crate::sys::topology;
use crate::task::{flags, Task};

/// One kthread per allowed CPU, each bound to its CPU.
///
/// ```
/// use kthread::{PerCpu, TaskState};
/// let set = PerCpu::spawn("poller/%u", |cpu| {
///     while !kthread::should_stop() {
///         if kthread::should_park() {
///             kthread::parkme();
///             continue;
///         }
///         kthread::set_current_state(TaskState::Interruptible);
///         if !kthread::should_stop() && !kthread::should_park() {
///             kthread::schedule();
///         }
///         kthread::set_current_state(TaskState::Running);
///     }
///     cpu
/// })?;
/// let first = set.cpus()[0];
/// set.offline(first)?;
/// assert_eq!(set.task(first).unwrap().state(), TaskState::Parked);
/// set.online(first)?;
/// for (cpu, result) in set.stop() {
///     assert_eq!(result?, cpu);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PerCpu<T> {
    threads: Vec<(usize, Kthread<T>)>,
}

/// Expands `%u` (or `%d`) in `pattern` to `cpu`.
fn name_for(pattern: &str, cpu: usize) -> String {
    let c = cpu.to_string();
    pattern.replace("%u", &c).replace("%d", &c)
}

impl<T: Send + 'static> PerCpu<T> {
    /// Creates, binds and starts one kthread per CPU this process may use.
    ///
    /// On error, the threads already created are stopped (their function
    /// never runs) and nothing is left behind.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("idle/%u", |cpu| cpu)?;
    /// assert_eq!(set.cpus().len(), set.tasks().count());
    /// set.stop();
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn spawn<F>(name_pattern: &str, f: F) -> Result<PerCpu<T>, Error>
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut threads = Vec::new();
        for cpu in topology::allowed_cpus().to_vec() {
            let f = f.clone();
            let k = Builder::new(name_for(name_pattern, cpu))
                .cpu(cpu)
                .flags(flags::PER_CPU)
                .create(move || f(cpu))?;
            threads.push((cpu, k));
        }
        for (_, k) in &threads {
            k.wake_up();
        }
        Ok(PerCpu { threads })
    }

    /// The CPUs of the set, ascending.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("c/%u", |c| c)?;
    /// assert!(!set.cpus().is_empty());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn cpus(&self) -> Vec<usize> {
        self.threads.iter().map(|(c, _)| *c).collect()
    }

    /// The task of `cpu`'s thread.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("t/%u", |c| c)?;
    /// let cpu = set.cpus()[0];
    /// assert_eq!(set.task(cpu).unwrap().name(), format!("t/{cpu}"));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn task(&self, cpu: usize) -> Option<&Task> {
        self.get(cpu).ok().map(Kthread::task)
    }

    /// Every task of the set, in CPU order.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("all/%u", |c| c)?;
    /// assert!(set.tasks().all(|t| t.is_per_cpu() && t.is_bound()));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.threads.iter().map(|(_, k)| k.task())
    }

    fn get(&self, cpu: usize) -> Result<&Kthread<T>, Error> {
        self.threads
            .iter()
            .find(|(c, _)| *c == cpu)
            .map(|(_, k)| k)
            .ok_or(Error::CpuNotAllowed(cpu))
    }

    /// Takes `cpu` offline: parks its thread (`smpboot_park_threads()`).
    ///
    /// Errors: the CPU is not in the set, or it is already offline.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("off/%u", |c| {
    ///     while !kthread::should_stop() {
    ///         if kthread::should_park() { kthread::parkme(); }
    ///         kthread::set_current_state(kthread::TaskState::Interruptible);
    ///         if !kthread::should_stop() && !kthread::should_park() { kthread::schedule(); }
    ///         kthread::set_current_state(kthread::TaskState::Running);
    ///     }
    ///     c
    /// })?;
    /// set.offline(set.cpus()[0])?;
    /// assert!(set.offline(set.cpus()[0]).is_err());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn offline(&self, cpu: usize) -> Result<(), Error> {
        self.get(cpu)?.park()
    }

    /// Brings `cpu` online: re-binds and unparks its thread (`smpboot_unpark_threads()`).
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("on/%u", |c| c)?;
    /// set.online(set.cpus()[0])?; // not offline: nothing to do
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn online(&self, cpu: usize) -> Result<(), Error> {
        self.get(cpu)?.unpark();
        Ok(())
    }

    /// Parks the threads of CPUs the process may no longer use and unparks
    /// those it may use again (after a cgroup cpuset or `taskset -p`
    /// change); returns `(taken offline, brought online)`.
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("f/%u", |c| c)?;
    /// let (off, on) = set.follow_affinity();
    /// assert!(off.is_empty() && on.is_empty());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn follow_affinity(&self) -> (Vec<usize>, Vec<usize>) {
        let allowed = topology::allowed_cpus();
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for (cpu, k) in &self.threads {
            let parked = k.task().has(flags::SHOULD_PARK);
            if !allowed.contains(*cpu) && !parked {
                if k.park().is_ok() {
                    off.push(*cpu);
                }
            } else if allowed.contains(*cpu) && parked {
                k.unpark();
                on.push(*cpu);
            }
        }
        (off, on)
    }

    /// Stops every thread and returns each CPU's result (`smpboot_unregister_percpu_thread()`).
    ///
    /// ```
    /// let set = kthread::PerCpu::spawn("s/%u", |c| c * 2)?;
    /// for (cpu, r) in set.stop() {
    ///     assert_eq!(r.unwrap(), cpu * 2);
    /// }
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn stop(self) -> Vec<(usize, Result<T, StopError>)> {
        self.threads
            .into_iter()
            .map(|(cpu, k)| (cpu, k.stop()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_expand_the_cpu() {
        assert_eq!(super::name_for("poller/%u", 3), "poller/3");
        assert_eq!(super::name_for("x%d", 0), "x0");
        assert_eq!(super::name_for("plain", 1), "plain");
    }
}
