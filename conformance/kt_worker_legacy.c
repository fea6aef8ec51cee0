// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_worker_legacy.c - SPEC §6 with the Linux 3.x API: a static, caller-owned
 * worker set up with init_kthread_worker (6.1 has no DEFINE_KTHREAD_WORKER)
 * and served by kthread_run(kthread_worker_fn),
 * init_kthread_work, queue_kthread_work, flush_kthread_work,
 * flush_kthread_worker (env.h maps these to the modern names in the kernel
 * build: 6.1 has only those), works embedded in a structure
 * (container_of), pending-at-most-once, FIFO order, re-queueing from the
 * work itself, and kthread_stop() of the worker's thread, which abandons
 * what is still queued (the kernel's behaviour), and serving the same
 * worker again.
 */
#define KTC_PROG "legacy"
#include "env.h"

static struct kthread_worker legacy_worker;

/* A "device" with its work embedded, as a driver has it. */
struct my_dev {
	int id;
	atomic_t runs;
	int seen_id;
	char worker_comm[TASK_COMM_LEN];
	struct kthread_work work;
};

static void dev_work_fn(struct kthread_work *work)
{
	struct my_dev *dev = container_of(work, struct my_dev, work);

	dev->seen_id = dev->id;
	env_comm(dev->worker_comm);
	atomic_inc(&dev->runs);
}

/* Holds the worker busy until released (or, with until_stop, until the
 * worker's thread is asked to stop). */
struct blocker {
	bool until_stop;
	struct kthread_work work;
	struct completion entered;
	struct completion release;
};

static void block_fn(struct kthread_work *work)
{
	struct blocker *b = container_of(work, struct blocker, work);

	complete(&b->entered);
	if (b->until_stop)
		WAIT_UNTIL(kthread_should_stop());
	else
		wait_for_completion_timeout(&b->release, WAIT_LONG);
}

#define NSEQ 16
static int seq_log[NSEQ];
static atomic_t seq_len;

struct seq_work {
	int n;
	struct kthread_work work;
};

static void seq_fn(struct kthread_work *work)
{
	struct seq_work *s = container_of(work, struct seq_work, work);
	int i = atomic_inc_return(&seq_len) - 1;

	if (i < NSEQ)
		seq_log[i] = s->n;
}

static atomic_t static_runs;

static void static_fn(struct kthread_work *work)
{
	atomic_inc(&static_runs);
}

static DEFINE_KTHREAD_WORK(static_work, static_fn);

static DECLARE_COMPLETION(static_dwork_ran);

static void static_dwork_fn(struct kthread_work *work)
{
	complete(&static_dwork_ran);
}

static DEFINE_KTHREAD_DELAYED_WORK(static_dwork, static_dwork_fn);

static atomic_t requeue_runs;
static void requeue_fn(struct kthread_work *work);
static DEFINE_KTHREAD_WORK(requeue_work, requeue_fn);

static void requeue_fn(struct kthread_work *work)
{
	if (atomic_inc_return(&requeue_runs) == 1)
		queue_kthread_work(&legacy_worker, work);
}

static struct my_dev dev = { .id = 42 };
static struct my_dev abandoned = { .id = 7 };
static struct blocker b, stopper;
static struct seq_work seqs[NSEQ];

static void check_basics(void)
{
	int i, in_order = 1;
	long long t0;

	init_kthread_work(&dev.work, dev_work_fn);
	init_kthread_work(&b.work, block_fn);
	init_completion(&b.entered);
	init_completion(&b.release);

	CHECK("queue_kthread_work_of_an_idle_work_returns_true",
	      queue_kthread_work(&legacy_worker, &b.work));
	CHECK("the_worker_runs_it",
	      wait_for_completion_timeout(&b.entered, WAIT_LONG) > 0);
	CHECK("queue_kthread_work_while_the_worker_is_busy_returns_true",
	      queue_kthread_work(&legacy_worker, &dev.work));
	CHECK("queue_kthread_work_of_a_pending_work_returns_false",
	      !queue_kthread_work(&legacy_worker, &dev.work) &&
		      !queue_kthread_work(&legacy_worker, &dev.work));
	complete(&b.release);
	flush_kthread_work(&dev.work);
	CHECK("flush_kthread_work_returns_once_the_pending_instance_ran",
	      atomic_read(&dev.runs) == 1);
	msleep(20);
	CHECK("the_coalesced_requests_ran_once", atomic_read(&dev.runs) == 1);
	CHECK("container_of_recovers_the_embedding_structure", dev.seen_id == 42);
	CHECK("works_run_on_the_worker_kthread",
	      strcmp(dev.worker_comm, "ktc-legacy/0") == 0);
	flush_kthread_work(&dev.work);
	CHECK("flush_kthread_work_of_an_idle_work_returns_at_once",
	      atomic_read(&dev.runs) == 1);

	/* FIFO order, flush_kthread_worker. */
	reinit_completion(&b.entered);
	reinit_completion(&b.release);
	queue_kthread_work(&legacy_worker, &b.work);
	wait_for_completion_timeout(&b.entered, WAIT_LONG);
	for (i = 0; i < NSEQ; i++) {
		seqs[i].n = i;
		init_kthread_work(&seqs[i].work, seq_fn);
		queue_kthread_work(&legacy_worker, &seqs[i].work);
	}
	msleep(10);
	CHECK("queued_works_wait_for_the_running_one",
	      atomic_read(&seq_len) == 0);
	complete(&b.release);
	flush_kthread_worker(&legacy_worker);
	CHECK("flush_kthread_worker_returns_once_everything_queued_before_ran",
	      atomic_read(&seq_len) == NSEQ);
	for (i = 0; i < NSEQ; i++)
		if (seq_log[i] != i)
			in_order = 0;
	CHECK("works_run_in_the_order_they_were_queued", in_order);

	CHECK("a_define_kthread_work_work_queues",
	      queue_kthread_work(&legacy_worker, &static_work));
	flush_kthread_work(&static_work);
	CHECK("the_static_work_runs", atomic_read(&static_runs) == 1);

	t0 = env_now_ms();
	CHECK("a_define_kthread_delayed_work_queues_on_a_static_worker",
	      kthread_queue_delayed_work(&legacy_worker, &static_dwork,
					 msecs_to_jiffies(40)));
	CHECK("the_static_delayed_work_runs",
	      wait_for_completion_timeout(&static_dwork_ran, WAIT_LONG) > 0);
	CHECK_MS_AT_LEAST("the_static_delayed_work_waits_its_delay",
			  env_now_ms() - t0, 20);

	queue_kthread_work(&legacy_worker, &requeue_work);
	CHECK("a_work_queued_again_from_its_own_function_runs_again",
	      WAIT_UNTIL(atomic_read(&requeue_runs) == 2));
	flush_kthread_worker(&legacy_worker);
	msleep(10);
	CHECK("and_only_as_often_as_queued", atomic_read(&requeue_runs) == 2);
}

void run_checks(void)
{
	struct task_struct *task;

	init_kthread_worker(&legacy_worker);
	task = kthread_run(kthread_worker_fn, &legacy_worker, "ktc-legacy/%d", 0);
	CHECK("kthread_run_kthread_worker_fn_on_a_static_worker",
	      !IS_ERR_OR_NULL(task));
	if (IS_ERR_OR_NULL(task))
		return;
	check_basics();
	CHECK("kthread_stop_of_an_idle_worker_thread_returns_0",
	      kthread_stop(task) == 0);

	/* Served again by a new thread. */
	task = kthread_run(kthread_worker_fn, &legacy_worker, "ktc-legacy/%d", 1);
	CHECK("queue_on_a_worker_served_again",
	      queue_kthread_work(&legacy_worker, &dev.work));
	flush_kthread_worker(&legacy_worker);
	CHECK("runs_the_work_on_the_new_thread",
	      atomic_read(&dev.runs) == 2 &&
		      strcmp(dev.worker_comm, "ktc-legacy/1") == 0);

	/* kthread_stop() of a worker's thread abandons what is queued. */
	stopper.until_stop = true;
	init_kthread_work(&stopper.work, block_fn);
	init_completion(&stopper.entered);
	init_kthread_work(&abandoned.work, dev_work_fn);
	queue_kthread_work(&legacy_worker, &stopper.work);
	wait_for_completion_timeout(&stopper.entered, WAIT_LONG);
	CHECK("queue_behind_a_running_work",
	      queue_kthread_work(&legacy_worker, &abandoned.work));
	CHECK("kthread_stop_of_a_busy_worker_thread_returns_0",
	      kthread_stop(task) == 0);
	msleep(20);
	CHECK("kthread_stop_of_a_worker_thread_abandons_queued_works",
	      atomic_read(&abandoned.runs) == 0);
	CHECK("an_abandoned_work_stays_pending",
	      !queue_kthread_work(&legacy_worker, &abandoned.work));

	/* The next thread serving the worker runs it. */
	task = kthread_run(kthread_worker_fn, &legacy_worker, "ktc-legacy/%d", 2);
	flush_kthread_worker(&legacy_worker);
	CHECK("the_next_thread_serving_the_worker_runs_the_abandoned_work",
	      atomic_read(&abandoned.runs) == 1 && abandoned.seen_id == 7 &&
		      strcmp(abandoned.worker_comm, "ktc-legacy/2") == 0);
	CHECK("kthread_stop_of_the_third_thread_returns_0", kthread_stop(task) == 0);

	/* init_kthread_worker on the same memory, once idle. */
	init_kthread_worker(&legacy_worker);
	task = kthread_run(kthread_worker_fn, &legacy_worker, "ktc-legacy/%d", 3);
	queue_kthread_work(&legacy_worker, &dev.work);
	flush_kthread_worker(&legacy_worker);
	CHECK("init_kthread_worker_then_kthread_worker_fn_serves_it_afresh",
	      atomic_read(&dev.runs) == 3 && kthread_stop(task) == 0);
}
