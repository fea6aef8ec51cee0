// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_park.c - SPEC §4: kthread_park()/kthread_unpark()/kthread_parkme()/
 * kthread_should_park(), parking before the first wake, stop of a parked
 * kthread, and the errors (-EBUSY parked already, -ENOSYS exited; the
 * kernel also WARNs for those two).
 */
#define KTC_PROG "park"
#include "env.h"

struct park_ctx {
	atomic_t rounds;
	atomic_t parks;
	atomic_t parkme_returned;
};

static int park_fn(void *data)
{
	struct park_ctx *c = data;

	while (!kthread_should_stop()) {
		if (kthread_should_park()) {
			atomic_inc(&c->parks);
			kthread_parkme();
			continue;
		}
		atomic_inc(&c->rounds);
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !kthread_should_park())
			schedule_timeout(msecs_to_jiffies(2));
		__set_current_state(TASK_RUNNING);
	}
	return 99;
}

/* kthread_parkme() without a park request returns at once. */
static int parkme_unasked_fn(void *data)
{
	struct park_ctx *c = data;

	if (!kthread_should_park()) {
		kthread_parkme();
		atomic_set(&c->parkme_returned, 1);
	}
	ktc_wait_for_stop();
	return 3;
}

static int return_fn(void *data)
{
	complete((struct completion *)data);
	return 4;
}

static struct park_ctx pc, first, stopped, unasked;
static struct completion exited_done;

static void check_park(void)
{
	struct task_struct *k;
	int r;

	k = kthread_run(park_fn, &pc, "ktc-park");
	CHECK("a_parkable_kthread_runs", WAIT_UNTIL(atomic_read(&pc.rounds) > 2));
	CHECK("kthread_park_returns_0", kthread_park(k) == 0);
	CHECK("kthread_park_returns_once_the_kthread_is_in_parkme",
	      atomic_read(&pc.parks) == 1);
	r = atomic_read(&pc.rounds);
	msleep(40);
	CHECK("a_parked_kthread_runs_nothing", atomic_read(&pc.rounds) == r);
	CHECK("kthread_park_of_a_parked_kthread_returns_ebusy",
	      kthread_park(k) == -EBUSY);
	kthread_unpark(k);
	CHECK("kthread_unpark_lets_it_run_again",
	      WAIT_UNTIL(atomic_read(&pc.rounds) > r + 2));
	CHECK("it_can_be_parked_again",
	      kthread_park(k) == 0 && atomic_read(&pc.parks) == 2);
	kthread_unpark(k);
	CHECK("and_unparked_again",
	      WAIT_UNTIL(atomic_read(&pc.rounds) > r + 4));
	CHECK("kthread_park_once_more", kthread_park(k) == 0);
	CHECK("kthread_stop_of_a_parked_kthread_returns_its_result",
	      kthread_stop(k) == 99 && atomic_read(&pc.parks) == 3);
}

static void check_park_first(void)
{
	struct task_struct *k;

	/* Parking a never-woken kthread is its first wake. */
	k = kthread_create(park_fn, &first, "ktc-park-first");
	CHECK("kthread_park_of_a_never_woken_kthread_returns_0",
	      kthread_park(k) == 0);
	msleep(30);
	CHECK("it_parks_before_its_function_runs",
	      atomic_read(&first.rounds) == 0 && atomic_read(&first.parks) == 0);
	kthread_unpark(k);
	CHECK("kthread_unpark_then_starts_its_function",
	      WAIT_UNTIL(atomic_read(&first.rounds) > 2));
	CHECK("a_wake_up_process_after_that_is_harmless",
	      wake_up_process(k) >= 0 &&
		      WAIT_UNTIL(atomic_read(&first.rounds) > 4));
	CHECK("it_stops_normally", kthread_stop(k) == 99);

	k = kthread_create(park_fn, &stopped, "ktc-park-stop");
	kthread_park(k);
	CHECK("kthread_stop_of_a_parked_never_run_kthread_runs_it_with_should_stop_set",
	      kthread_stop(k) == 99 && atomic_read(&stopped.rounds) == 0 &&
		      atomic_read(&stopped.parks) == 0);
}

static void check_park_misc(void)
{
	struct task_struct *k;

	k = kthread_run(parkme_unasked_fn, &unasked, "ktc-parkme");
	CHECK("kthread_parkme_without_a_request_returns_at_once",
	      WAIT_UNTIL(atomic_read(&unasked.parkme_returned)));
	CHECK("a_kthread_that_called_parkme_unasked_stops_normally",
	      kthread_stop(k) == 3);

	init_completion(&exited_done);
	k = kthread_create(return_fn, &exited_done, "ktc-exits");
	env_get_task(k);
	wake_up_process(k);
	wait_for_completion_timeout(&exited_done, WAIT_LONG);
	env_wait_exiting(k);
	CHECK("kthread_park_of_a_kthread_that_exited_returns_enosys",
	      kthread_park(k) == -ENOSYS);
	CHECK("a_kthread_that_exited_still_stops_with_its_result",
	      kthread_stop(k) == 4);
	env_put_task(k);
}

void run_checks(void)
{
	check_park();
	check_park_first();
	check_park_misc();
}
