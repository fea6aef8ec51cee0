// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_worker.c - SPEC §6 with the modern (4.9+) API: kthread_create_worker()
 * returning a running worker (6.1-6.13), flush of a queued and of a running
 * work, kthread_flush_worker, cancel of pending and running works (and
 * queueing refused while a cancel waits), delayed work
 * (queue/mod/cancel), kthread_destroy_worker, CPU-bound workers, and
 * 6.14's kthread_run_worker*() names (env.h maps them for 6.1).
 *
 * Not here, because the kernel differs (see DIFFERENCES.md): flushing an
 * armed delayed work, destroying a worker with an armed delayed work,
 * flushing or destroying a worker from its own work.
 */
#define KTC_PROG "worker"
#include "env.h"

struct counter {
	atomic_t runs;
	long long last_ms;
	int cpu;
	int allowed;
	char comm[TASK_COMM_LEN];
	struct completion ran;
	struct kthread_work work;
	struct kthread_delayed_work dwork;
};

static void count(struct counter *c)
{
	c->last_ms = env_now_ms();
	c->cpu = env_cpu();
	c->allowed = env_allowed_cpus();
	env_comm(c->comm);
	atomic_inc(&c->runs);
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

/*
 * A work that runs until released (complete_all: every later run passes at
 * once), counting starts and ends, so that "while it runs" needs no timing.
 */
struct slow {
	struct kthread_work work;
	struct completion started;
	struct completion release;
	atomic_t starts;
	atomic_t ends;
};

static void slow_fn(struct kthread_work *work)
{
	struct slow *s = container_of(work, struct slow, work);

	atomic_inc(&s->starts);
	complete(&s->started);
	wait_for_completion_timeout(&s->release, WAIT_LONG);
	atomic_inc(&s->ends);
}

static void slow_init(struct slow *s)
{
	memset(s, 0, sizeof(*s));
	kthread_init_work(&s->work, slow_fn);
	init_completion(&s->started);
	init_completion(&s->release);
}

/* Flushes or cancels a work from another kthread, recording what it saw. */
struct waiter {
	struct slow *s;
	bool cancel;
	atomic_t calling;
	struct completion returned;
	int ends_at_return;
	bool cancel_ret;
};

static int waiter_fn(void *data)
{
	struct waiter *wt = data;

	atomic_set(&wt->calling, 1);
	if (wt->cancel)
		wt->cancel_ret = kthread_cancel_work_sync(&wt->s->work);
	else
		kthread_flush_work(&wt->s->work);
	wt->ends_at_return = atomic_read(&wt->s->ends);
	complete(&wt->returned);
	ktc_wait_for_stop();
	return 0;
}

static struct waiter wt;

/* Starts a waiter on `s` (which must be running) and lets it block. */
static struct task_struct *start_waiter(struct slow *s, bool cancel)
{
	struct task_struct *k;

	memset(&wt, 0, sizeof(wt));
	wt.s = s;
	wt.cancel = cancel;
	init_completion(&wt.returned);
	k = kthread_run(waiter_fn, &wt, "ktc-waiter");
	WAIT_UNTIL(atomic_read(&wt.calling));
	msleep(200); /* it is inside the flush/cancel by now */
	return k;
}

static struct kthread_worker *w;
static struct counter c1, c2, cs[5];
static struct blocker blk;
static struct slow s1, s2;

static void check_queue_and_flush(void)
{
	struct task_struct *k;
	long long t0;

	counter_init(&c1);
	CHECK("kthread_queue_work_returns_true", kthread_queue_work(w, &c1.work));
	CHECK("a_created_worker_is_running_and_runs_it",
	      wait_for_completion_timeout(&c1.ran, WAIT_LONG) > 0);
	kthread_flush_work(&c1.work);
	CHECK("the_work_ran_once_on_the_worker_kthread",
	      atomic_read(&c1.runs) == 1 && strcmp(c1.comm, "ktc-worker/1") == 0);

	/* Flush of a running work waits for that run. */
	slow_init(&s1);
	kthread_queue_work(w, &s1.work);
	wait_for_completion_timeout(&s1.started, WAIT_LONG);
	k = start_waiter(&s1, false);
	CHECK("kthread_flush_work_of_a_running_work_waits_for_it",
	      !completion_done(&wt.returned));
	complete_all(&s1.release);
	CHECK("and_returns_once_that_run_ended",
	      wait_for_completion_timeout(&wt.returned, WAIT_LONG) > 0 &&
		      wt.ends_at_return == 1);
	kthread_stop(k);

	/* Queued again while it runs: true, and it runs again. */
	slow_init(&s2);
	kthread_queue_work(w, &s2.work);
	wait_for_completion_timeout(&s2.started, WAIT_LONG);
	CHECK("kthread_queue_work_of_a_running_work_returns_true",
	      kthread_queue_work(w, &s2.work));
	CHECK("but_not_twice", !kthread_queue_work(w, &s2.work));
	complete_all(&s2.release);
	kthread_flush_work(&s2.work);
	CHECK("a_work_queued_while_it_ran_runs_again",
	      atomic_read(&s2.starts) == 2 && atomic_read(&s2.ends) == 2);

	/* kthread_flush_worker. */
	blocker_init(&blk);
	counter_init(&c1);
	counter_init(&c2);
	kthread_queue_work(w, &blk.work);
	wait_for_completion_timeout(&blk.entered, WAIT_LONG);
	kthread_queue_work(w, &c1.work);
	kthread_queue_work(w, &c2.work);
	complete(&blk.release);
	kthread_flush_worker(w);
	CHECK("kthread_flush_worker_waits_for_everything_queued_before",
	      atomic_read(&c1.runs) == 1 && atomic_read(&c2.runs) == 1);
	t0 = env_now_ms();
	kthread_flush_worker(w);
	CHECK_MS_BELOW("kthread_flush_worker_of_an_idle_worker_returns_at_once",
		       env_now_ms() - t0, 2000);
}

static void check_cancel(void)
{
	struct task_struct *k;

	blocker_init(&blk);
	counter_init(&c1);
	kthread_queue_work(w, &blk.work);
	wait_for_completion_timeout(&blk.entered, WAIT_LONG);
	kthread_queue_work(w, &c1.work);
	CHECK("kthread_cancel_work_sync_of_a_pending_work_returns_true",
	      kthread_cancel_work_sync(&c1.work));
	complete(&blk.release);
	kthread_flush_worker(w);
	CHECK("a_cancelled_work_never_runs", atomic_read(&c1.runs) == 0);
	CHECK("kthread_cancel_work_sync_of_an_idle_work_returns_false",
	      !kthread_cancel_work_sync(&c1.work));
	CHECK("a_cancelled_work_can_be_queued_again",
	      kthread_queue_work(w, &c1.work));
	kthread_flush_work(&c1.work);
	CHECK("and_then_runs", atomic_read(&c1.runs) == 1);

	slow_init(&s1);
	kthread_queue_work(w, &s1.work);
	wait_for_completion_timeout(&s1.started, WAIT_LONG);
	k = start_waiter(&s1, true);
	CHECK("kthread_cancel_work_sync_of_a_running_work_waits_for_it",
	      !completion_done(&wt.returned));
	/* While the cancel waits for the running instance, queueing fails. */
	CHECK("kthread_queue_work_fails_while_a_cancel_waits_for_the_work",
	      !kthread_queue_work(w, &s1.work));
	complete_all(&s1.release);
	CHECK("and_returns_false_once_that_run_ended",
	      wait_for_completion_timeout(&wt.returned, WAIT_LONG) > 0 &&
		      !wt.cancel_ret && wt.ends_at_return == 1);
	kthread_stop(k);
	kthread_flush_worker(w);
	CHECK("the_refused_queue_left_nothing_behind",
	      atomic_read(&s1.starts) == 1);
}

static void check_delayed(void)
{
	long long t0;

	counter_init(&c1);
	t0 = env_now_ms();
	CHECK("kthread_queue_delayed_work_returns_true",
	      kthread_queue_delayed_work(w, &c1.dwork, msecs_to_jiffies(60)));
	CHECK("kthread_queue_delayed_work_of_an_armed_work_returns_false",
	      !kthread_queue_delayed_work(w, &c1.dwork, msecs_to_jiffies(60)));
	CHECK("kthread_queue_work_of_an_armed_delayed_work_returns_false",
	      !kthread_queue_work(w, &c1.dwork.work));
	CHECK("a_delayed_work_runs",
	      wait_for_completion_timeout(&c1.ran, WAIT_LONG) > 0);
	CHECK_MS_AT_LEAST("not_before_its_delay", c1.last_ms - t0, 30);
	msleep(20);
	CHECK("once", atomic_read(&c1.runs) == 1);

	CHECK("kthread_queue_delayed_work_with_no_delay",
	      kthread_queue_delayed_work(w, &c1.dwork, 0));
	kthread_flush_work(&c1.dwork.work);
	CHECK("runs_at_once", atomic_read(&c1.runs) == 2);

	kthread_queue_delayed_work(w, &c1.dwork, msecs_to_jiffies(10000));
	CHECK("kthread_cancel_delayed_work_sync_of_an_armed_work_returns_true",
	      kthread_cancel_delayed_work_sync(&c1.dwork));
	msleep(30);
	CHECK("a_cancelled_delayed_work_never_runs", atomic_read(&c1.runs) == 2);
	CHECK("kthread_cancel_delayed_work_sync_of_an_idle_work_returns_false",
	      !kthread_cancel_delayed_work_sync(&c1.dwork));

	reinit_completion(&c1.ran);
	CHECK("kthread_mod_delayed_work_of_an_idle_work_arms_it_and_returns_false",
	      !kthread_mod_delayed_work(w, &c1.dwork, msecs_to_jiffies(3600000)));
	msleep(30);
	CHECK("the_armed_work_waits_for_its_time", atomic_read(&c1.runs) == 2);
	t0 = env_now_ms();
	CHECK("kthread_mod_delayed_work_of_an_armed_work_returns_true",
	      kthread_mod_delayed_work(w, &c1.dwork, msecs_to_jiffies(20)));
	CHECK("and_it_runs_at_the_new_time",
	      wait_for_completion_timeout(&c1.ran, WAIT_LONG) > 0 &&
		      env_now_ms() - t0 < 5000 && atomic_read(&c1.runs) == 3);

	counter_init(&c2);
	kthread_queue_delayed_work(w, &c2.dwork, msecs_to_jiffies(50));
	CHECK("kthread_mod_delayed_work_can_push_an_armed_work_later",
	      kthread_mod_delayed_work(w, &c2.dwork, msecs_to_jiffies(3600000)));
	msleep(200);
	CHECK("so_it_does_not_run_at_the_old_time", atomic_read(&c2.runs) == 0);
	CHECK("and_a_cancel_still_finds_it_pending",
	      kthread_cancel_delayed_work_sync(&c2.dwork));
}

static void check_destroy(void)
{
	struct kthread_worker *d = kthread_create_worker(0, "ktc-doomed");
	int i, all = 1;

	CHECK("kthread_create_worker_of_a_second_worker", !IS_ERR_OR_NULL(d));
	if (IS_ERR_OR_NULL(d))
		return;
	blocker_init(&blk);
	kthread_queue_work(d, &blk.work);
	wait_for_completion_timeout(&blk.entered, WAIT_LONG);
	for (i = 0; i < 5; i++) {
		counter_init(&cs[i]);
		kthread_queue_work(d, &cs[i].work);
	}
	complete(&blk.release);
	kthread_destroy_worker(d);
	for (i = 0; i < 5; i++)
		if (atomic_read(&cs[i].runs) != 1)
			all = 0;
	CHECK("kthread_destroy_worker_runs_everything_queued_first", all);
}

static void check_on_cpu(void)
{
	int cpu = env_last_cpu();
	struct kthread_worker *cw;
	char want[TASK_COMM_LEN];

	cw = kthread_create_worker_on_cpu(cpu, 0, "ktc-cpuw/%d", cpu);
	CHECK("kthread_create_worker_on_cpu", !IS_ERR_OR_NULL(cw));
	if (IS_ERR_OR_NULL(cw))
		return;
	counter_init(&c1);
	kthread_queue_work(cw, &c1.work);
	kthread_flush_work(&c1.work);
	snprintf(want, sizeof(want), "ktc-cpuw/%d", cpu);
	CHECK("its_works_run_on_that_cpu_only",
	      atomic_read(&c1.runs) == 1 && c1.cpu == cpu && c1.allowed == 1);
	CHECK("its_thread_has_the_formatted_name", strcmp(c1.comm, want) == 0);
	kthread_destroy_worker(cw);

	cw = kthread_run_worker_on_cpu(cpu, 0, "ktc-kw/%u");
	counter_init(&c1);
	kthread_queue_work(cw, &c1.work);
	kthread_flush_work(&c1.work);
	snprintf(want, sizeof(want), "ktc-kw/%d", cpu);
	CHECK("kthread_run_worker_on_cpu_binds_and_names_it_by_the_cpu",
	      atomic_read(&c1.runs) == 1 && c1.cpu == cpu && c1.allowed == 1 &&
		      strcmp(c1.comm, want) == 0);
	kthread_destroy_worker(cw);

	cw = kthread_run_worker(0, "ktc-run-worker");
	counter_init(&c1);
	CHECK("kthread_run_worker_gives_a_running_worker",
	      !IS_ERR_OR_NULL(cw) && kthread_queue_work(cw, &c1.work) &&
		      wait_for_completion_timeout(&c1.ran, WAIT_LONG) > 0);
	if (!IS_ERR_OR_NULL(cw))
		kthread_destroy_worker(cw);
}

void run_checks(void)
{
	w = kthread_create_worker(0, "ktc-worker/%d", 1);
	CHECK("kthread_create_worker_returns_a_worker", !IS_ERR_OR_NULL(w));
	if (IS_ERR_OR_NULL(w))
		return;
	check_queue_and_flush();
	check_cancel();
	check_delayed();
	kthread_destroy_worker(w);
	check_destroy();
	check_on_cpu();
}
