/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * kthread.h - the Linux kernel's kthread API in user space.
 *
 * The C interface of the `kthread` Rust library (libkthread.a / libkthread.so).
 * Names, types and return conventions follow the kernel's <linux/kthread.h>,
 * <linux/sched.h>, <linux/completion.h> and <linux/freezer.h>, so kernel-style
 * code compiles against it:
 *
 *     static int fn(void *data)
 *     {
 *             while (!kthread_should_stop()) {
 *                     set_current_state(TASK_INTERRUPTIBLE);
 *                     if (!kthread_should_stop() && !have_work)
 *                             schedule();
 *                     __set_current_state(TASK_RUNNING);
 *                     ...
 *             }
 *             return 0;
 *     }
 *
 *     struct task_struct *k = kthread_run(fn, data, "mythread/%d", 0);
 *     if (IS_ERR(k))
 *             return PTR_ERR(k);
 *     ...
 *     ret = kthread_stop(k);
 *
 * Each kthread is an OS thread created by the library's `kthreadd` thread with
 * a clean environment (every signal blocked, SCHED_OTHER at nice 0, affinity =
 * every allowed CPU, default NUMA policy), whatever thread called create. It
 * starts stopped: threadfn runs only after the first wake_up_process().
 *
 * Conventions (the kernel's):
 *  - Errors are negative errno values (<errno.h>), or error pointers where a
 *    pointer is returned: test with IS_ERR(), read with PTR_ERR().
 *  - A NULL or error pointer passed in gives -EINVAL (false, NULL, or nothing
 *    for calls returning bool, a pointer, or void); never a crash. Other
 *    pointers must be valid, as in the kernel: a task from kthread_create*()
 *    until kthread_stop() returns, `current` for its thread's life. The
 *    kthread_* calls taking a task look it up among the live kthreads before
 *    using it (a stopped or non-kthread task gives -EINVAL);
 *    wake_up_process(), which also wakes threads that are not kthreads,
 *    uses it directly.
 *  - Time is in jiffies of HZ per second; MAX_SCHEDULE_TIMEOUT never expires.
 *  - In a fork() child, the tasks and workers inherited from the parent
 *    answer at once and never wait for the parent's threads: kthread_stop(),
 *    kthread_park() and kthread_bind() give -ECHILD, wake_up_process() 0,
 *    kthread_queue_work() false, the flushes and kthread_destroy_worker()
 *    return; the child creates its own.
 *  - Where the kernel changed a call across versions, this header follows
 *    Linux 6.1-6.13 and says so at the call.
 *
 * Requirements: a 64-bit Linux target (x86-64, aarch64), C11 or later or
 * C++11 or later. kthread_run() is a GNU statement expression (gcc, clang)
 * as in the kernel; other compilers get an equivalent inline function.
 * Link with -lkthread (plus, for the static library, -lpthread -ldl -lm -lrt
 * -lutil -lgcc_s); see capi/README.md or `pkg-config --libs kthread`.
 */
#ifndef KTHREAD_H
#define KTHREAD_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

#ifdef __cplusplus
#define KTHREAD_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define KTHREAD_ALIGNAS(n) alignas(n)
#define KTHREAD_ALIGNOF(t) alignof(t)
#else
#define KTHREAD_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define KTHREAD_ALIGNAS(n) _Alignas(n)
#define KTHREAD_ALIGNOF(t) _Alignof(t)
#endif

#if defined(__GNUC__)
#define KTHREAD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KTHREAD_PRINTF(fmt, args)
#endif

/* container_of - the structure that embeds `ptr` as its `member`. */
#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

/* ------------------------------------------------------------------------ */
/* Error pointers (<linux/err.h>)                                           */

#define MAX_ERRNO 4095

#define IS_ERR_VALUE(x) \
	((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)

static inline void *ERR_PTR(long error)
{
	return (void *)error;
}

static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

static inline bool IS_ERR_OR_NULL(const void *ptr)
{
	return !ptr || IS_ERR_VALUE((unsigned long)ptr);
}

/* ------------------------------------------------------------------------ */
/* Tasks, states, schedule and wake (<linux/sched.h>)                       */

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

/*
 * A task: the shared state of one kthread (or of a thread that called
 * get_current()). Only ever handled by pointer. Two fields are public and
 * read as the kernel's: `pid` (the thread id, as task_pid_nr()) and `comm`
 * (the name, cut to 15 bytes and NUL-terminated); the rest is private.
 */
struct task_struct {
	int pid;
	char comm[TASK_COMM_LEN];
};

static inline int task_pid_nr(struct task_struct *tsk)
{
	return tsk->pid;
}

/* Copy tsk->comm into `buf` (an array): get_task_comm(buf, tsk). */
char *__get_task_comm(char *buf, size_t buf_size, struct task_struct *tsk);
#define get_task_comm(buf, tsk) __get_task_comm(buf, sizeof(buf), tsk)

/*
 * Keep `tsk` valid (its fields readable, wake_up_process() harmless) after
 * it ends, until put_task_struct().
 */
struct task_struct *get_task_struct(struct task_struct *tsk);
void put_task_struct(struct task_struct *tsk);

/*
 * Task states, with the kernel's values (6.1). Every bit the kernel defines
 * is honoured: TASK_FREEZABLE marks a sleep as a freeze point (as
 * wait_event_freezable() uses it); TASK_IDLE is an uninterruptible sleep
 * shown as `I`; TASK_KILLABLE behaves as TASK_UNINTERRUPTIBLE (a fatal
 * signal ends the whole process in user space). The states only the
 * scheduler or the library set (stopped, traced, parked, dead, frozen, ...)
 * and unknown bits are reported on stderr once per call site and sleep
 * uninterruptibly instead: never a state in which schedule() returns at
 * once.
 */
#define TASK_RUNNING 0x00000000
#define TASK_INTERRUPTIBLE 0x00000001
#define TASK_UNINTERRUPTIBLE 0x00000002
#define __TASK_STOPPED 0x00000004
#define __TASK_TRACED 0x00000008
#define EXIT_DEAD 0x00000010
#define EXIT_ZOMBIE 0x00000020
#define TASK_PARKED 0x00000040
#define TASK_DEAD 0x00000080
#define TASK_WAKEKILL 0x00000100
#define TASK_WAKING 0x00000200
#define TASK_NOLOAD 0x00000400
#define TASK_NEW 0x00000800
#define TASK_RTLOCK_WAIT 0x00001000
#define TASK_FREEZABLE 0x00002000
#define __TASK_FREEZABLE_UNSAFE 0x00004000
#define TASK_FROZEN 0x00008000
#define TASK_STATE_MAX 0x00010000
#define TASK_KILLABLE (TASK_WAKEKILL | TASK_UNINTERRUPTIBLE)
#define TASK_STOPPED (TASK_WAKEKILL | __TASK_STOPPED)
#define TASK_TRACED __TASK_TRACED
#define TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD)
#define TASK_NORMAL (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE)
#define TASK_FREEZABLE_UNSAFE (TASK_FREEZABLE | __TASK_FREEZABLE_UNSAFE)

/* Jiffies per second. Fixed by the library: do not redefine. */
#define HZ 1000
#define MAX_SCHEDULE_TIMEOUT LONG_MAX
#define NUMA_NO_NODE (-1)

/*
 * The calling thread's task. A thread that is not a kthread (main(), say)
 * is given one on first use, so it too can sleep in schedule() and be
 * woken by wake_up_process(current-of-that-thread); that task lives as
 * long as the thread. Define KTHREAD_NO_CURRENT_MACRO to keep the name
 * `current` free and use get_current() instead.
 */
struct task_struct *get_current(void);
#ifndef KTHREAD_NO_CURRENT_MACRO
#define current get_current()
#endif

/*
 * Publish the caller's state before it checks its wake-up condition; then
 * schedule() sleeps only while the state is still not TASK_RUNNING, so a
 * wake_up_process() between the two is never lost. The kernel's
 * __set_current_state() omits a barrier; here both are the same, always
 * ordered, operation. Both are macros that pass the call site, so a state
 * the library does not take is reported once per line that sets it; the
 * functions of the same names serve callers that take their address.
 */
void (set_current_state)(unsigned int state);
void (__set_current_state)(unsigned int state);
void kthread_set_current_state_at(unsigned int state, const char *file,
				  int line);
#define set_current_state(state) \
	kthread_set_current_state_at((state), __FILE__, __LINE__)
#define __set_current_state(state) \
	kthread_set_current_state_at((state), __FILE__, __LINE__)

/* Sleep until woken, unless woken since set_current_state() already. */
void schedule(void);

/*
 * Sleep at most `timeout` jiffies (after set_current_state()); returns the
 * jiffies left, 0 if it expired. MAX_SCHEDULE_TIMEOUT sleeps until woken
 * and returns MAX_SCHEDULE_TIMEOUT. A negative timeout returns 0 at once in
 * TASK_RUNNING (and is reported on stderr, as the kernel logs it).
 */
long schedule_timeout(long timeout);

static inline long schedule_timeout_interruptible(long timeout)
{
	set_current_state(TASK_INTERRUPTIBLE);
	return schedule_timeout(timeout);
}

static inline long schedule_timeout_uninterruptible(long timeout)
{
	set_current_state(TASK_UNINTERRUPTIBLE);
	return schedule_timeout(timeout);
}

static inline long schedule_timeout_killable(long timeout)
{
	set_current_state(TASK_KILLABLE);
	return schedule_timeout(timeout);
}

static inline long schedule_timeout_idle(long timeout)
{
	set_current_state(TASK_IDLE);
	return schedule_timeout(timeout);
}

/*
 * Scheduling policy and priority (<linux/sched.h>, as 5.9+: the setters
 * return nothing and a failure, such as no CAP_SYS_NICE, is reported on
 * stderr as the kernel WARNs; kthread_sched_setscheduler() returns it).
 * sched_set_fifo(): SCHED_FIFO at MAX_RT_PRIO / 2; sched_set_fifo_low():
 * at 1; sched_set_normal(): SCHED_NORMAL at `nice`; set_user_nice() ignores
 * a value outside MIN_NICE..MAX_NICE, as the kernel does.
 */
#define MAX_NICE 19
#define MIN_NICE -20
#define NICE_WIDTH (MAX_NICE - MIN_NICE + 1)
#define MAX_RT_PRIO 100
void sched_set_fifo(struct task_struct *p);
void sched_set_fifo_low(struct task_struct *p);
void sched_set_normal(struct task_struct *p, int nice);
void set_user_nice(struct task_struct *p, long nice);
int task_nice(struct task_struct *p);
/*
 * Set `p`'s policy (SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2, SCHED_BATCH 3,
 * SCHED_IDLE 5) and priority (1..99 real-time, else 0): 0, -EINVAL (bad
 * pointer, policy or priority), -EPERM (not permitted), -ESRCH (its
 * threadfn has returned). Not a kernel call.
 */
int kthread_sched_setscheduler(struct task_struct *p, int policy, int priority);

/* A preemption point in the kernel; user-space threads are preempted anyway. */
static inline int cond_resched(void)
{
	return 0;
}

/*
 * Wake `p` if it sleeps in TASK_INTERRUPTIBLE or TASK_UNINTERRUPTIBLE:
 * 1 if it was woken, 0 if it was already running; -EINVAL for NULL or an
 * error pointer. The first wake of a kthread starts its threadfn.
 */
int wake_up_process(struct task_struct *p);

static inline unsigned long msecs_to_jiffies(unsigned int m)
{
	return ((unsigned long)m * HZ + 999) / 1000;
}

static inline unsigned int jiffies_to_msecs(unsigned long j)
{
	return (unsigned int)(j * 1000 / HZ);
}

static inline unsigned int jiffies_to_usecs(unsigned long j)
{
	return (unsigned int)(j * (1000000 / HZ));
}

static inline unsigned long usecs_to_jiffies(unsigned int u)
{
	return ((unsigned long)u * HZ + 999999) / 1000000;
}

/*
 * jiffies: the monotonic clock since boot in jiffies, starting at the
 * kernel's INITIAL_JIFFIES offset; compare with time_after() and friends,
 * which are right across a wrap.
 */
unsigned long kthread_jiffies(void);
#define jiffies (kthread_jiffies())
#define get_jiffies_64() ((unsigned long long)kthread_jiffies())

#define time_after(a, b) ((long)((b) - (a)) < 0)
#define time_before(a, b) time_after(b, a)
#define time_after_eq(a, b) ((long)((a) - (b)) >= 0)
#define time_before_eq(a, b) time_after_eq(b, a)
#define time_in_range(a, b, c) (time_after_eq(a, b) && time_before_eq(a, c))
#define time_in_range_open(a, b, c) (time_after_eq(a, b) && time_before(a, c))
#define time_is_before_jiffies(a) time_after(jiffies, a)
#define time_is_after_jiffies(a) time_before(jiffies, a)

/*
 * A relative timeout `j` rounded so that it ends on a whole second (down if
 * less than a quarter second past one, else up), as the kernel's for CPU 0;
 * `j` itself if the rounded end is not in the future.
 */
static inline unsigned long round_jiffies_relative(unsigned long j)
{
	unsigned long now = jiffies, end = now + j, rem = end % HZ;
	unsigned long rounded = rem < HZ / 4 ? end - rem : end - rem + HZ;

	return time_after(rounded, now) ? rounded - now : j;
}

/*
 * Sleep `msecs` milliseconds interruptibly; returns the milliseconds left
 * if a signal (one the kthread allowed, sent with send_sig()) ended it
 * early, else 0. A wake_up_process() does not end it.
 */
unsigned long msleep_interruptible(unsigned int msecs);

/* Sleep at least `min` microseconds, uninterruptibly. */
void usleep_range(unsigned long min, unsigned long max);

/* Sleep at least `msecs` milliseconds (uninterruptible, as the kernel's). */
static inline void msleep(unsigned int msecs)
{
	long timeout = (long)msecs_to_jiffies(msecs) + 1;

	while (timeout)
		timeout = schedule_timeout_uninterruptible(timeout);
}

/* ------------------------------------------------------------------------ */
/* CPU masks (<linux/cpumask.h>, the part kthread_bind_mask() needs)        */

#define KTHREAD_NR_CPUS 1024
#define KTHREAD_BITS_PER_LONG (8 * sizeof(unsigned long))

struct cpumask {
	unsigned long bits[KTHREAD_NR_CPUS / (8 * sizeof(unsigned long))];
};
typedef struct cpumask cpumask_t;

#define cpumask_bits(maskp) ((maskp)->bits)

static inline void cpumask_clear(struct cpumask *dstp)
{
	size_t i;

	for (i = 0; i < KTHREAD_NR_CPUS / KTHREAD_BITS_PER_LONG; i++)
		dstp->bits[i] = 0;
}

static inline void cpumask_set_cpu(unsigned int cpu, struct cpumask *dstp)
{
	if (cpu < KTHREAD_NR_CPUS)
		dstp->bits[cpu / KTHREAD_BITS_PER_LONG] |=
			1UL << (cpu % KTHREAD_BITS_PER_LONG);
}

static inline void cpumask_clear_cpu(unsigned int cpu, struct cpumask *dstp)
{
	if (cpu < KTHREAD_NR_CPUS)
		dstp->bits[cpu / KTHREAD_BITS_PER_LONG] &=
			~(1UL << (cpu % KTHREAD_BITS_PER_LONG));
}

static inline bool cpumask_test_cpu(int cpu, const struct cpumask *srcp)
{
	return cpu >= 0 && cpu < KTHREAD_NR_CPUS &&
	       (srcp->bits[(unsigned int)cpu / KTHREAD_BITS_PER_LONG] >>
		((unsigned int)cpu % KTHREAD_BITS_PER_LONG)) & 1;
}

/* ------------------------------------------------------------------------ */
/* Creating and stopping kthreads (<linux/kthread.h>)                       */

/* Names longer than this (NUL included) are cut when formatted. */
#define KTHREAD_NAME_MAX 256

/*
 * Create a stopped kthread called `name` (already formatted) that will run
 * threadfn(data) on NUMA `node` (NUMA_NO_NODE: any). The entry point behind
 * kthread_create_on_node(); also the one to call from other languages.
 */
struct task_struct *kthread_create_on_node_name(int (*threadfn)(void *data),
						void *data, int node,
						const char *name);

static inline struct task_struct *
kthread_create_on_node(int (*threadfn)(void *data), void *data, int node,
		       const char namefmt[], ...) KTHREAD_PRINTF(4, 5);

/*
 * Create a kthread, stopped: threadfn(data) runs only after the first
 * wake_up_process() (or kthread_park()/kthread_unpark()). The name is
 * printf-formatted; the OS shows its first 15 bytes, the task keeps it all.
 * Returns the task or an error pointer: -EINVAL (NULL threadfn or namefmt,
 * node not online), -EAGAIN / -ENOMEM (no thread could be created).
 */
static inline struct task_struct *
kthread_create_on_node(int (*threadfn)(void *data), void *data, int node,
		       const char namefmt[], ...)
{
	char name[KTHREAD_NAME_MAX];
	va_list args;

	if (!namefmt)
		return (struct task_struct *)ERR_PTR(-EINVAL);
	va_start(args, namefmt);
	vsnprintf(name, sizeof(name), namefmt, args);
	va_end(args);
	return kthread_create_on_node_name(threadfn, data, node, name);
}

#define kthread_create(threadfn, data, ...) \
	kthread_create_on_node(threadfn, data, NUMA_NO_NODE, __VA_ARGS__)

static inline struct task_struct *
__kthread_run(int (*threadfn)(void *data), void *data, const char namefmt[],
	      ...) KTHREAD_PRINTF(3, 4);

static inline struct task_struct *
__kthread_run(int (*threadfn)(void *data), void *data, const char namefmt[],
	      ...)
{
	char name[KTHREAD_NAME_MAX];
	struct task_struct *k;
	va_list args;

	if (!namefmt)
		return (struct task_struct *)ERR_PTR(-EINVAL);
	va_start(args, namefmt);
	vsnprintf(name, sizeof(name), namefmt, args);
	va_end(args);
	k = kthread_create_on_node_name(threadfn, data, NUMA_NO_NODE, name);
	if (!IS_ERR(k))
		wake_up_process(k);
	return k;
}

/*
 * kthread_run(threadfn, data, namefmt, ...): create and wake; evaluates to
 * the task or an error pointer (then nothing was woken).
 */
#if defined(__GNUC__)
#define kthread_run(threadfn, data, ...)                                  \
	__extension__({                                                   \
		struct task_struct *__k =                                 \
			kthread_create(threadfn, data, __VA_ARGS__);      \
		if (!IS_ERR(__k))                                         \
			wake_up_process(__k);                             \
		__k;                                                      \
	})
#else
#define kthread_run(threadfn, data, ...) __kthread_run(threadfn, data, __VA_ARGS__)
#endif

/*
 * Create a stopped kthread bound to `cpu` before it runs; its name is
 * `namefmt` formatted with `cpu` ("ksoftirqd/%u"). -EINVAL for a CPU the
 * process may not use.
 */
struct task_struct *kthread_create_on_cpu(int (*threadfn)(void *data),
					  void *data, unsigned int cpu,
					  const char *namefmt);

/* kthread_create_on_cpu(), then wake it. */
static inline struct task_struct *
kthread_run_on_cpu(int (*threadfn)(void *data), void *data, unsigned int cpu,
		   const char *namefmt)
{
	struct task_struct *p = kthread_create_on_cpu(threadfn, data, cpu, namefmt);

	if (!IS_ERR(p))
		wake_up_process(p);
	return p;
}

/*
 * Set should-stop, wake `k` (out of schedule(), kthread_parkme() and a
 * freeze in kthread_freezable_should_stop()), wait for threadfn to return
 * and return its value. -EINTR if `k` was never woken: threadfn never ran.
 * Once wake_up_process() has returned, threadfn always runs, even if this
 * follows at once (it then sees kthread_should_stop() true). Also -EINVAL
 * for NULL, an error pointer or a task already stopped; -EDEADLK from `k`
 * itself (the request stands: threadfn should return).
 *
 * As in the kernel, a kthread whose threadfn returns by itself (no stop
 * requested) and that nobody holds with get_task_struct() is reaped at its
 * exit: thread, stack and task freed, and `k` invalid from then on. Hold
 * it (get_task_struct() before it can end; kthread_stop_put() or
 * put_task_struct() after) to kthread_stop() it later and get its result.
 * kthread_stop() of a reaped one is the kernel's use after free; here it
 * is -ESRCH while the address has not been reused by a new kthread (the
 * last 4096 reaped are remembered), and otherwise undetectable.
 * `k` is invalid once this returns.
 */
int kthread_stop(struct task_struct *k);
/* kthread_stop(), then put_task_struct() (6.6+). */
int kthread_stop_put(struct task_struct *k);

/*
 * kthread_stop() with a deadline: waits at most `timeout` jiffies
 * (MAX_SCHEDULE_TIMEOUT: for ever) for threadfn to return, then gives
 * -ETIMEDOUT with the stop still requested and `k` still valid (stop it
 * again later). Not in any kernel: shutdown code with a deadline needs it.
 */
int kthread_stop_timeout(struct task_struct *k, long timeout);

/*
 * End the calling kthread with `result` (what kthread_stop() returns), from
 * anywhere below its threadfn: the frames in between are unwound, so they
 * need unwind tables (the default of gcc and clang on x86-64 and aarch64
 * Linux; -fexceptions makes sure). Outside a kthread created here it is
 * reported and returns. kthread_complete_and_exit() first completes `comp`.
 */
struct completion;
void kthread_exit(long result);
void kthread_complete_and_exit(struct completion *comp, long code);
#define kthread_stop_put(k) kthread_stop(k)

/* Whether the calling kthread was asked to stop; false outside kthreads. */
bool kthread_should_stop(void);

/*
 * The `data` given at creation, of the caller's own kthread (current) or of
 * one from kthread_create*() not yet stopped; NULL for anything else.
 */
void *kthread_data(struct task_struct *k);

/*
 * Bind the not-yet-woken `k` to `cpu` / the CPUs in `mask`. The kernel's
 * return void (and WARN); these return 0, -EBUSY once `k` was woken, or
 * -EINVAL (a CPU the process may not use, an empty mask, a `k` that is not
 * a live kthread from kthread_create*()).
 */
int kthread_bind(struct task_struct *k, unsigned int cpu);
int kthread_bind_mask(struct task_struct *k, const struct cpumask *mask);

/*
 * Park `k` and return once it sits in kthread_parkme(): 0, -EBUSY if it is
 * parked or being parked, -ENOSYS if it has exited, -EINVAL if `k` is not
 * a live kthread from kthread_create*() (NULL, an error pointer, a stopped
 * task, main()'s task: none would ever park). A kthread never woken may be parked: that is its first wake, it
 * parks before threadfn, and kthread_unpark() then lets threadfn run.
 * threadfn must check kthread_should_park() in its loop, as in the kernel.
 */
int kthread_park(struct task_struct *k);
void kthread_unpark(struct task_struct *k);
bool kthread_should_park(void);
void kthread_parkme(void);

/* ------------------------------------------------------------------------ */
/* Freezer (<linux/freezer.h>)                                              */

/* ------------------------------------------------------------------------ */
/* Signals (<linux/sched/signal.h>)                                         */

/* What an interruptible wait returns when a signal ended it. */
#ifndef ERESTARTSYS
#define ERESTARTSYS 512
#endif

/*
 * A kthread ignores every signal until it calls allow_signal(sig). Then
 * send_sig(sig, t, priv) records `sig` for that kthread alone: its
 * interruptible sleeps end (the wait_event_interruptible*() family returns
 * -ERESTARTSYS, schedule() in TASK_INTERRUPTIBLE returns at once), a
 * SIGKILL also ends its killable sleeps, and a blocking system call it
 * sits in fails with EINTR (through one real-time signal the library
 * reserves; the process itself never receives `sig`, whatever it is).
 * signal_pending() stays true until flush_signals() or
 * kernel_dequeue_signal(). allow_signal() from a thread that is not a
 * kthread, or a bad number, is reported on stderr.
 */
void allow_signal(int sig);
void disallow_signal(int sig);
/* 1 if a signal is pending for `p` (0 for NULL or an error pointer). */
int signal_pending(struct task_struct *p);
/* 1 if SIGKILL is pending for `p`. */
int fatal_signal_pending(struct task_struct *p);
/* Forget every pending signal of `p`. */
void flush_signals(struct task_struct *p);
/*
 * 0 (also when `p` did not allow `sig`: ignored, as in the kernel),
 * -EINVAL for a bad number or pointer, -ESRCH once `p`'s function has
 * returned, -ECHILD for a task inherited across fork(). `priv` is unused.
 */
int send_sig(int sig, struct task_struct *p, int priv);
/* Take the lowest pending signal of `current` off its set; 0 if none. */
int kernel_dequeue_signal(void);

/*
 * kthreads are not freezable unless they call set_freezable() or are a
 * KTW_FREEZABLE worker. set_freezable() and try_to_freeze() return whether
 * the caller froze (sat in the refrigerator until thawed).
 */
bool set_freezable(void);
bool try_to_freeze(void);

/* Whether `p` should freeze now: the system freezes and `p` is freezable. */
bool kthread_freezing(struct task_struct *p);
#define freezing(p) kthread_freezing(p)

/*
 * Freeze if the system is freezing, then return kthread_should_stop().
 * *was_frozen (if not NULL) tells whether it froze. A kthread_stop()
 * releases a kthread frozen here.
 */
bool kthread_freezable_should_stop(bool *was_frozen);

/*
 * Freeze every freezable kthread (user-space freeze_kernel_threads()):
 * returns 0 once each sits in the refrigerator (or is parked, exited or
 * never woken), and the system stays frozen until thaw_kthreads(). Returns
 * -EBUSY if the system is frozen already, or if some kthread did not freeze
 * within `timeout_ms`: those are named on stderr ("freezing of tasks
 * failed") and everything is thawed again. Use it to quiesce background
 * threads before fork() or a snapshot.
 */
int freeze_kthreads(unsigned int timeout_ms);

/* Thaw every frozen kthread: 0, or -EINVAL if the system is not frozen. */
int thaw_kthreads(void);

/* The kernel's names, with its default 20 s freeze timeout. */
static inline int freeze_kernel_threads(void)
{
	return freeze_kthreads(20000);
}

static inline void thaw_kernel_threads(void)
{
	(void)thaw_kthreads();
}

/* ------------------------------------------------------------------------ */
/* Completions (<linux/completion.h>)                                       */

/*
 * A one-shot (or counting) handshake. Embeddable and usable on the stack;
 * all-zero memory is a fresh completion. Fields are private.
 */
struct completion {
	unsigned int __kthread_word;
};

#define COMPLETION_INITIALIZER(work) { 0 }
#define COMPLETION_INITIALIZER_ONSTACK(work) { 0 }
#define DECLARE_COMPLETION(work) \
	struct completion work = COMPLETION_INITIALIZER(work)
#define DECLARE_COMPLETION_ONSTACK(work) \
	struct completion work = COMPLETION_INITIALIZER_ONSTACK(work)

void init_completion(struct completion *x);
/* Only while nobody waits on it. */
void reinit_completion(struct completion *x);
/* Release one waiter, or let the next wait through. */
void complete(struct completion *x);
/* Release every waiter, now and later, until reinit_completion(). */
void complete_all(struct completion *x);
void wait_for_completion(struct completion *x);
/*
 * Wait at most `timeout` jiffies: 0 on timeout, else the jiffies left (at
 * least 1). MAX_SCHEDULE_TIMEOUT never expires. 0 for a bad pointer.
 */
unsigned long wait_for_completion_timeout(struct completion *x,
					  unsigned long timeout);
/*
 * The interruptible and killable waits return 0, or -ERESTARTSYS when a
 * pending signal ends them (any for the interruptible forms, SIGKILL for
 * the killable ones; see allow_signal()); the _timeout forms
 * return as wait_for_completion_timeout(). The _io forms are the plain ones
 * (I/O accounting does not exist in user space).
 */
long kthread_wait_for_completion_signalled(struct completion *x,
					   unsigned long timeout, int killable);

static inline int wait_for_completion_interruptible(struct completion *x)
{
	long r = kthread_wait_for_completion_signalled(x, LONG_MAX, 0);

	return r < 0 ? (int)r : 0;
}

static inline int wait_for_completion_killable(struct completion *x)
{
	long r = kthread_wait_for_completion_signalled(x, LONG_MAX, 1);

	return r < 0 ? (int)r : 0;
}

static inline long
wait_for_completion_interruptible_timeout(struct completion *x,
					  unsigned long timeout)
{
	return kthread_wait_for_completion_signalled(x, timeout, 0);
}

static inline long wait_for_completion_killable_timeout(struct completion *x,
							unsigned long timeout)
{
	return kthread_wait_for_completion_signalled(x, timeout, 1);
}

static inline void wait_for_completion_io(struct completion *x)
{
	wait_for_completion(x);
}

static inline unsigned long wait_for_completion_io_timeout(struct completion *x,
							   unsigned long timeout)
{
	return wait_for_completion_timeout(x, timeout);
}

/* Consume a completion without sleeping: whether there was one. */
bool try_wait_for_completion(struct completion *x);
/* Whether a wait would return at once. */
bool completion_done(struct completion *x);

/* ------------------------------------------------------------------------ */
/* Wait queues (<linux/wait.h>)                                             */

/*
 * A wait queue: a lock and a FIFO of sleeping tasks. Embeddable; all-zero
 * memory is an empty queue, so DECLARE_WAIT_QUEUE_HEAD needs no
 * constructor. Fields are private (the library's WaitQueue).
 */
typedef struct wait_queue_head {
	unsigned int __lock;
	unsigned int __sleepers;
	void *__head;
	void *__tail;
} wait_queue_head_t;

/*
 * One waiter, usually on the waiter's stack (DEFINE_WAIT). `flags` holds
 * WQ_FLAG_EXCLUSIVE; `private` is the waiting task. Must stay valid and
 * unmoved while queued: finish_wait() / remove_wait_queue() before it goes.
 * Custom wake functions (DEFINE_WAIT_FUNC) are not offered: a wake of a
 * DEFINE_WAIT entry takes it off the queue (autoremove_wake_function), one
 * of DECLARE_WAITQUEUE / add_wait_queue leaves it (default_wake_function).
 */
typedef struct wait_queue_entry {
	unsigned int flags;
#ifdef __cplusplus
	void *__private; /* `private` is a C++ keyword */
#else
	void *private;
#endif
	void *__next;
	void *__prev;
} wait_queue_entry_t;

#define WQ_FLAG_EXCLUSIVE 0x01
/* Library-private: the entry stays queued across wakes (add_wait_queue). */
#define __KTHREAD_WQ_FLAG_KEEP 0x100

#define __WAIT_QUEUE_HEAD_INITIALIZER(name) { 0, 0, NULL, NULL }
#define DECLARE_WAIT_QUEUE_HEAD(name) \
	wait_queue_head_t name = __WAIT_QUEUE_HEAD_INITIALIZER(name)
#define DECLARE_WAIT_QUEUE_HEAD_ONSTACK(name) DECLARE_WAIT_QUEUE_HEAD(name)
void init_waitqueue_head(wait_queue_head_t *wq_head);

#define DEFINE_WAIT(name) \
	wait_queue_entry_t name = { 0, (void *)current, NULL, NULL }
#define __WAITQUEUE_INITIALIZER(name, tsk) \
	{ __KTHREAD_WQ_FLAG_KEEP, (void *)(tsk), NULL, NULL }
#define DECLARE_WAITQUEUE(name, tsk) \
	wait_queue_entry_t name = __WAITQUEUE_INITIALIZER(name, tsk)

void kthread_init_wait_entry(wait_queue_entry_t *wq_entry,
			     struct task_struct *tsk, unsigned int flags);
#define init_wait_entry(wq_entry, flags) \
	kthread_init_wait_entry((wq_entry), current, (flags))
#define init_wait(wq_entry) init_wait_entry((wq_entry), 0)
#define init_waitqueue_entry(wq_entry, tsk) \
	kthread_init_wait_entry((wq_entry), (tsk), __KTHREAD_WQ_FLAG_KEEP)

/*
 * Link `wq_entry` (unless linked) and set the caller's state, under the
 * queue's lock; then check the condition and schedule(). `exclusive`: 1
 * sets WQ_FLAG_EXCLUSIVE (linked at the tail: a wake_up() wakes only one
 * such waiter), 0 clears it, -1 keeps the entry's own. Returns 0, or
 * -ERESTARTSYS when a pending signal ends a sleep in `state`.
 */
long kthread_prepare_to_wait(wait_queue_head_t *wq_head,
			     wait_queue_entry_t *wq_entry, unsigned int state,
			     int exclusive, const char *file, int line);
#define prepare_to_wait(wq_head, wq_entry, state)                          \
	((void)kthread_prepare_to_wait((wq_head), (wq_entry), (state), 0,     \
				       __FILE__, __LINE__))
#define prepare_to_wait_exclusive(wq_head, wq_entry, state)                \
	((void)kthread_prepare_to_wait((wq_head), (wq_entry), (state), 1,     \
				       __FILE__, __LINE__))
#define prepare_to_wait_event(wq_head, wq_entry, state)                    \
	kthread_prepare_to_wait((wq_head), (wq_entry), (state), -1, __FILE__, \
				__LINE__)
/* Set TASK_RUNNING and take `wq_entry` off the queue if a wake has not. */
void finish_wait(wait_queue_head_t *wq_head, wait_queue_entry_t *wq_entry);

void add_wait_queue(wait_queue_head_t *wq_head, wait_queue_entry_t *wq_entry);
void add_wait_queue_exclusive(wait_queue_head_t *wq_head,
			      wait_queue_entry_t *wq_entry);
void remove_wait_queue(wait_queue_head_t *wq_head,
		       wait_queue_entry_t *wq_entry);

/*
 * Wake every non-exclusive waiter whose state `mode` covers, and
 * `nr_exclusive` exclusive ones (0: all); returns how many it woke (the
 * kernel's returns nothing). Not async-signal-safe: it takes the queue's
 * lock.
 */
int __wake_up(wait_queue_head_t *wq_head, unsigned int mode, int nr_exclusive,
	      void *key);
#define wake_up(x) ((void)__wake_up((x), TASK_NORMAL, 1, NULL))
#define wake_up_nr(x, nr) ((void)__wake_up((x), TASK_NORMAL, (nr), NULL))
#define wake_up_all(x) ((void)__wake_up((x), TASK_NORMAL, 0, NULL))
#define wake_up_interruptible(x) \
	((void)__wake_up((x), TASK_INTERRUPTIBLE, 1, NULL))
#define wake_up_interruptible_nr(x, nr) \
	((void)__wake_up((x), TASK_INTERRUPTIBLE, (nr), NULL))
#define wake_up_interruptible_all(x) \
	((void)__wake_up((x), TASK_INTERRUPTIBLE, 0, NULL))

/*
 * Whether a task waits on the queue. Both carry the barrier of the kernel's
 * wq_has_sleeper(): `cond = 1; if (wq_has_sleeper(&wq)) wake_up(&wq);`
 * loses no wake-up.
 */
bool wq_has_sleeper(wait_queue_head_t *wq_head);
#define waitqueue_active(wq_head) wq_has_sleeper(wq_head)

/*
 * wait_event*(): sleep until `condition` holds, re-checking it after every
 * wake, as the kernel's macros (GNU statement expressions). The timeout
 * forms return 0 if the time passed with the condition false, else the
 * jiffies left, at least 1 (the condition is checked once more at expiry).
 * The interruptible, killable and freezable forms return 0, or -ERESTARTSYS
 * when a pending signal ends them. wait_event_freezable*() sleep in TASK_FREEZABLE: a
 * freezable kthread freezes inside them and re-checks after the thaw.
 */
#define ___wait_is_interruptible(state)                                    \
	(!__builtin_constant_p(state) ||                                     \
	 ((state) & (TASK_INTERRUPTIBLE | TASK_WAKEKILL)))

#define ___wait_event(wq_head, condition, state, exclusive, ret, cmd)      \
	({                                                                   \
		wait_queue_entry_t __wq_entry;                               \
		long __ret = ret;                                            \
		init_wait_entry(&__wq_entry,                                 \
				(exclusive) ? WQ_FLAG_EXCLUSIVE : 0);        \
		for (;;) {                                                   \
			long __int = prepare_to_wait_event(&(wq_head),       \
							   &__wq_entry,      \
							   (state));         \
			if (condition)                                       \
				break;                                       \
			if (___wait_is_interruptible(state) && __int) {      \
				__ret = __int;                               \
				break;                                       \
			}                                                    \
			cmd;                                                 \
		}                                                            \
		finish_wait(&(wq_head), &__wq_entry);                        \
		__ret;                                                       \
	})

#define ___wait_cond_timeout(condition)                                    \
	({                                                                   \
		bool __cond = (condition);                                   \
		if (__cond && !__ret)                                        \
			__ret = 1;                                           \
		__cond || !__ret;                                            \
	})

#define wait_event(wq_head, condition)                                     \
	do {                                                                 \
		if (condition)                                               \
			break;                                               \
		(void)___wait_event(wq_head, condition, TASK_UNINTERRUPTIBLE, \
				    0, 0, schedule());                       \
	} while (0)

#define __wait_event_state(wq_head, condition, state, exclusive)           \
	({                                                                   \
		int __r = 0;                                                 \
		if (!(condition))                                            \
			__r = (int)___wait_event(wq_head, condition, state,  \
						 exclusive, 0, schedule());  \
		__r;                                                         \
	})

#define wait_event_interruptible(wq_head, condition) \
	__wait_event_state(wq_head, condition, TASK_INTERRUPTIBLE, 0)
#define wait_event_interruptible_exclusive(wq_head, condition) \
	__wait_event_state(wq_head, condition, TASK_INTERRUPTIBLE, 1)
#define wait_event_killable(wq_head, condition) \
	__wait_event_state(wq_head, condition, TASK_KILLABLE, 0)
#define wait_event_idle(wq_head, condition) \
	((void)__wait_event_state(wq_head, condition, TASK_IDLE, 0))
#define wait_event_freezable(wq_head, condition)                         \
	__wait_event_state(wq_head, condition,                           \
			   (TASK_INTERRUPTIBLE | TASK_FREEZABLE), 0)

#define __wait_event_timeout_state(wq_head, condition, state, timeout)     \
	({                                                                   \
		long __ret = (long)(timeout);                                \
		if (!___wait_cond_timeout(condition))                        \
			__ret = ___wait_event(wq_head,                       \
					      ___wait_cond_timeout(condition), \
					      state, 0, timeout,             \
					      __ret = schedule_timeout(__ret)); \
		__ret;                                                       \
	})

#define wait_event_timeout(wq_head, condition, timeout) \
	__wait_event_timeout_state(wq_head, condition, TASK_UNINTERRUPTIBLE, timeout)
#define wait_event_interruptible_timeout(wq_head, condition, timeout) \
	__wait_event_timeout_state(wq_head, condition, TASK_INTERRUPTIBLE, timeout)
#define wait_event_killable_timeout(wq_head, condition, timeout) \
	__wait_event_timeout_state(wq_head, condition, TASK_KILLABLE, timeout)
#define wait_event_idle_timeout(wq_head, condition, timeout) \
	__wait_event_timeout_state(wq_head, condition, TASK_IDLE, timeout)
#define wait_event_freezable_timeout(wq_head, condition, timeout)          \
	__wait_event_timeout_state(wq_head, condition,                     \
				   (TASK_INTERRUPTIBLE | TASK_FREEZABLE),   \
				   timeout)

/* ------------------------------------------------------------------------ */
/* Workers and work items (<linux/kthread.h>)                               */

struct kthread_work;
typedef void (*kthread_work_func_t)(struct kthread_work *work);

/* Worker flag: freeze between items while the system is frozen. */
#define KTW_FREEZABLE (1 << 0)

#define KTHREAD_SIZEOF_WORKER 192
#define KTHREAD_WORKER_TASK_OFFSET 80
#define KTHREAD_ALIGNOF_WORKER 64
#define KTHREAD_SIZEOF_WORK 48
#define KTHREAD_ALIGNOF_WORK 8
#define KTHREAD_SIZEOF_DELAYED_WORK 56
#define KTHREAD_ALIGNOF_DELAYED_WORK 8
#define KTHREAD_SIZEOF_COMPLETION 4
#define KTHREAD_ALIGNOF_COMPLETION 4

/*
 * A worker: one kthread running queued work items in FIFO order. Embeddable
 * (so container_of() works); all-zero memory is an initialised worker with
 * no thread. Opaque but for `task`: the library's RawWorker, whose size and alignment the
 * assertions below and the library itself check.
 * It is 64-byte aligned (a cache line): on the heap use aligned_alloc() or
 * posix_memalign(), not malloc(); a misaligned one is refused (WARN).
 */
struct kthread_worker {
	KTHREAD_ALIGNAS(KTHREAD_ALIGNOF_WORKER)
	unsigned char __kthread_private[KTHREAD_WORKER_TASK_OFFSET];
	/* The thread serving the worker; NULL while none does (read-only). */
	struct task_struct *task;
	unsigned char __kthread_private_tail[KTHREAD_SIZEOF_WORKER -
					     KTHREAD_WORKER_TASK_OFFSET -
					     sizeof(void *)];
};

/*
 * A work item: `func` runs on the worker's thread with the item itself, so
 * func can container_of() its way to the structure embedding it. Pending at
 * most once; may be queued again while it runs. Must stay valid and unmoved
 * while queued. Only `func` is public; the rest mirrors RawWork.
 */
struct kthread_work {
	unsigned long __state;
	void *__next;
	void *__prev;
	kthread_work_func_t func;
	void *__release;
	unsigned int __canceling;
	unsigned int __whence;
};

/*
 * A work item that is queued after a delay; its func gets &dwork->work.
 * The worker keeps the delay itself (no struct timer_list, so no
 * kthread_delayed_work_timer_fn(): to run an armed one now, use
 * kthread_mod_delayed_work(worker, dwork, 0)).
 */
struct kthread_delayed_work {
	struct kthread_work work;
	unsigned long long __deadline;
};

KTHREAD_STATIC_ASSERT(sizeof(void *) == 8,
		      "kthread.h: 64-bit targets only (x86-64, aarch64)");
KTHREAD_STATIC_ASSERT(sizeof(struct kthread_worker) == KTHREAD_SIZEOF_WORKER,
		      "struct kthread_worker does not match RawWorker");
KTHREAD_STATIC_ASSERT(KTHREAD_ALIGNOF(struct kthread_worker) == KTHREAD_ALIGNOF_WORKER,
		      "struct kthread_worker alignment does not match RawWorker");
KTHREAD_STATIC_ASSERT(sizeof(struct kthread_work) == KTHREAD_SIZEOF_WORK,
		      "struct kthread_work does not match RawWork");
KTHREAD_STATIC_ASSERT(KTHREAD_ALIGNOF(struct kthread_work) == KTHREAD_ALIGNOF_WORK,
		      "struct kthread_work alignment does not match RawWork");
KTHREAD_STATIC_ASSERT(offsetof(struct kthread_work, func) == 24,
		      "kthread_work.func is not where RawWork keeps it");
KTHREAD_STATIC_ASSERT(sizeof(struct kthread_delayed_work) ==
			      KTHREAD_SIZEOF_DELAYED_WORK,
		      "struct kthread_delayed_work does not match RawDelayedWork");
KTHREAD_STATIC_ASSERT(KTHREAD_ALIGNOF(struct kthread_delayed_work) ==
			      KTHREAD_ALIGNOF_DELAYED_WORK,
		      "struct kthread_delayed_work alignment does not match");
KTHREAD_STATIC_ASSERT(offsetof(struct kthread_delayed_work, work) == 0,
		      "kthread_delayed_work.work must come first");
KTHREAD_STATIC_ASSERT(sizeof(struct completion) == KTHREAD_SIZEOF_COMPLETION,
		      "struct completion does not match Completion");
KTHREAD_STATIC_ASSERT(KTHREAD_ALIGNOF(struct completion) == KTHREAD_ALIGNOF_COMPLETION,
		      "struct completion alignment does not match Completion");
KTHREAD_STATIC_ASSERT(offsetof(struct kthread_worker, task) ==
			      KTHREAD_WORKER_TASK_OFFSET,
		      "kthread_worker.task is not where RawWorker keeps it");
KTHREAD_STATIC_ASSERT(sizeof(wait_queue_head_t) == 24,
		      "wait_queue_head_t does not match WaitQueue");
KTHREAD_STATIC_ASSERT(sizeof(wait_queue_entry_t) == 32,
		      "struct wait_queue_entry does not match WaitEntry");
KTHREAD_STATIC_ASSERT(offsetof(wait_queue_entry_t, __next) == 16,
		      "wait_queue_entry.private is not where WaitEntry keeps it");
KTHREAD_STATIC_ASSERT(offsetof(struct task_struct, comm) == 4,
		      "task_struct.comm is not where TaskInner keeps it");
KTHREAD_STATIC_ASSERT(sizeof(struct cpumask) == KTHREAD_NR_CPUS / 8,
		      "struct cpumask must hold KTHREAD_NR_CPUS bits");

#define KTHREAD_WORKER_INIT(worker) { { 0 }, NULL, { 0 } }
#define KTHREAD_WORK_INIT(work, fn) { 0, NULL, NULL, (fn), NULL, 0, 0 }
#define KTHREAD_DELAYED_WORK_INIT(dwork, fn) \
	{ KTHREAD_WORK_INIT((dwork).work, (fn)), 0 }

#define DEFINE_KTHREAD_WORKER(worker) \
	struct kthread_worker worker = KTHREAD_WORKER_INIT(worker)
#define DEFINE_KTHREAD_WORK(work, fn) \
	struct kthread_work work = KTHREAD_WORK_INIT(work, fn)
#define DEFINE_KTHREAD_DELAYED_WORK(dwork, fn) \
	struct kthread_delayed_work dwork = KTHREAD_DELAYED_WORK_INIT(dwork, fn)
#define DEFINE_KTHREAD_WORKER_ONSTACK(worker) DEFINE_KTHREAD_WORKER(worker)
#define DEFINE_KTHREAD_WORK_ONSTACK(work, fn) DEFINE_KTHREAD_WORK(work, fn)

/* Make `worker` an empty worker with no thread; only while unused. */
void kthread_init_worker(struct kthread_worker *worker);

/*
 * The worker loop, as a kthread function over a caller-owned worker:
 *     kthread_run(kthread_worker_fn, &worker, "name");
 * Returns 0 once its kthread is stopped (kthread_stop() abandons what is
 * still queued, as in the kernel: flush first), -EBUSY if another thread
 * already serves the worker, -EINVAL for NULL or a misaligned worker.
 */
int kthread_worker_fn(void *worker_ptr);

/*
 * Allocate a worker and run it on a kthread called `name` (formatted);
 * `cpu` >= 0 binds it, `node` is a NUMA node or NUMA_NO_NODE. The entry
 * point behind kthread_create_worker() and friends.
 */
struct kthread_worker *kthread_create_worker_name(unsigned int flags, int node,
						   int cpu, const char *name);

static inline struct kthread_worker *
kthread_create_worker(unsigned int flags, const char namefmt[], ...)
	KTHREAD_PRINTF(2, 3);

/*
 * Create a worker on a new kthread and return it RUNNING, as Linux
 * 6.1-6.13 do (6.14 made this return it stopped and added
 * kthread_run_worker() to wake it; kthread_run_worker() is offered too and
 * is the same call here). `flags`: 0 or KTW_FREEZABLE. Returns the worker
 * or an error pointer (-EINVAL: unknown flags or NULL namefmt; -EAGAIN /
 * -ENOMEM). Free it with kthread_destroy_worker().
 */
static inline struct kthread_worker *
kthread_create_worker(unsigned int flags, const char namefmt[], ...)
{
	char name[KTHREAD_NAME_MAX];
	va_list args;

	if (!namefmt)
		return (struct kthread_worker *)ERR_PTR(-EINVAL);
	va_start(args, namefmt);
	vsnprintf(name, sizeof(name), namefmt, args);
	va_end(args);
	return kthread_create_worker_name(flags, NUMA_NO_NODE, -1, name);
}

#define kthread_run_worker(flags, ...) kthread_create_worker(flags, __VA_ARGS__)

/*
 * As kthread_create_worker(), its thread's memory placed on NUMA `node`
 * (NUMA_NO_NODE: anywhere); 6.14's name. Returns the worker running.
 */
static inline struct kthread_worker *
kthread_create_worker_on_node(unsigned int flags, int node,
			      const char namefmt[], ...)
{
	char name[KTHREAD_NAME_MAX];
	va_list args;

	if (!namefmt)
		return (struct kthread_worker *)ERR_PTR(-EINVAL);
	va_start(args, namefmt);
	vsnprintf(name, sizeof(name), namefmt, args);
	va_end(args);
	return kthread_create_worker_name(flags, node, -1, name);
}

static inline struct kthread_worker *
kthread_create_worker_on_cpu(int cpu, unsigned int flags,
			     const char namefmt[], ...) KTHREAD_PRINTF(3, 4);

/*
 * As kthread_create_worker(), bound to `cpu` before it runs (the 6.1-6.13
 * form: the name takes its own printf arguments).
 */
static inline struct kthread_worker *
kthread_create_worker_on_cpu(int cpu, unsigned int flags,
			     const char namefmt[], ...)
{
	char name[KTHREAD_NAME_MAX];
	va_list args;

	if (!namefmt || cpu < 0)
		return (struct kthread_worker *)ERR_PTR(-EINVAL);
	va_start(args, namefmt);
	vsnprintf(name, sizeof(name), namefmt, args);
	va_end(args);
	return kthread_create_worker_name(flags, NUMA_NO_NODE, cpu, name);
}

/*
 * The 6.14 form: running, bound to `cpu`, `namefmt` formatted with `cpu`
 * ("kworker/%u").
 */
static inline struct kthread_worker *
kthread_run_worker_on_cpu(int cpu, unsigned int flags, const char namefmt[])
{
	char name[KTHREAD_NAME_MAX];

	if (!namefmt || cpu < 0)
		return (struct kthread_worker *)ERR_PTR(-EINVAL);
	snprintf(name, sizeof(name), namefmt, (unsigned int)cpu);
	return kthread_create_worker_name(flags, NUMA_NO_NODE, cpu, name);
}

/*
 * Cancel armed delayed works, run everything queued, stop the thread and
 * free a worker from kthread_create_worker(). NULL or an error pointer: no
 * effect. A caller-owned worker is not freed (flush it and kthread_stop()
 * its thread); called from the worker's own thread it would deadlock: both
 * only WARN on stderr. Nothing may use the worker afterwards.
 */
void kthread_destroy_worker(struct kthread_worker *worker);

void kthread_init_work(struct kthread_work *work, kthread_work_func_t fn);
void kthread_init_delayed_work(struct kthread_delayed_work *dwork,
			       kthread_work_func_t fn);

/*
 * Queue `work`: true if queued, false if it was already pending (the
 * request then coalesces with the pending one), is being cancelled, or is
 * busy on another worker. Never blocks, allocates nothing, and is
 * async-signal-safe (callable from a signal handler, as the kernel's is from
 * an interrupt): no lock unless `work` last ran on another worker, whose
 * lock the move takes. kthread_queue_delayed_work() with a non-zero delay
 * takes the worker lock and is not.
 */
bool kthread_queue_work(struct kthread_worker *worker,
			struct kthread_work *work);

/* Queue `dwork` to run after `delay` jiffies (0: now); as above. */
bool kthread_queue_delayed_work(struct kthread_worker *worker,
				struct kthread_delayed_work *dwork,
				unsigned long delay);

/*
 * Re-arm `dwork` to run `delay` jiffies from now, or arm it if idle: false
 * if it was idle (now queued), true if it was pending (its timer moved).
 */
bool kthread_mod_delayed_work(struct kthread_worker *worker,
			      struct kthread_delayed_work *dwork,
			      unsigned long delay);

/*
 * Wait for the instance of `work` queued or running now (an armed delayed
 * work runs at once); returns at once if it is idle. From the work's own
 * worker it would deadlock: it WARNs on stderr and returns.
 */
void kthread_flush_work(struct kthread_work *work);

/*
 * Wait until everything queued on `worker` before the call has run. A
 * worker with no thread yet waits for one, as in the kernel.
 */
void kthread_flush_worker(struct kthread_worker *worker);

/* Cancel a pending `work`, wait for a running one: whether it was pending. */
bool kthread_cancel_work_sync(struct kthread_work *work);
bool kthread_cancel_delayed_work_sync(struct kthread_delayed_work *dwork);

/* The Linux 3.x names (kernel/kthread.c before 4.9). */
#define init_kthread_worker(worker) kthread_init_worker(worker)
#define init_kthread_work(work, fn) kthread_init_work(work, fn)
#define queue_kthread_work(worker, work) kthread_queue_work(worker, work)
#define flush_kthread_work(work) kthread_flush_work(work)
#define flush_kthread_worker(worker) kthread_flush_worker(worker)

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KTHREAD_H */
