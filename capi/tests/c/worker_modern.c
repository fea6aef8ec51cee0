/*
 * worker_modern.c - the 4.9+ worker API: kthread_create_worker() returning a
 * running worker, works and delayed works embedded in caller structures,
 * kthread_queue_delayed_work, kthread_mod_delayed_work, the cancel calls,
 * kthread_destroy_worker, workers bound to a CPU, a heap worker.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "check.h"

struct counter {
	atomic_int runs;
	long long last_ms;
	int cpu;
	int allowed;
	char comm[32];
	struct completion ran;
	struct kthread_work work;
	struct kthread_delayed_work dwork;
};

static void count(struct counter *c)
{
	cpu_set_t set;

	c->last_ms = now_ms();
	c->cpu = sched_getcpu();
	c->allowed = sched_getaffinity(0, sizeof(set), &set) ? -1 : CPU_COUNT(&set);
	prctl(PR_GET_NAME, c->comm, 0, 0, 0);
	atomic_fetch_add(&c->runs, 1);
	complete(&c->ran);
}

static void work_fn(struct kthread_work *work)
{
	count(container_of(work, struct counter, work));
}

static void dwork_fn(struct kthread_work *work)
{
	count(container_of(work, struct counter, dwork.work));
}

static void counter_init(struct counter *c)
{
	memset(c, 0, sizeof(*c));
	init_completion(&c->ran);
	kthread_init_work(&c->work, work_fn);
	kthread_init_delayed_work(&c->dwork, dwork_fn);
}

/* Holds the worker busy until released. */
struct blocker {
	struct kthread_work work;
	struct completion entered;
	struct completion release;
};

static void block_fn(struct kthread_work *work)
{
	struct blocker *b = container_of(work, struct blocker, work);

	complete(&b->entered);
	wait_for_completion_timeout(&b->release, WAIT_LONG);
}

static void blocker_init(struct blocker *b)
{
	kthread_init_work(&b->work, block_fn);
	init_completion(&b->entered);
	init_completion(&b->release);
}

/* A slow work, to cancel while it runs. */
struct slow {
	struct kthread_work work;
	struct completion started;
	atomic_int finished;
};

static void slow_fn(struct kthread_work *work)
{
	struct slow *s = container_of(work, struct slow, work);

	complete(&s->started);
	msleep(50);
	atomic_store(&s->finished, 1);
}

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

static void test_queue_and_flush(struct kthread_worker *w)
{
	struct counter c;

	counter_init(&c);
	CHECK("kthread_queue_work returns true", kthread_queue_work(w, &c.work));
	kthread_flush_work(&c.work);
	CHECK("kthread_flush_work waits for it", atomic_load(&c.runs) == 1);
	CHECK("it ran on the worker's thread", strcmp(c.comm, "modern/1") == 0);
}

static void test_delayed(struct kthread_worker *w)
{
	struct counter c;
	long long t0;

	counter_init(&c);
	t0 = now_ms();
	CHECK("kthread_queue_delayed_work returns true",
	      kthread_queue_delayed_work(w, &c.dwork, msecs_to_jiffies(50)));
	CHECK("kthread_queue_delayed_work while armed returns false",
	      !kthread_queue_delayed_work(w, &c.dwork, msecs_to_jiffies(50)));
	CHECK("a delayed work runs",
	      wait_for_completion_timeout(&c.ran, WAIT_LONG) > 0);
	CHECK("... not before its delay", c.last_ms - t0 >= 50);
	CHECK("... once", atomic_load(&c.runs) == 1);

	/* Delay 0: queued at once. */
	CHECK("kthread_queue_delayed_work with no delay",
	      kthread_queue_delayed_work(w, &c.dwork, 0));
	kthread_flush_work(&c.dwork.work);
	CHECK("... runs at once", atomic_load(&c.runs) == 2);

	/* Cancel an armed one. */
	kthread_queue_delayed_work(w, &c.dwork, 10 * HZ);
	CHECK("kthread_cancel_delayed_work_sync of an armed work returns true",
	      kthread_cancel_delayed_work_sync(&c.dwork));
	msleep(20);
	CHECK("... and it never runs", atomic_load(&c.runs) == 2);
	CHECK("cancelling an idle delayed work returns false",
	      !kthread_cancel_delayed_work_sync(&c.dwork));

	/* mod: arm an idle one far away, then move it to now. */
	reinit_completion(&c.ran);
	CHECK("kthread_mod_delayed_work of an idle work arms it (false)",
	      !kthread_mod_delayed_work(w, &c.dwork, 3600 * HZ));
	t0 = now_ms();
	CHECK("kthread_mod_delayed_work of a pending work moves it (true)",
	      kthread_mod_delayed_work(w, &c.dwork, 0));
	CHECK("... and it runs at the new time",
	      wait_for_completion_timeout(&c.ran, WAIT_LONG) > 0 &&
		      now_ms() - t0 < 5000 && atomic_load(&c.runs) == 3);
	kthread_flush_work(&c.dwork.work);

	/* Flushing an armed delayed work runs it now. */
	kthread_queue_delayed_work(w, &c.dwork, 3600 * HZ);
	t0 = now_ms();
	kthread_flush_work(&c.dwork.work);
	CHECK("kthread_flush_work of an armed delayed work runs it now",
	      atomic_load(&c.runs) == 4 && now_ms() - t0 < 5000);
}

static void test_cancel(struct kthread_worker *w)
{
	struct counter c;
	struct blocker b;
	struct slow s;

	counter_init(&c);
	blocker_init(&b);
	kthread_queue_work(w, &b.work);
	wait_for_completion_timeout(&b.entered, WAIT_LONG);
	kthread_queue_work(w, &c.work);
	CHECK("kthread_cancel_work_sync of a pending work returns true",
	      kthread_cancel_work_sync(&c.work));
	complete(&b.release);
	kthread_flush_worker(w);
	CHECK("... and it never runs", atomic_load(&c.runs) == 0);
	CHECK("kthread_cancel_work_sync of an idle work returns false",
	      !kthread_cancel_work_sync(&c.work));

	memset(&s, 0, sizeof(s));
	kthread_init_work(&s.work, slow_fn);
	init_completion(&s.started);
	kthread_queue_work(w, &s.work);
	wait_for_completion_timeout(&s.started, WAIT_LONG);
	CHECK("kthread_cancel_work_sync of a running work returns false",
	      !kthread_cancel_work_sync(&s.work));
	CHECK("... after waiting for that run to finish",
	      atomic_load(&s.finished) == 1);
}

static void test_destroy(void)
{
	struct kthread_worker *w = kthread_create_worker(0, "doomed");
	struct counter cs[5], late;
	struct blocker b;
	long long t0;
	int i, all = 1;

	CHECK("kthread_create_worker", !IS_ERR_OR_NULL(w));
	blocker_init(&b);
	counter_init(&late);
	kthread_queue_work(w, &b.work);
	wait_for_completion_timeout(&b.entered, WAIT_LONG);
	for (i = 0; i < 5; i++) {
		counter_init(&cs[i]);
		kthread_queue_work(w, &cs[i].work);
	}
	kthread_queue_delayed_work(w, &late.dwork, 3600 * HZ);
	complete(&b.release);
	t0 = now_ms();
	kthread_destroy_worker(w);
	for (i = 0; i < 5; i++)
		if (atomic_load(&cs[i].runs) != 1)
			all = 0;
	CHECK("kthread_destroy_worker runs everything queued first", all);
	CHECK("... cancels armed delayed works instead of waiting for them",
	      atomic_load(&late.runs) == 0 && now_ms() - t0 < 5000);
}

static void test_on_cpu(void)
{
	int cpu = first_cpu();
	struct kthread_worker *w;
	struct counter c;
	char want[32];

	w = kthread_create_worker_on_cpu(cpu, 0, "cpuw/%d", cpu);
	CHECK("kthread_create_worker_on_cpu", !IS_ERR_OR_NULL(w));
	counter_init(&c);
	kthread_queue_work(w, &c.work);
	kthread_flush_work(&c.work);
	snprintf(want, sizeof(want), "cpuw/%d", cpu);
	CHECK("... runs its works on that CPU only",
	      c.cpu == cpu && c.allowed == 1 && strcmp(c.comm, want) == 0);
	kthread_destroy_worker(w);

	w = kthread_run_worker_on_cpu(cpu, 0, "kw/%u");
	counter_init(&c);
	kthread_queue_work(w, &c.work);
	kthread_flush_work(&c.work);
	snprintf(want, sizeof(want), "kw/%d", cpu);
	CHECK("kthread_run_worker_on_cpu names the worker by its CPU",
	      c.cpu == cpu && strcmp(c.comm, want) == 0);
	kthread_destroy_worker(w);

	w = kthread_create_worker_on_cpu(100000, 0, "nope");
	CHECK("a worker on a CPU that cannot exist is -EINVAL",
	      IS_ERR(w) && PTR_ERR(w) == -EINVAL);
	w = kthread_create_worker(0x80, "nope");
	CHECK("unknown worker flags are -EINVAL", IS_ERR(w) && PTR_ERR(w) == -EINVAL);
}

/* A work that flushes or destroys its own worker: refused, not a deadlock. */
struct selfish {
	struct kthread_worker *worker;
	struct kthread_work work;
	atomic_int returned;
};

static void selfish_fn(struct kthread_work *work)
{
	struct selfish *s = container_of(work, struct selfish, work);

	kthread_flush_worker(s->worker);
	kthread_flush_work(work);
	kthread_destroy_worker(s->worker);
	atomic_store(&s->returned, 1);
}

static void test_self_deadlocks(void)
{
	struct selfish s = { kthread_create_worker(0, "selfish"), { 0 }, 0 };

	kthread_init_work(&s.work, selfish_fn);
	kthread_queue_work(s.worker, &s.work);
	kthread_flush_work(&s.work);
	CHECK("flush and destroy from the worker's own work return (WARN) instead of deadlocking",
	      atomic_load(&s.returned) == 1);
	kthread_destroy_worker(s.worker);
}

/* A driver structure with its own worker inside, on the heap. */
struct driver {
	int irq;
	struct kthread_worker worker;
	struct counter c;
};

static void test_heap_worker(void)
{
	struct driver *drv = aligned_alloc(_Alignof(struct driver), sizeof(*drv));
	struct task_struct *task;

	kthread_init_worker(&drv->worker);
	counter_init(&drv->c);
	task = kthread_run(kthread_worker_fn, &drv->worker, "drv/%d", 9);
	CHECK("a worker embedded in a heap structure",
	      kthread_queue_work(&drv->worker, &drv->c.work));
	kthread_flush_worker(&drv->worker);
	CHECK("... runs its works", atomic_load(&drv->c.runs) == 1);
	CHECK("... and its thread stops with 0", kthread_stop(task) == 0);
	free(drv);
}

int main(void)
{
	struct kthread_worker *w = kthread_create_worker(0, "modern/%d", 1);
	struct kthread_worker *r;
	struct counter c;

	CHECK("kthread_create_worker returns a worker", !IS_ERR_OR_NULL(w));
	if (IS_ERR_OR_NULL(w))
		return check_summary();
	test_queue_and_flush(w);
	test_delayed(w);
	test_cancel(w);
	kthread_destroy_worker(w);

	r = kthread_run_worker(0, "run-worker");
	counter_init(&c);
	CHECK("kthread_run_worker gives a running worker",
	      !IS_ERR_OR_NULL(r) && kthread_queue_work(r, &c.work) &&
		      wait_for_completion_timeout(&c.ran, WAIT_LONG) > 0);
	kthread_destroy_worker(r);

	test_destroy();
	test_self_deadlocks();
	test_on_cpu();
	test_heap_worker();
	return check_summary();
}
