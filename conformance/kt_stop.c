// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_stop.c - SPEC §2 and §3: a kthread is created stopped, runs only once
 * woken; kthread_stop() before the first wake (-EINTR), of a running
 * kthread, of sleepers in each state, of one that returned by itself;
 * kthread_should_stop(); kthread_data(); current; the formatted name.
 *
 * SPEC §3 differs from the kernel on one race (a stop right after the first
 * wake, before the thread ran): every check here waits until the thread has
 * run before stopping it, so both sides are deterministic. See
 * DIFFERENCES.md.
 */
#define KTC_PROG "stop"
#include "env.h"

struct ran_ctx {
	atomic_t ran;
	atomic_t started;
	bool stop_before;
	bool stop_after;
	struct completion in_fn;
};

static int mark_ran_fn(void *data)
{
	struct ran_ctx *c = data;

	atomic_set(&c->ran, 1);
	return 7;
}

/* Runs until stopped, recording kthread_should_stop() before and after. */
static int until_stop_fn(void *data)
{
	struct ran_ctx *c = data;

	c->stop_before = kthread_should_stop();
	atomic_set(&c->started, 1);
	complete(&c->in_fn);
	ktc_wait_for_stop();
	c->stop_after = kthread_should_stop();
	return 8;
}

static struct ran_ctx never_woken, woken, sleeper;

static void check_create_and_stop(void)
{
	struct task_struct *k;

	k = kthread_create(mark_ran_fn, &never_woken, "ktc-never");
	CHECK("kthread_create_returns_a_task", !IS_ERR_OR_NULL(k));
	msleep(30);
	CHECK("a_created_kthread_does_not_run_before_its_first_wake",
	      atomic_read(&never_woken.ran) == 0);
	CHECK("kthread_stop_before_any_wake_returns_eintr",
	      kthread_stop(k) == -EINTR);
	CHECK("a_kthread_stopped_before_any_wake_never_runs_its_function",
	      atomic_read(&never_woken.ran) == 0);

	init_completion(&woken.in_fn);
	k = kthread_create(until_stop_fn, &woken, "ktc-woken");
	CHECK("wake_up_process_of_a_new_kthread_returns_1",
	      wake_up_process(k) == 1);
	CHECK("a_woken_kthread_runs_its_function",
	      wait_for_completion_timeout(&woken.in_fn, WAIT_LONG) > 0);
	CHECK("kthread_stop_returns_the_function_result", kthread_stop(k) == 8);
	CHECK("kthread_should_stop_is_false_before_the_stop", !woken.stop_before);
	CHECK("kthread_should_stop_is_true_after_the_stop", woken.stop_after);

	/* kthread_run = create + wake. */
	init_completion(&sleeper.in_fn);
	k = kthread_run(until_stop_fn, &sleeper, "ktc-run");
	CHECK("kthread_run_wakes_the_kthread",
	      wait_for_completion_timeout(&sleeper.in_fn, WAIT_LONG) > 0);
	CHECK("kthread_stop_of_a_kthread_from_kthread_run",
	      kthread_stop(k) == 8);
}

/* ---- stop of sleepers ------------------------------------------------------- */

struct sleep_ctx {
	unsigned int state;
	long timeout;
	atomic_t asleep;
	atomic_t rounds;
};

/* The kernel's loop with a chosen state and timeout. */
static int sleep_loop_fn(void *data)
{
	struct sleep_ctx *c = data;

	for (;;) {
		set_current_state(c->state);
		if (kthread_should_stop())
			break;
		atomic_set(&c->asleep, 1);
		schedule_timeout(c->timeout);
		atomic_inc(&c->rounds);
	}
	__set_current_state(TASK_RUNNING);
	return 20 + (int)c->state;
}

static struct sleep_ctx sleepers[3];

static void check_stop_sleepers(void)
{
	static const char *const names[3] = {
		"kthread_stop_wakes_an_interruptible_sleeper",
		"kthread_stop_wakes_an_uninterruptible_sleeper",
		"kthread_stop_ends_a_long_schedule_timeout_early",
	};
	struct task_struct *k[3];
	long long t0;
	int i, ret;

	sleepers[0].state = TASK_INTERRUPTIBLE;
	sleepers[0].timeout = MAX_SCHEDULE_TIMEOUT;
	sleepers[1].state = TASK_UNINTERRUPTIBLE;
	sleepers[1].timeout = MAX_SCHEDULE_TIMEOUT;
	sleepers[2].state = TASK_INTERRUPTIBLE;
	sleepers[2].timeout = msecs_to_jiffies(60000);
	for (i = 0; i < 3; i++)
		k[i] = kthread_run(sleep_loop_fn, &sleepers[i], "ktc-sleeper/%d", i);
	for (i = 0; i < 3; i++)
		WAIT_UNTIL(atomic_read(&sleepers[i].asleep));
	msleep(20);
	CHECK("sleepers_stay_asleep_until_woken",
	      atomic_read(&sleepers[0].rounds) == 0 &&
		      atomic_read(&sleepers[1].rounds) == 0 &&
		      atomic_read(&sleepers[2].rounds) == 0);
	for (i = 0; i < 3; i++) {
		t0 = env_now_ms();
		ret = kthread_stop(k[i]);
		CHECK(names[i], ret == 20 + (int)sleepers[i].state &&
					env_now_ms() - t0 < 5000);
	}
}

/* ---- many kthreads ---------------------------------------------------------- */

static atomic_t many_running;

static int index_fn(void *data)
{
	atomic_inc(&many_running);
	ktc_wait_for_stop();
	return (int)(long)data;
}

static void check_many(void)
{
	struct task_struct *k[8];
	int i, all = 1;

	for (i = 0; i < 8; i++) {
		k[i] = kthread_run(index_fn, (void *)(long)(100 + i), "ktc-many/%d", i);
		if (IS_ERR_OR_NULL(k[i]))
			all = 0;
	}
	/* Stop only once each has run (DIFFERENCES.md 1). */
	CHECK("eight_kthreads_run", WAIT_UNTIL(atomic_read(&many_running) == 8));
	for (i = 7; i >= 0; i--)
		if (!IS_ERR_OR_NULL(k[i]) && kthread_stop(k[i]) != 100 + i)
			all = 0;
	CHECK("eight_kthreads_each_stop_with_their_own_result", all);
}

/* ---- a kthread that returns by itself ---------------------------------------- */

static int finish_early_fn(void *data)
{
	complete((struct completion *)data);
	return 5;
}

static struct completion early_done;

static void check_returns_by_itself(void)
{
	struct task_struct *k;

	init_completion(&early_done);
	k = kthread_create(finish_early_fn, &early_done, "ktc-early");
	env_get_task(k);
	wake_up_process(k);
	CHECK("a_kthread_may_return_by_itself",
	      wait_for_completion_timeout(&early_done, WAIT_LONG) > 0);
	msleep(20);
	CHECK("kthread_stop_of_a_returned_kthread_gives_its_result",
	      kthread_stop(k) == 5);
	env_put_task(k);
}

/* ---- kthread_data, current, names ----------------------------------------------- */

struct data_ctx {
	void *seen_data;
	struct task_struct *seen_current;
	char comm[TASK_COMM_LEN];
	struct completion done;
};

static int data_fn(void *data)
{
	struct data_ctx *c = data;

	c->seen_data = kthread_data(current);
	c->seen_current = current;
	env_comm(c->comm);
	complete(&c->done);
	ktc_wait_for_stop();
	return 0;
}

static struct data_ctx dc;

static void check_data_and_current(void)
{
	struct task_struct *k;

	init_completion(&dc.done);
	k = kthread_create(data_fn, &dc, "fmt-%s-%d-%s", "x", 42, "a-long-tail");
	CHECK("kthread_data_from_outside_before_the_wake", kthread_data(k) == &dc);
	wake_up_process(k);
	wait_for_completion_timeout(&dc.done, WAIT_LONG);
	CHECK("kthread_data_from_outside_while_it_runs", kthread_data(k) == &dc);
	CHECK("kthread_data_of_current_inside_the_kthread", dc.seen_data == &dc);
	CHECK("current_inside_the_kthread_is_its_task", dc.seen_current == k);
	CHECK("the_name_is_printf_formatted_and_cut_to_15_bytes",
	      strcmp(dc.comm, "fmt-x-42-a-long") == 0);
	CHECK("kthread_stop_of_a_sleeping_kthread", kthread_stop(k) == 0);
	CHECK("current_outside_kthreads_is_a_task",
	      !IS_ERR_OR_NULL(current) && current != k);
}

void run_checks(void)
{
	check_create_and_stop();
	check_stop_sleepers();
	check_many();
	check_returns_by_itself();
	check_data_and_current();
}
