/* SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0 */
/*
 * env.h - the one environment header of the conformance programs.
 *
 * Every check program (kt_*.c) is one file with one entry point,
 * run_checks(), and is built twice from the same source:
 *
 *  - as an out-of-tree module of a real Linux kernel (__KERNEL__ defined by
 *    kbuild): this header includes the kernel's own headers, and the
 *    module's init function calls run_checks();
 *  - as a user-space program against capi/include/kthread.h and
 *    libkthread: this header includes kthread.h, and main() calls
 *    run_checks().
 *
 * Every kthread, worker, completion, scheduling and freezer call in the
 * programs is spelled the same on both sides. What differs lives here, under
 * env_* names: printing (printk / printf), the clock, the calling thread's
 * name and CPU, task references (get_task_struct on the kernel only), heap
 * memory, the kernel-side freeze (pm_suspend with pm_test=freezer), plus the
 * kernel's atomic_t API for user space and the names a 6.1 kernel lacks
 * or does not export to modules (the 3.x worker names, 6.14's
 * kthread_run_worker*, kthread_exit).
 *
 * Output: one line per check, "ok PROG.NAME" or "FAIL PROG.NAME", then
 * "# PROG: N passed, M failed". In the kernel each line is printed with
 * the prefix "KTC " so that run.sh can grep it out of the console log.
 */
#ifndef KTC_ENV_H
#define KTC_ENV_H

#ifndef KTC_PROG
#error "define KTC_PROG (the program's name) before including env.h"
#endif

/* The single entry point of every check program. */
void run_checks(void);

#ifdef __KERNEL__
/* ======================================================================== */
/* The real kernel                                                          */

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/freezer.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>
#include <linux/suspend.h>
#include <linux/timer.h>
#include <linux/version.h>
#include <linux/wait.h>

#define ktc_print(fmt, ...) printk(KERN_INFO "KTC " fmt "\n", ##__VA_ARGS__)

/* The Linux 3.x worker names (renamed in 4.9): the modern calls. */
#ifndef init_kthread_worker
#define init_kthread_worker(worker) kthread_init_worker(worker)
#endif
#ifndef init_kthread_work
#define init_kthread_work(work, fn) kthread_init_work(work, fn)
#endif
#ifndef queue_kthread_work
#define queue_kthread_work(worker, work) kthread_queue_work(worker, work)
#endif
#ifndef flush_kthread_work
#define flush_kthread_work(work) kthread_flush_work(work)
#endif
#ifndef flush_kthread_worker
#define flush_kthread_worker(worker) kthread_flush_worker(worker)
#endif

/*
 * 6.14 names. Before 6.14, kthread_create_worker() returns a running worker
 * (what kthread_run_worker() does from 6.14 on) and
 * kthread_create_worker_on_cpu() takes its own printf arguments.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 14, 0)
#define kthread_run_worker(flags, ...) kthread_create_worker(flags, __VA_ARGS__)
#define kthread_run_worker_on_cpu(cpu, flags, namefmt) \
	kthread_create_worker_on_cpu(cpu, flags, namefmt, cpu)
#else
#error "the checks are written for Linux 6.1-6.13 (kthread_create_worker returns a running worker)"
#endif

/*
 * kthread_exit() is declared in 6.1's <linux/kthread.h> but not exported to
 * modules; kthread_complete_and_exit() is, and with a NULL completion it is
 * exactly kthread_exit() (kernel/kthread.c).
 */
#define kthread_exit(code) kthread_complete_and_exit(NULL, code)

static inline long long env_now_ms(void)
{
	return ktime_get_ns() / NSEC_PER_MSEC;
}

/* The calling thread's name as the OS shows it (TASK_COMM_LEN = 16). */
static inline void env_comm(char *buf)
{
	__get_task_comm(buf, TASK_COMM_LEN, current);
}

static inline int env_cpu(void)
{
	return raw_smp_processor_id();
}

/* How many CPUs the calling thread may run on. */
static inline int env_allowed_cpus(void)
{
	return current->nr_cpus_allowed;
}

static inline int env_online_cpus(void)
{
	return num_online_cpus();
}

static inline int env_first_cpu(void)
{
	return cpumask_first(cpu_online_mask);
}

static inline int env_last_cpu(void)
{
	return cpumask_last(cpu_online_mask);
}

/*
 * A reference on a task whose function may return before kthread_stop():
 * without it the kernel may free the task_struct first. The library keeps
 * the task until kthread_stop() anyway.
 */
static inline void env_get_task(struct task_struct *k)
{
	get_task_struct(k);
}

static inline void env_put_task(struct task_struct *k)
{
	put_task_struct(k);
}

/*
 * Wait (bounded) until a kthread whose function returned is exiting, so that
 * kthread_park() sees PF_EXITING: parking a thread that returns without
 * parking would wait forever in a real kernel.
 */
static inline void env_wait_exiting(struct task_struct *k)
{
	long long deadline = env_now_ms() + 10000;

	while (!(READ_ONCE(k->flags) & PF_EXITING) && env_now_ms() < deadline)
		msleep(1);
}

static inline void *env_zalloc(size_t size)
{
	return kzalloc(size, GFP_KERNEL);
}

static inline void env_free(void *p)
{
	kfree(p);
}

/*
 * Whether /sys/power/pm_test selects "freezer": only then does pm_suspend()
 * freeze the tasks, wait pm_test_delay seconds and thaw, instead of really
 * suspending the machine (which nothing here would wake).
 */
static inline bool env_pm_test_is_freezer(void)
{
	char buf[128];
	struct file *f;
	loff_t pos = 0;
	ssize_t n;

	f = filp_open("/sys/power/pm_test", O_RDONLY, 0);
	if (IS_ERR(f))
		return false;
	n = kernel_read(f, buf, sizeof(buf) - 1, &pos);
	filp_close(f, NULL);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "[freezer]") != NULL;
}

/*
 * Freeze every freezable task, then thaw them: 0 on success. The kernel side
 * is a suspend-to-idle in pm_test "freezer" mode (run.sh's init sets
 * /sys/power/pm_test): freeze_processes() + freeze_kernel_threads(), the
 * pm_test delay, thaw. It waits (up to /sys/power/pm_freeze_timeout) until
 * every freezable kthread is frozen, keeping the frozen ones frozen. The
 * caller is the suspending task (PF_SUSPEND_TASK): it is not frozen itself.
 */
static inline int env_freeze_cycle(void)
{
	if (!env_pm_test_is_freezer()) {
		ktc_print("# /sys/power/pm_test is not [freezer]: no freeze");
		return -ENODEV;
	}
	return pm_suspend(PM_SUSPEND_TO_IDLE);
}

#else /* !__KERNEL__ */
/* ======================================================================== */
/* User space, against libkthread                                           */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "kthread.h"

#define ktc_print(fmt, ...)                                                  \
	do {                                                                 \
		printf(fmt "\n", ##__VA_ARGS__);                             \
		fflush(stdout);                                              \
	} while (0)

/* The kernel's atomic_t, on C11 atomics (sequentially consistent). */
typedef struct {
	atomic_int counter;
} atomic_t;

#define ATOMIC_INIT(i) { (i) }

static inline int atomic_read(atomic_t *v)
{
	return atomic_load(&v->counter);
}

static inline void atomic_set(atomic_t *v, int i)
{
	atomic_store(&v->counter, i);
}

static inline void atomic_inc(atomic_t *v)
{
	atomic_fetch_add(&v->counter, 1);
}

static inline int atomic_inc_return(atomic_t *v)
{
	return atomic_fetch_add(&v->counter, 1) + 1;
}

static inline int atomic_xchg(atomic_t *v, int i)
{
	return atomic_exchange(&v->counter, i);
}

#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val) (*(volatile __typeof__(x) *)&(x) = (val))

#define TASK_COMM_LEN 16

static inline long long env_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void env_comm(char *buf)
{
	memset(buf, 0, TASK_COMM_LEN);
	prctl(PR_GET_NAME, buf, 0, 0, 0);
}

static inline int env_cpu(void)
{
	return sched_getcpu();
}

static inline int env_allowed_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	return CPU_COUNT(&set);
}

/* The CPUs of the process when main() started: the user-space "online". */
static cpu_set_t ktc_process_cpus;

static inline int env_online_cpus(void)
{
	return CPU_COUNT(&ktc_process_cpus);
}

static inline int env_first_cpu(void)
{
	int cpu;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &ktc_process_cpus))
			return cpu;
	return 0;
}

static inline int env_last_cpu(void)
{
	int cpu;

	for (cpu = CPU_SETSIZE - 1; cpu > 0; cpu--)
		if (CPU_ISSET(cpu, &ktc_process_cpus))
			return cpu;
	return 0;
}

static inline void env_get_task(struct task_struct *k)
{
	get_task_struct(k); /* as in the kernel: kept after it returns */
}

static inline void env_put_task(struct task_struct *k)
{
	put_task_struct(k);
}

static inline void env_wait_exiting(struct task_struct *k)
{
	(void)k; /* not observable through the C ABI: give it time to exit */
	msleep(50);
}

/* Zeroed, and aligned for a struct kthread_worker (64 bytes). */
static inline void *env_zalloc(size_t size)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, rounded);

	if (p)
		memset(p, 0, rounded);
	return p;
}

static inline void env_free(void *p)
{
	free(p);
}

/* freeze_kthreads() + thaw_kthreads(): the library's freezer. */
static inline int env_freeze_cycle(void)
{
	int ret = freeze_kthreads(20000);

	if (ret)
		return ret;
	return thaw_kthreads();
}

#endif /* __KERNEL__ */

/* ======================================================================== */
/* Common to both sides                                                     */

static int ktc_passed, ktc_failed;

/* One line per check; call from run_checks()'s thread only. */
#define CHECK(name, cond) ktc_check(name, (cond) ? 1 : 0)

static inline void ktc_check(const char *name, int ok)
{
	if (ok) {
		ktc_passed++;
		ktc_print("ok " KTC_PROG ".%s", name);
	} else {
		ktc_failed++;
		ktc_print("FAIL " KTC_PROG ".%s", name);
	}
}

/*
 * A time check: `ms` at least `min` (or below `max`), with the value printed
 * on a "# note" line when it fails. Lower bounds are half the time asked
 * for: a TCG guest on a loaded host keeps time loosely (one kernel run saw
 * msleep(20) take under 19 ms by ktime_get()); a call that does not wait
 * at all still fails.
 */
#define CHECK_MS_AT_LEAST(name, ms, min) ktc_check_ms(name, ms, min, 1)
#define CHECK_MS_BELOW(name, ms, max) ktc_check_ms(name, ms, max, 0)

static inline void ktc_check_ms(const char *name, long long ms, long long bound,
				int at_least)
{
	int ok = at_least ? ms >= bound : ms < bound;

	ktc_check(name, ok);
	if (!ok)
		ktc_print("# note " KTC_PROG ".%s: %lld ms, expected %s %lld ms",
			  name, ms, at_least ? ">=" : "<", bound);
}

static inline int ktc_summary(void)
{
	ktc_print("# " KTC_PROG ": %d passed, %d failed", ktc_passed, ktc_failed);
	return ktc_failed ? 1 : 0;
}

/* The bound on every wait that should end soon: 10 s. */
#define WAIT_LONG msecs_to_jiffies(10000)

/* Wait (bounded, 10 s) until `cond` holds; evaluates to whether it did. */
#define WAIT_UNTIL(cond)                                                     \
	({                                                                   \
		long long __ktc_deadline = env_now_ms() + 10000;             \
		while (!(cond) && env_now_ms() < __ktc_deadline)             \
			msleep(1);                                           \
		(cond) ? 1 : 0;                                              \
	})

/*
 * The tail of a kthread function that must not return before kthread_stop()
 * (in the kernel, a kthread that returns by itself may be freed before the
 * stop unless someone holds a reference): the kernel's lost-wake-up-free
 * loop.
 */
static inline void ktc_wait_for_stop(void)
{
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
}

#ifdef __KERNEL__
static int __init ktc_init(void)
{
	ktc_print("# " KTC_PROG ": start");
	run_checks();
	ktc_summary();
	return 0;
}

static void __exit ktc_exit(void)
{
}

module_init(ktc_init);
module_exit(ktc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kthread conformance checks: " KTC_PROG);
#else
int main(void)
{
	sched_getaffinity(0, sizeof(ktc_process_cpus), &ktc_process_cpus);
	ktc_print("# " KTC_PROG ": start");
	run_checks();
	return ktc_summary();
}
#endif

#endif /* KTC_ENV_H */
