/*
 * worker_legacy.c - a caller-owned, static worker driven with the Linux 3.x
 * names: DEFINE_KTHREAD_WORKER, kthread_run(kthread_worker_fn, ...),
 * init_kthread_work, queue_kthread_work, flush_kthread_work,
 * flush_kthread_worker, and works embedded in a device structure that the
 * work function recovers with container_of.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>

#include "check.h"

static DEFINE_KTHREAD_WORKER(legacy_worker);

/* A "device" with its work embedded, as a driver would have it. */
struct my_dev {
	int id;
	atomic_int runs;
	int seen_id;
	char worker_comm[32];
	struct kthread_work work;
};

static void dev_work_fn(struct kthread_work *work)
{
	struct my_dev *dev = container_of(work, struct my_dev, work);

	dev->seen_id = dev->id;
	prctl(PR_GET_NAME, dev->worker_comm, 0, 0, 0);
	atomic_fetch_add(&dev->runs, 1);
}

/* A work that holds the worker busy until released. */
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

/* Works that record the order they ran in. */
#define NSEQ 16
static int seq_log[NSEQ];
static atomic_int seq_len;

struct seq_work {
	int n;
	struct kthread_work work;
};

static void seq_fn(struct kthread_work *work)
{
	struct seq_work *s = container_of(work, struct seq_work, work);
	int i = atomic_fetch_add(&seq_len, 1);

	if (i < NSEQ)
		seq_log[i] = s->n;
}

static atomic_int static_runs;

static void static_fn(struct kthread_work *work)
{
	(void)work;
	atomic_fetch_add(&static_runs, 1);
}

static DEFINE_KTHREAD_WORK(static_work, static_fn);

/* A statically initialised delayed work, for the static worker's timers. */
static DECLARE_COMPLETION(static_dwork_ran);

static void static_dwork_fn(struct kthread_work *work)
{
	(void)work;
	complete(&static_dwork_ran);
}

static DEFINE_KTHREAD_DELAYED_WORK(static_dwork, static_dwork_fn);

/* Re-queues itself from its own function, once. */
static atomic_int requeue_runs;
static void requeue_fn(struct kthread_work *work);
static DEFINE_KTHREAD_WORK(requeue_work, requeue_fn);

static void requeue_fn(struct kthread_work *work)
{
	if (atomic_fetch_add(&requeue_runs, 1) == 0)
		queue_kthread_work(&legacy_worker, work);
}

int main(void)
{
	struct my_dev dev = { .id = 42 };
	struct blocker b;
	struct seq_work seqs[NSEQ];
	struct task_struct *task, *dup;
	int i, in_order = 1;
	long long t0;

	task = kthread_run(kthread_worker_fn, &legacy_worker, "legacy/%d", 0);
	CHECK("kthread_run(kthread_worker_fn, &static_worker)", !IS_ERR_OR_NULL(task));

	init_kthread_work(&dev.work, dev_work_fn);
	init_kthread_work(&b.work, block_fn);
	init_completion(&b.entered);
	init_completion(&b.release);

	/* Pending at most once. */
	CHECK("queue_kthread_work of an idle work returns true",
	      queue_kthread_work(&legacy_worker, &b.work));
	CHECK("the worker runs it",
	      wait_for_completion_timeout(&b.entered, WAIT_LONG) > 0);
	CHECK("queue_kthread_work while the worker is busy returns true",
	      queue_kthread_work(&legacy_worker, &dev.work));
	CHECK("queue_kthread_work while pending returns false",
	      !queue_kthread_work(&legacy_worker, &dev.work));
	CHECK("... every time", !queue_kthread_work(&legacy_worker, &dev.work));
	complete(&b.release);
	flush_kthread_work(&dev.work);
	CHECK("flush_kthread_work returns once the pending instance has run",
	      atomic_load(&dev.runs) == 1);
	CHECK("the requests coalesced: it ran once", atomic_load(&dev.runs) == 1);
	CHECK("container_of recovers the embedding structure", dev.seen_id == 42);
	CHECK("works run on the worker's kthread",
	      strcmp(dev.worker_comm, "legacy/0") == 0);
	flush_kthread_work(&dev.work);
	CHECK("flush_kthread_work of an idle work returns at once",
	      atomic_load(&dev.runs) == 1);

	/* FIFO order and flush_kthread_worker. */
	reinit_completion(&b.entered);
	reinit_completion(&b.release);
	queue_kthread_work(&legacy_worker, &b.work);
	wait_for_completion_timeout(&b.entered, WAIT_LONG);
	for (i = 0; i < NSEQ; i++) {
		seqs[i].n = i;
		init_kthread_work(&seqs[i].work, seq_fn);
		queue_kthread_work(&legacy_worker, &seqs[i].work);
	}
	complete(&b.release);
	flush_kthread_worker(&legacy_worker);
	CHECK("flush_kthread_worker returns once everything queued before has run",
	      atomic_load(&seq_len) == NSEQ);
	for (i = 0; i < NSEQ; i++)
		if (seq_log[i] != i)
			in_order = 0;
	CHECK("works run in the order they were queued", in_order);

	/* Statically initialised works. */
	CHECK("a DEFINE_KTHREAD_WORK work queues",
	      queue_kthread_work(&legacy_worker, &static_work));
	flush_kthread_work(&static_work);
	CHECK("... and runs", atomic_load(&static_runs) == 1);

	/* Timers on an all-zero worker, with an all-zero delayed work. */
	t0 = now_ms();
	CHECK("a DEFINE_KTHREAD_DELAYED_WORK queues on a DEFINE_KTHREAD_WORKER",
	      kthread_queue_delayed_work(&legacy_worker, &static_dwork,
					 msecs_to_jiffies(20)));
	CHECK("... and runs after its delay",
	      wait_for_completion_timeout(&static_dwork_ran, WAIT_LONG) > 0 &&
		      now_ms() - t0 >= 20);

	/* A work queued again from its own function runs again. */
	queue_kthread_work(&legacy_worker, &requeue_work);
	CHECK("a work queued again while it runs runs again",
	      WAIT_UNTIL(atomic_load(&requeue_runs) == 2));
	flush_kthread_worker(&legacy_worker);

	/* One worker, one thread. */
	dup = kthread_create(kthread_worker_fn, &legacy_worker, "legacy-dup");
	get_task_struct(dup); /* it returns by itself at once */
	wake_up_process(dup);
	CHECK("a second thread on a served worker: kthread_worker_fn gives -EBUSY",
	      kthread_stop_put(dup) == -EBUSY);

	CHECK("kthread_stop of the worker's thread returns 0",
	      kthread_stop(task) == 0);

	/* The same static worker can be served again by a new thread. */
	task = kthread_run(kthread_worker_fn, &legacy_worker, "legacy/%d", 1);
	CHECK("queue on a worker served again",
	      queue_kthread_work(&legacy_worker, &dev.work));
	flush_kthread_worker(&legacy_worker);
	CHECK("... runs the work on the new thread",
	      atomic_load(&dev.runs) == 2 &&
		      strcmp(dev.worker_comm, "legacy/1") == 0);
	CHECK("kthread_stop of the new thread returns 0", kthread_stop(task) == 0);

	/* The modern name of init on the same memory. */
	kthread_init_worker(&legacy_worker);
	task = kthread_run(kthread_worker_fn, &legacy_worker, "legacy/%d", 2);
	queue_kthread_work(&legacy_worker, &dev.work);
	kthread_flush_worker(&legacy_worker);
	CHECK("kthread_init_worker + kthread_worker_fn",
	      atomic_load(&dev.runs) == 3 && kthread_stop(task) == 0);
	return check_summary();
}
