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

/*
 * A task: the shared state of one kthread (or of a thread that called
 * get_current()). Opaque; only ever handled by pointer.
 */
struct task_struct;

#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002

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
 * ordered, operation. States other than the three above are ignored.
 */
void set_current_state(unsigned int state);
void __set_current_state(unsigned int state);

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

/*
 * Set should-stop, wake `k` (out of schedule(), kthread_parkme() and a
 * freeze in kthread_freezable_should_stop()), wait for threadfn to return
 * and return its value. -EINTR if `k` was never woken: threadfn never ran.
 * Once wake_up_process() has returned, threadfn always runs, even if this
 * follows at once (it then sees kthread_should_stop() true). Also -EINVAL
 * for NULL, an error pointer or a task already stopped; -EDEADLK from `k`
 * itself (the request stands: threadfn should return).
 *
 * Every kthread must be stopped eventually; one whose threadfn returned by
 * itself keeps its result until kthread_stop() (as if get_task_struct()'d).
 * `k` is invalid once this returns.
 */
int kthread_stop(struct task_struct *k);
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

/*
 * kthreads are not freezable unless they call set_freezable() or are a
 * KTW_FREEZABLE worker. set_freezable() and try_to_freeze() return whether
 * the caller froze (sat in the refrigerator until thawed).
 */
bool set_freezable(void);
bool try_to_freeze(void);

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
/* Consume a completion without sleeping: whether there was one. */
bool try_wait_for_completion(struct completion *x);
/* Whether a wait would return at once. */
bool completion_done(struct completion *x);

/* ------------------------------------------------------------------------ */
/* Workers and work items (<linux/kthread.h>)                               */

struct kthread_work;
typedef void (*kthread_work_func_t)(struct kthread_work *work);

/* Worker flag: freeze between items while the system is frozen. */
#define KTW_FREEZABLE (1 << 0)

#define KTHREAD_SIZEOF_WORKER 192
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
 * no thread. Opaque: the library's RawWorker, whose size and alignment the
 * assertions below and the library itself check.
 * It is 64-byte aligned (a cache line): on the heap use aligned_alloc() or
 * posix_memalign(), not malloc(); a misaligned one is refused (WARN).
 */
struct kthread_worker {
	KTHREAD_ALIGNAS(KTHREAD_ALIGNOF_WORKER)
	unsigned char __kthread_private[KTHREAD_SIZEOF_WORKER];
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

/* A work item that is queued after a delay; its func gets &dwork->work. */
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
KTHREAD_STATIC_ASSERT(sizeof(struct cpumask) == KTHREAD_NR_CPUS / 8,
		      "struct cpumask must hold KTHREAD_NR_CPUS bits");

#define KTHREAD_WORKER_INIT(worker) { { 0 } }
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
