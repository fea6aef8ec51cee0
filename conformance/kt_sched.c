// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_sched.c - SPEC §1: states, set_current_state()/schedule()/
 * wake_up_process(), schedule_timeout(), msleep(), completions.
 */
#define KTC_PROG "sched"
#include "env.h"

/* ---- the kernel's loop --------------------------------------------------- */

struct loop_ctx {
	atomic_t have_work;
	int handled;
	struct completion handled_one;
};

static int loop_fn(void *data)
{
	struct loop_ctx *c = data;

	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !atomic_read(&c->have_work))
			schedule();
		__set_current_state(TASK_RUNNING);
		if (atomic_xchg(&c->have_work, 0)) {
			c->handled++;
			complete(&c->handled_one);
		}
	}
	return 1000 + c->handled;
}

static struct loop_ctx loop;

static void check_loop(void)
{
	struct task_struct *k;
	int i, woke_all = 1;

	init_completion(&loop.handled_one);
	k = kthread_run(loop_fn, &loop, "ktc-loop/%d", 1);
	CHECK("kthread_run_returns_a_task", !IS_ERR_OR_NULL(k));
	if (IS_ERR_OR_NULL(k))
		return;
	for (i = 0; i < 5; i++) {
		atomic_set(&loop.have_work, 1);
		wake_up_process(k);
		if (!wait_for_completion_timeout(&loop.handled_one, WAIT_LONG))
			woke_all = 0;
	}
	CHECK("schedule_loop_sees_every_wake", woke_all);
	CHECK("kthread_stop_returns_the_loop_result", kthread_stop(k) == 1005);
}

/* ---- wake_up_process return values ------------------------------------------ */

struct sleeper {
	unsigned int state;
	atomic_t go;
	atomic_t woke;
	struct completion ready;
};

/* Announce "about to sleep" after set_current_state(), then sleep until go. */
static int sleeper_fn(void *data)
{
	struct sleeper *s = data;

	set_current_state(s->state);
	complete(&s->ready);
	while (!atomic_read(&s->go) && !kthread_should_stop()) {
		schedule();
		set_current_state(s->state);
	}
	__set_current_state(TASK_RUNNING);
	atomic_set(&s->woke, 1);
	ktc_wait_for_stop();
	return 0;
}

static struct sleeper sl_int, sl_unint;

static void check_wake(void)
{
	struct task_struct *k;
	long long t0;
	int r;

	CHECK("wake_up_process_of_a_running_task_returns_0",
	      wake_up_process(current) == 0);

	/* A wake between set_current_state() and schedule() is not lost. */
	set_current_state(TASK_INTERRUPTIBLE);
	r = wake_up_process(current);
	t0 = env_now_ms();
	schedule();
	CHECK("wake_between_set_current_state_and_schedule_returns_1", r == 1);
	CHECK_MS_BELOW("schedule_after_that_wake_returns_at_once",
		       env_now_ms() - t0, 2000);

	sl_int.state = TASK_INTERRUPTIBLE;
	init_completion(&sl_int.ready);
	k = kthread_run(sleeper_fn, &sl_int, "ktc-sleep-i");
	wait_for_completion_timeout(&sl_int.ready, WAIT_LONG);
	atomic_set(&sl_int.go, 1);
	CHECK("wake_up_process_of_an_interruptible_sleeper_returns_1",
	      wake_up_process(k) == 1);
	CHECK("the_interruptible_sleeper_wakes",
	      WAIT_UNTIL(atomic_read(&sl_int.woke)));
	kthread_stop(k);

	sl_unint.state = TASK_UNINTERRUPTIBLE;
	init_completion(&sl_unint.ready);
	k = kthread_run(sleeper_fn, &sl_unint, "ktc-sleep-u");
	wait_for_completion_timeout(&sl_unint.ready, WAIT_LONG);
	atomic_set(&sl_unint.go, 1);
	CHECK("wake_up_process_of_an_uninterruptible_sleeper_returns_1",
	      wake_up_process(k) == 1);
	CHECK("the_uninterruptible_sleeper_wakes",
	      WAIT_UNTIL(atomic_read(&sl_unint.woke)));
	kthread_stop(k);
}

/* ---- schedule_timeout, msleep ------------------------------------------------ */

struct waker {
	struct task_struct *sleeper;
	atomic_t woke;
};

static int waker_fn(void *data)
{
	struct waker *w = data;

	msleep(30);
	atomic_set(&w->woke, 1);
	wake_up_process(w->sleeper);
	ktc_wait_for_stop();
	return 0;
}

static struct waker wk;

static void check_timeouts(void)
{
	struct task_struct *k;
	long long t0, dt;
	long left;

	set_current_state(TASK_INTERRUPTIBLE);
	t0 = env_now_ms();
	left = schedule_timeout(msecs_to_jiffies(40));
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_expires_and_returns_0", left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_sleeps_its_timeout", dt, 20);

	__set_current_state(TASK_RUNNING);
	t0 = env_now_ms();
	left = schedule_timeout(msecs_to_jiffies(5000));
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_in_task_running_returns_with_time_left",
	      left > (long)msecs_to_jiffies(4000));
	CHECK_MS_BELOW("schedule_timeout_in_task_running_returns_at_once",
		       dt, 2000);

	wk.sleeper = current;
	atomic_set(&wk.woke, 0);
	k = kthread_create(waker_fn, &wk, "ktc-waker");
	set_current_state(TASK_INTERRUPTIBLE);
	wake_up_process(k);
	left = schedule_timeout(msecs_to_jiffies(10000));
	CHECK("wake_up_process_ends_schedule_timeout_early",
	      atomic_read(&wk.woke) && left > 0 &&
		      left < (long)msecs_to_jiffies(10000));
	kthread_stop(k);

	atomic_set(&wk.woke, 0);
	k = kthread_create(waker_fn, &wk, "ktc-waker2");
	set_current_state(TASK_UNINTERRUPTIBLE);
	wake_up_process(k);
	left = schedule_timeout(MAX_SCHEDULE_TIMEOUT);
	CHECK("schedule_timeout_max_sleeps_until_woken_and_returns_max",
	      atomic_read(&wk.woke) && left == MAX_SCHEDULE_TIMEOUT);
	kthread_stop(k);

	t0 = env_now_ms();
	msleep(20);
	CHECK_MS_AT_LEAST("msleep_sleeps_at_least_its_time",
			  env_now_ms() - t0, 10);
}

/* ---- completions --------------------------------------------------------------- */

struct gate {
	struct completion *gate;
	struct completion *arrived;
};

static int gate_fn(void *data)
{
	struct gate *g = data;

	wait_for_completion(g->gate);
	complete(g->arrived);
	ktc_wait_for_stop();
	return 0;
}

static DECLARE_COMPLETION(static_done);

static int complete_static_fn(void *data)
{
	complete(&static_done);
	ktc_wait_for_stop();
	return 0;
}

static struct completion gate_c, arrived_c, never_c, counted_c;
static struct gate gate_ctx;

static void check_completions(void)
{
	struct task_struct *a, *b, *s;
	unsigned long left;
	long long t0, dt;
	int all;

	s = kthread_run(complete_static_fn, NULL, "ktc-static");
	CHECK("a_static_completion_completes_across_threads",
	      wait_for_completion_timeout(&static_done, WAIT_LONG) >= 1);
	kthread_stop(s);

	init_completion(&never_c);
	t0 = env_now_ms();
	left = wait_for_completion_timeout(&never_c, msecs_to_jiffies(20));
	dt = env_now_ms() - t0;
	CHECK("wait_for_completion_timeout_returns_0_on_timeout", left == 0);
	CHECK_MS_AT_LEAST("wait_for_completion_timeout_waits_its_timeout", dt, 10);
	CHECK("a_fresh_completion_is_not_done",
	      !completion_done(&never_c) && !try_wait_for_completion(&never_c));

	init_completion(&gate_c);
	init_completion(&arrived_c);
	gate_ctx.gate = &gate_c;
	gate_ctx.arrived = &arrived_c;
	a = kthread_run(gate_fn, &gate_ctx, "ktc-gate-a");
	b = kthread_run(gate_fn, &gate_ctx, "ktc-gate-b");
	msleep(20);
	CHECK("waiters_wait_until_completed", !completion_done(&arrived_c));
	complete_all(&gate_c);
	all = wait_for_completion_timeout(&arrived_c, WAIT_LONG) > 0;
	all = all && wait_for_completion_timeout(&arrived_c, WAIT_LONG) > 0;
	CHECK("complete_all_releases_every_waiter", all);
	CHECK("complete_all_releases_every_later_waiter",
	      completion_done(&gate_c) &&
		      wait_for_completion_timeout(&gate_c, 1) >= 1 &&
		      try_wait_for_completion(&gate_c));
	kthread_stop(a);
	kthread_stop(b);
	reinit_completion(&gate_c);
	CHECK("reinit_completion_makes_it_not_done", !completion_done(&gate_c));

	init_completion(&counted_c);
	complete(&counted_c);
	complete(&counted_c);
	CHECK("two_completes_let_exactly_two_waits_through",
	      try_wait_for_completion(&counted_c) &&
		      completion_done(&counted_c) &&
		      try_wait_for_completion(&counted_c) &&
		      !completion_done(&counted_c) &&
		      !try_wait_for_completion(&counted_c));
}

void run_checks(void)
{
	check_loop();
	check_wake();
	check_timeouts();
	check_completions();
}
