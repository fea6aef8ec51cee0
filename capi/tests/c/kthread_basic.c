/*
 * kthread_basic.c - the kernel's reference flows for kthreads, from C.
 *
 * kthread_run() + the kthread_should_stop() loop with set_current_state() /
 * schedule(); kthread_stop() before any wake gives -EINTR; kthread_data();
 * kthread_bind() before the first wake; kthread_create_on_cpu() names;
 * schedule_timeout() and waking main(); completions on the stack; the
 * clean environment of a kthread created from a thread that changed its own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* The first CPU this process may run on. */
static int first_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			return cpu;
	return 0;
}

static int allowed_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	return CPU_COUNT(&set);
}

/* ---- the kernel's loop ------------------------------------------------- */

struct loop_ctx {
	atomic_int have_work;
	int handled;
	struct completion handled_one;
};

static int loop_fn(void *data)
{
	struct loop_ctx *c = data;

	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !atomic_load(&c->have_work))
			schedule();
		__set_current_state(TASK_RUNNING);
		if (atomic_exchange(&c->have_work, 0)) {
			c->handled++;
			complete(&c->handled_one);
		}
	}
	return 1000 + c->handled;
}

static void test_kernel_loop(void)
{
	struct loop_ctx c = { 0 };
	struct task_struct *k;
	int i, woke_all = 1;

	init_completion(&c.handled_one);
	k = kthread_run(loop_fn, &c, "loop/%d", 1);
	CHECK("kthread_run returns a task", !IS_ERR_OR_NULL(k));
	if (IS_ERR_OR_NULL(k))
		return;
	for (i = 0; i < 5; i++) {
		atomic_store(&c.have_work, 1);
		wake_up_process(k);
		if (!wait_for_completion_timeout(&c.handled_one, WAIT_LONG))
			woke_all = 0;
	}
	CHECK("each wake_up_process is seen by the schedule() loop", woke_all);
	CHECK("kthread_stop returns the threadfn's value", kthread_stop(k) == 1005);
}

/* ---- stop before/after the first wake -------------------------------- */

static int mark_ran(void *data)
{
	atomic_store((atomic_int *)data, 1);
	return 7;
}

static void test_stop_before_wake(void)
{
	atomic_int ran = 0;
	struct task_struct *k = kthread_create(mark_ran, &ran, "never-woken");

	CHECK("kthread_create returns a task", !IS_ERR_OR_NULL(k));
	msleep(20);
	CHECK("a created kthread does not run before its first wake",
	      atomic_load(&ran) == 0);
	CHECK("kthread_stop before any wake returns -EINTR",
	      kthread_stop(k) == -EINTR);
	CHECK("... and threadfn never ran", atomic_load(&ran) == 0);
	CHECK("a stopped task is gone: a second kthread_stop is -EINVAL",
	      kthread_stop(k) == -EINVAL);

	ran = 0;
	k = kthread_create(mark_ran, &ran, "woken");
	get_task_struct(k); /* mark_ran may return before the stop */
	CHECK("wake_up_process of a new kthread returns 1", wake_up_process(k) == 1);
	CHECK("once woken, threadfn always runs, even if stopped at once",
	      kthread_stop_put(k) == 7 && atomic_load(&ran) == 1);
}

/* ---- a kthread that returns by itself --------------------------------- */

static int finish_early(void *data)
{
	complete((struct completion *)data);
	return 5;
}

static void test_returns_by_itself(void)
{
	DECLARE_COMPLETION_ONSTACK(done);
	DECLARE_COMPLETION_ONSTACK(done2);
	struct task_struct *k = kthread_create(finish_early, &done, "early");

	/* Held (get_task_struct): kept after it returns, as in the kernel. */
	get_task_struct(k);
	wake_up_process(k);
	CHECK("a kthread that returned by itself",
	      wait_for_completion_timeout(&done, WAIT_LONG) > 0);
	CHECK("... held, keeps its result for kthread_stop", kthread_stop_put(k) == 5);

	/* Not held: reaped at its exit; a late kthread_stop is detected. */
	{
		char path[64];
		int pid;

		k = kthread_create(finish_early, &done2, "early-unheld");
		pid = k->pid; /* valid until it ends */
		snprintf(path, sizeof(path), "/proc/self/task/%d", pid);
		wake_up_process(k);
		CHECK("an unheld kthread that returned by itself",
		      wait_for_completion_timeout(&done2, WAIT_LONG) > 0);
		CHECK("... ends: its thread is gone", WAIT_UNTIL(access(path, F_OK) != 0));
		CHECK("... is reaped: a late kthread_stop is -ESRCH", kthread_stop(k) == -ESRCH);
	}
}

/* ---- kthread_data, current, names -------------------------------------- */

struct data_ctx {
	void *seen_data;
	struct task_struct *seen_current;
	char comm[32];
	int stop_self;
	bool should_stop_before;
};

static int data_fn(void *data)
{
	struct data_ctx *c = data;

	c->seen_data = kthread_data(current);
	c->seen_current = current;
	prctl(PR_GET_NAME, c->comm, 0, 0, 0);
	c->should_stop_before = kthread_should_stop();
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

static void test_data_and_current(void)
{
	struct data_ctx c = { 0 };
	struct task_struct *k = kthread_create(data_fn, &c, "fmt-%s-%d-%s", "x",
					       42, "a-long-tail");

	CHECK("kthread_data from outside", kthread_data(k) == &c);
	wake_up_process(k);
	CHECK("kthread_stop of a sleeping kthread", kthread_stop(k) == 0);
	CHECK("kthread_data(current) inside the kthread", c.seen_data == &c);
	CHECK("current inside the kthread is its task", c.seen_current == k);
	CHECK("the name is printf-formatted (the OS keeps 15 bytes)",
	      strcmp(c.comm, "fmt-x-42-a-long") == 0);

	CHECK("current on main() is a task of its own",
	      current != NULL && current == get_current() && !IS_ERR(current));
	CHECK("kthread_should_stop() is false outside kthreads",
	      !kthread_should_stop() && !kthread_should_park());
	CHECK("kthread_data of a task not created by kthread_create is NULL",
	      kthread_data(current) == NULL);
}

static int stop_self_fn(void *data)
{
	struct data_ctx *c = data;

	c->stop_self = kthread_stop(current);
	c->should_stop_before = kthread_should_stop();
	return 0;
}

static void test_stop_self(void)
{
	struct data_ctx c = { 0 };
	struct task_struct *k = kthread_run(stop_self_fn, &c, "stop-self");

	CHECK("kthread_stop(current) inside a kthread is -EDEADLK",
	      WAIT_UNTIL(c.stop_self != 0) && c.stop_self == -EDEADLK);
	CHECK("... and the stop request stands", c.should_stop_before);
	CHECK("... and a later kthread_stop() still collects its result",
	      kthread_stop(k) == 0);
}

/* ---- binding ------------------------------------------------------------ */

struct cpu_ctx {
	int cpu_seen;
	int allowed;
	char comm[32];
};

static int cpu_fn(void *data)
{
	struct cpu_ctx *c = data;
	cpu_set_t set;

	c->cpu_seen = sched_getcpu();
	c->allowed = sched_getaffinity(0, sizeof(set), &set) ? -1 : CPU_COUNT(&set);
	prctl(PR_GET_NAME, c->comm, 0, 0, 0);
	return 0;
}

static void test_bind(void)
{
	int cpu = first_cpu();
	struct cpu_ctx c = { -1, -1, "" };
	struct cpumask mask, empty;
	char want[32];
	struct task_struct *k;

	k = kthread_create(cpu_fn, &c, "bound");
	get_task_struct(k); /* cpu_fn returns at once */
	CHECK("kthread_bind before the first wake", kthread_bind(k, cpu) == 0);
	wake_up_process(k);
	CHECK("kthread_bind after the wake is -EBUSY", kthread_bind(k, cpu) == -EBUSY);
	kthread_stop_put(k);
	CHECK("a bound kthread runs only on its CPU",
	      c.cpu_seen == cpu && c.allowed == 1);

	cpumask_clear(&empty);
	cpumask_clear(&mask);
	cpumask_set_cpu((unsigned int)cpu, &mask);
	CHECK("cpumask_set_cpu/cpumask_test_cpu",
	      cpumask_test_cpu(cpu, &mask) && !cpumask_test_cpu(cpu, &empty));
	k = kthread_create(cpu_fn, &c, "mask");
	CHECK("kthread_bind_mask with an empty mask is -EINVAL",
	      kthread_bind_mask(k, &empty) == -EINVAL);
	CHECK("kthread_bind_mask before the first wake",
	      kthread_bind_mask(k, &mask) == 0);
	c.cpu_seen = c.allowed = -1;
	wake_up_process(k);
	kthread_stop(k);
	CHECK("a mask-bound kthread runs only on its CPUs",
	      c.cpu_seen == cpu && c.allowed == 1);

	c.cpu_seen = c.allowed = -1;
	k = kthread_create_on_cpu(cpu_fn, &c, (unsigned int)cpu, "percpu/%u");
	CHECK("kthread_create_on_cpu", !IS_ERR_OR_NULL(k));
	wake_up_process(k);
	kthread_stop(k);
	snprintf(want, sizeof(want), "percpu/%d", cpu);
	CHECK("kthread_create_on_cpu binds and names the kthread by its CPU",
	      c.cpu_seen == cpu && c.allowed == 1 && strcmp(c.comm, want) == 0);
	k = kthread_create_on_cpu(cpu_fn, &c, 100000, "percpu/%u");
	CHECK("kthread_create_on_cpu on a CPU that cannot exist is -EINVAL",
	      IS_ERR(k) && PTR_ERR(k) == -EINVAL);
}

/* ---- schedule_timeout and waking main() -------------------------------- */

struct waker_ctx {
	struct task_struct *sleeper;
	atomic_int woke;
};

static int waker_fn(void *data)
{
	struct waker_ctx *c = data;

	msleep(20);
	atomic_store(&c->woke, 1);
	wake_up_process(c->sleeper);
	return 0;
}

static void test_schedule_timeout(void)
{
	struct waker_ctx c = { current, 0 };
	struct task_struct *k;
	long long t0;
	long left;

	set_current_state(TASK_INTERRUPTIBLE);
	t0 = now_ms();
	left = schedule_timeout(msecs_to_jiffies(30));
	CHECK("schedule_timeout expires after its timeout and returns 0",
	      left == 0 && now_ms() - t0 >= 30);

	left = schedule_timeout(msecs_to_jiffies(5000));
	CHECK("schedule_timeout in TASK_RUNNING returns at once with time left",
	      left > 4000);

	k = kthread_create(waker_fn, &c, "waker");
	set_current_state(TASK_INTERRUPTIBLE);
	wake_up_process(k);
	left = schedule_timeout(10 * HZ);
	CHECK("wake_up_process(main's task) ends schedule_timeout early",
	      atomic_load(&c.woke) && left > 0 && left < 10 * HZ);
	kthread_stop(k);

	atomic_store(&c.woke, 0);
	k = kthread_create(waker_fn, &c, "waker2");
	set_current_state(TASK_UNINTERRUPTIBLE);
	wake_up_process(k);
	left = schedule_timeout(MAX_SCHEDULE_TIMEOUT);
	CHECK("schedule_timeout(MAX_SCHEDULE_TIMEOUT) sleeps until woken",
	      atomic_load(&c.woke) && left == MAX_SCHEDULE_TIMEOUT);
	kthread_stop(k);

	/* A wake between set_current_state() and schedule() is not lost. */
	set_current_state(TASK_INTERRUPTIBLE);
	CHECK("wake_up_process of a task about to sleep returns 1",
	      wake_up_process(current) == 1);
	t0 = now_ms();
	schedule();
	CHECK("... and its schedule() returns at once", now_ms() - t0 < 5000);
	CHECK("wake_up_process of a running task returns 0",
	      wake_up_process(current) == 0);

	t0 = now_ms();
	msleep(15);
	CHECK("msleep sleeps at least its time", now_ms() - t0 >= 15);
	CHECK("jiffies conversions", msecs_to_jiffies(1500) == 1500 &&
				     jiffies_to_msecs(HZ) == 1000);
}

/* ---- completions -------------------------------------------------------- */

static DECLARE_COMPLETION(static_done);

struct gate_ctx {
	struct completion *gate;
	struct completion *arrived;
};

static int gate_fn(void *data)
{
	struct gate_ctx *c = data;

	wait_for_completion(c->gate);
	complete(c->arrived);
	return 0;
}

static int complete_static(void *data)
{
	(void)data;
	complete(&static_done);
	return 0;
}

static void test_completions(void)
{
	DECLARE_COMPLETION_ONSTACK(gate);
	DECLARE_COMPLETION_ONSTACK(arrived);
	DECLARE_COMPLETION_ONSTACK(never);
	struct gate_ctx c = { &gate, &arrived };
	struct task_struct *a, *b, *s;
	struct completion heap;
	long long t0;

	s = kthread_run(complete_static, NULL, "static-completer");
	CHECK("a static DECLARE_COMPLETION completes across threads",
	      wait_for_completion_timeout(&static_done, WAIT_LONG) >= 1);
	kthread_stop(s);

	t0 = now_ms();
	CHECK("wait_for_completion_timeout returns 0 on timeout",
	      wait_for_completion_timeout(&never, msecs_to_jiffies(20)) == 0 &&
		      now_ms() - t0 >= 20);
	CHECK("completion_done of a fresh completion is false",
	      !completion_done(&never) && !try_wait_for_completion(&never));

	a = kthread_run(gate_fn, &c, "gate-a");
	b = kthread_run(gate_fn, &c, "gate-b");
	msleep(10);
	complete_all(&gate);
	CHECK("complete_all releases every waiter",
	      wait_for_completion_timeout(&arrived, WAIT_LONG) &&
		      wait_for_completion_timeout(&arrived, WAIT_LONG));
	CHECK("... and every later one", completion_done(&gate) &&
						 wait_for_completion_timeout(&gate, 1) >= 1);
	kthread_stop(a);
	kthread_stop(b);
	reinit_completion(&gate);
	CHECK("reinit_completion makes it usable again", !completion_done(&gate));

	init_completion(&heap);
	complete(&heap);
	complete(&heap);
	CHECK("complete counts: two completes let two waits through",
	      try_wait_for_completion(&heap) && completion_done(&heap) &&
		      try_wait_for_completion(&heap) && !completion_done(&heap));
}

/* ---- the clean environment ---------------------------------------------- */

struct env_ctx {
	int nice;
	int allowed;
	int policy;
	int blocked_int, blocked_term, blocked_usr2;
};

static int env_fn(void *data)
{
	struct env_ctx *c = data;
	sigset_t mask;
	cpu_set_t set;

	errno = 0;
	c->nice = getpriority(PRIO_PROCESS, (id_t)my_tid());
	c->allowed = sched_getaffinity(0, sizeof(set), &set) ? -1 : CPU_COUNT(&set);
	c->policy = sched_getscheduler(0);
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	c->blocked_int = sigismember(&mask, SIGINT);
	c->blocked_term = sigismember(&mask, SIGTERM);
	c->blocked_usr2 = sigismember(&mask, SIGUSR2);
	return 0;
}

static void test_clean_environment(void)
{
	struct env_ctx c = { -99, -1, -1, 0, 0, 0 };
	int all = allowed_cpus();
	sigset_t usr1, old;
	cpu_set_t one, saved;
	struct task_struct *k;

	/* Make main()'s own environment dirty: a blocked signal, nice 5, one CPU. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	sched_getaffinity(0, sizeof(saved), &saved);
	CPU_ZERO(&one);
	CPU_SET(first_cpu(), &one);
	sched_setaffinity(0, sizeof(one), &one);
	setpriority(PRIO_PROCESS, (id_t)my_tid(), 5);

	k = kthread_run(env_fn, &c, "clean-env");
	kthread_stop(k);
	CHECK("a kthread starts at nice 0 whatever its creator's nice",
	      c.nice == 0);
	CHECK("a kthread may run on every allowed CPU whatever its creator's affinity",
	      c.allowed == all);
	CHECK("a kthread runs SCHED_OTHER", c.policy == SCHED_OTHER);
	CHECK("a kthread has every asynchronous signal blocked",
	      c.blocked_int == 1 && c.blocked_term == 1 && c.blocked_usr2 == 1);

	sched_setaffinity(0, sizeof(saved), &saved);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
	test_kernel_loop();
	test_stop_before_wake();
	test_returns_by_itself();
	test_data_and_current();
	test_stop_self();
	test_bind();
	test_schedule_timeout();
	test_completions();
	test_clean_environment(); /* last: main() keeps nice 5 */
	return check_summary();
}
