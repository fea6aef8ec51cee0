// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_freeze.c - SPEC §5: the freezer as kthreads see it.
 *
 * The freeze is env_freeze_cycle(): freeze every freezable task, thaw (in
 * the kernel, a suspend-to-idle in pm_test "freezer" mode driven from the
 * module, see env.h; in user space freeze_kthreads() + thaw_kthreads()).
 *
 * The kthreads:
 *  - two freezable kthreads looping on kthread_freezable_should_stop(), one
 *    sleeping uninterruptibly between rounds (msleep), the other
 *    interruptibly (schedule_timeout in TASK_INTERRUPTIBLE);
 *  - a KTW_FREEZABLE worker;
 *  - a freezable "latecomer" that reaches a freeze point (try_to_freeze())
 *    only once released: both freezers wait for every freezable kthread,
 *    keeping the others frozen meanwhile, so the latecomer holds the freeze
 *    open for as long as the observer needs, on both sides, whatever the
 *    clock does (in a TCG guest the kernel's pm_test delay is not reliable);
 *  - an observer that is not freezable: it sees the first kthread's rounds
 *    stop, queues a work on the frozen worker, watches that it does not run,
 *    then releases the latecomer.
 *
 * Not here (see DIFFERENCES.md): kthread_stop() of a frozen kthread (the
 * kernel waits for the thaw), and was_frozen after a freeze that found the
 * kthread in an interruptible sleep (the library freezes it inside the
 * sleep, the kernel at its next freeze point): probes/kt_probe.c shows both.
 */
#define KTC_PROG "freeze"
#include "env.h"

struct fz {
	bool interruptible;
	atomic_t started;
	atomic_t rounds;
	atomic_t thawed; /* rounds whose kthread_freezable_should_stop froze */
};

static int freezable_fn(void *data)
{
	struct fz *f = data;
	bool was_frozen = false;

	set_freezable();
	atomic_set(&f->started, 1);
	while (!kthread_freezable_should_stop(&was_frozen)) {
		if (was_frozen)
			atomic_inc(&f->thawed);
		atomic_inc(&f->rounds);
		if (f->interruptible) {
			set_current_state(TASK_INTERRUPTIBLE);
			if (!kthread_should_stop())
				schedule_timeout(msecs_to_jiffies(50));
			__set_current_state(TASK_RUNNING);
		} else {
			msleep(2);
		}
	}
	return f->interruptible ? 6 : 5;
}

/* Freezable, but freezes only once released. */
struct latecomer {
	atomic_t started;
	atomic_t release;
	atomic_t froze;
};

static int latecomer_fn(void *data)
{
	struct latecomer *l = data;

	set_freezable();
	atomic_set(&l->started, 1);
	while (!kthread_should_stop()) {
		msleep(2); /* uninterruptible: not a freeze point */
		if (atomic_read(&l->release) && try_to_freeze())
			atomic_inc(&l->froze);
	}
	return 7;
}

/*
 * Not freezable: watches both freezable kthreads. Once neither has moved
 * for STALL_MS (they move every few ms / 50 ms otherwise) they are frozen,
 * and so is the freezable worker: queue a work on it, watch POLLS more
 * rounds that it does not run, then release the latecomer.
 */
#define STALL_MS 250
#define POLLS 25

struct observer {
	struct fz *watch;
	struct fz *watch2;
	struct latecomer *late;
	struct kthread_worker *fworker;
	struct kthread_work work;
	atomic_t armed;
	atomic_t work_ran;
	int queued; /* 0: not yet, 1: queue returned true, 2: false */
	int polls_after_queue;
	int ran_while_frozen;
	int watch_at_queue, watch_at_release;
	int watch2_at_queue, watch2_at_release;
	int iters_in_stall;
	int froze_self;
};

static void fwork_fn(struct kthread_work *work)
{
	struct observer *o = container_of(work, struct observer, work);

	atomic_set(&o->work_ran, 1);
}

static int observer_fn(void *data)
{
	struct observer *o = data;
	long long last_t = env_now_ms(), now;
	int last = -1, last2 = -1, r, r2;

	while (!kthread_should_stop()) {
		msleep(2);
		if (try_to_freeze())
			o->froze_self++;
		r = atomic_read(&o->watch->rounds);
		r2 = atomic_read(&o->watch2->rounds);
		now = env_now_ms();
		if (r != last || r2 != last2 || !atomic_read(&o->armed)) {
			last = r;
			last2 = r2;
			last_t = now;
			continue;
		}
		if (now - last_t < STALL_MS || atomic_read(&o->late->release))
			continue;
		o->iters_in_stall++;
		if (!o->queued) {
			o->watch_at_queue = r;
			o->watch2_at_queue = r2;
			o->queued = kthread_queue_work(o->fworker, &o->work) ? 1 : 2;
			continue;
		}
		if (atomic_read(&o->work_ran))
			o->ran_while_frozen = 1;
		if (++o->polls_after_queue >= POLLS) {
			o->watch_at_release = atomic_read(&o->watch->rounds);
			o->watch2_at_release = atomic_read(&o->watch2->rounds);
			atomic_set(&o->late->release, 1);
		}
	}
	return 0;
}

static struct fz f_msleep, f_intr;
static struct latecomer late;
static struct observer obs;

void run_checks(void)
{
	struct task_struct *fk1, *fk2, *lk, *ok;
	struct kthread_worker *fw;
	int r1, r2, ret;

	fw = kthread_create_worker(KTW_FREEZABLE, "ktc-fworker");
	CHECK("kthread_create_worker_ktw_freezable", !IS_ERR_OR_NULL(fw));
	if (IS_ERR_OR_NULL(fw))
		return;
	f_intr.interruptible = true;
	fk1 = kthread_run(freezable_fn, &f_msleep, "ktc-freezable1");
	fk2 = kthread_run(freezable_fn, &f_intr, "ktc-freezable2");
	lk = kthread_run(latecomer_fn, &late, "ktc-latecomer");
	obs.watch = &f_msleep;
	obs.watch2 = &f_intr;
	obs.late = &late;
	obs.fworker = fw;
	kthread_init_work(&obs.work, fwork_fn);
	ok = kthread_run(observer_fn, &obs, "ktc-observer");
	CHECK("freezable_kthreads_run",
	      WAIT_UNTIL(atomic_read(&f_msleep.rounds) > 2 &&
			 atomic_read(&f_intr.rounds) > 0 &&
			 atomic_read(&late.started)));

	atomic_set(&obs.armed, 1);
	ret = env_freeze_cycle();
	CHECK("a_freeze_cycle_succeeds", ret == 0);
	if (ret)
		ktc_print("# note " KTC_PROG ": freeze %d; observer: queued %d, polls %d, stalled %d; rounds %d/%d, latecomer released %d",
			  ret, READ_ONCE(obs.queued), READ_ONCE(obs.polls_after_queue),
			  READ_ONCE(obs.iters_in_stall), atomic_read(&f_msleep.rounds),
			  atomic_read(&f_intr.rounds), atomic_read(&late.release));
	r1 = atomic_read(&f_msleep.rounds);
	r2 = atomic_read(&f_intr.rounds);
	CHECK("thawed_kthreads_run_again",
	      WAIT_UNTIL(atomic_read(&f_msleep.rounds) > r1 + 2 &&
			 atomic_read(&f_intr.rounds) > r2));
	atomic_set(&obs.armed, 0);
	if (READ_ONCE(obs.queued) == 1)
		WAIT_UNTIL(atomic_read(&obs.work_ran));
	kthread_stop(ok);

	/* Its try_to_freeze() returns, and counts, only once it runs after the thaw. */
	CHECK("the_freeze_waits_for_a_freezable_kthread_to_reach_a_freeze_point",
	      WAIT_UNTIL(atomic_read(&late.froze) >= 1) &&
		      atomic_read(&late.froze) == 1 &&
		      obs.polls_after_queue >= POLLS);
	CHECK("a_frozen_kthread_runs_nothing",
	      obs.queued && obs.watch_at_queue == obs.watch_at_release);
	CHECK("an_interruptibly_sleeping_freezable_kthread_is_frozen_too",
	      obs.queued && obs.watch2_at_queue == obs.watch2_at_release);
	CHECK("kthread_freezable_should_stop_reports_was_frozen_once",
	      atomic_read(&f_msleep.thawed) == 1);
	CHECK("a_kthread_that_is_not_freezable_runs_on_during_the_freeze",
	      obs.iters_in_stall > POLLS);
	CHECK("try_to_freeze_in_a_kthread_that_is_not_freezable_does_nothing",
	      obs.froze_self == 0);
	CHECK("a_frozen_freezable_worker_accepts_work", obs.queued == 1);
	CHECK("a_frozen_freezable_worker_runs_it_only_after_the_thaw",
	      atomic_read(&obs.work_ran) && !obs.ran_while_frozen);
	CHECK("kthread_stop_of_thawed_freezable_kthreads",
	      kthread_stop(fk1) == 5 && kthread_stop(fk2) == 6 &&
		      kthread_stop(lk) == 7);
	kthread_destroy_worker(fw);
}
