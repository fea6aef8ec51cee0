// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_tstate.c - task states and time, as Linux 6.1 has them: TASK_IDLE,
 * TASK_KILLABLE, TASK_NORMAL (the wake mask of wake_up() and
 * wake_up_process()), TASK_INTERRUPTIBLE | TASK_FREEZABLE sleeps of a
 * freezable kthread and what a freeze does to them and to a plain
 * TASK_INTERRUPTIBLE sleep, freezing(current), the schedule_timeout_*()
 * variants, msleep_interruptible(), usleep_range(), jiffies and the
 * time_after() family (across a wrap), the jiffies conversions,
 * round_jiffies_relative(), the task fields (comm, pid, task_pid_nr,
 * get_task_comm, a worker's task, get_task_struct / put_task_struct),
 * cond_resched(), the remaining wait_for_completion_*() variants,
 * kthread_run_on_cpu(), kthread_complete_and_exit() and kthread_exit().
 *
 * Every check holds for any HZ (Debian's 6.1 has 250, the library 1000).
 */
#define KTC_PROG "tstate"
#include "env.h"

/* ---- the state bits ------------------------------------------------------- */

static void check_state_bits(void)
{
	CHECK("task_normal_is_interruptible_and_uninterruptible",
	      TASK_NORMAL == (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE));
	CHECK("task_idle_and_task_killable_are_uninterruptible_sleeps",
	      (TASK_IDLE & TASK_UNINTERRUPTIBLE) && !(TASK_IDLE & TASK_INTERRUPTIBLE) &&
		      (TASK_KILLABLE & TASK_UNINTERRUPTIBLE) &&
		      !(TASK_KILLABLE & TASK_INTERRUPTIBLE) && TASK_IDLE != TASK_KILLABLE);
	CHECK("task_freezable_is_a_modifier_of_its_own",
	      TASK_FREEZABLE != 0 && !(TASK_FREEZABLE & TASK_NORMAL) &&
		      !(TASK_FREEZABLE & TASK_IDLE) && !(TASK_FREEZABLE & TASK_KILLABLE));
}

/* ---- sleepers in each state, on a DECLARE_WAITQUEUE entry ------------------ */

struct st_ctx {
	unsigned int state;
	wait_queue_head_t wq;
	atomic_t armed;   /* rounds for which the state is set */
	atomic_t returns; /* returns from schedule() */
	atomic_t go;
};

static int st_fn(void *data)
{
	struct st_ctx *c = data;
	DECLARE_WAITQUEUE(wait, current);

	add_wait_queue(&c->wq, &wait);
	for (;;) {
		set_current_state(c->state);
		atomic_inc(&c->armed);
		if (atomic_read(&c->go) || kthread_should_stop())
			break;
		schedule();
		atomic_inc(&c->returns);
	}
	__set_current_state(TASK_RUNNING);
	remove_wait_queue(&c->wq, &wait);
	ktc_wait_for_stop();
	return 100;
}

static struct st_ctx st[4];

static void check_sleep_states(void)
{
	static const char *const tag[4] = {
		"task_idle", "task_killable", "task_uninterruptible",
		"task_interruptible",
	};
	static const unsigned int states[4] = {
		TASK_IDLE, TASK_KILLABLE, TASK_UNINTERRUPTIBLE, TASK_INTERRUPTIBLE,
	};
	char name[128];
	struct task_struct *k;
	int i, r, woken_by_intr;

	for (i = 0; i < 4; i++) {
		struct st_ctx *c = &st[i];

		c->state = states[i];
		init_waitqueue_head(&c->wq);
		k = kthread_run(st_fn, c, "ktc-st/%d", i);
		WAIT_UNTIL(atomic_read(&c->armed) == 1);
		msleep(20);
		snprintf(name, sizeof(name), "a_%s_sleep_lasts_until_woken", tag[i]);
		CHECK(name, atomic_read(&c->armed) == 1 &&
				    atomic_read(&c->returns) == 0);

		wake_up_interruptible(&c->wq);
		woken_by_intr = i == 3;
		if (woken_by_intr)
			WAIT_UNTIL(atomic_read(&c->returns) == 1 &&
				   atomic_read(&c->armed) == 2);
		msleep(20);
		snprintf(name, sizeof(name), "wake_up_interruptible_%s_a_%s_sleeper",
			 woken_by_intr ? "wakes" : "does_not_wake", tag[i]);
		CHECK(name, atomic_read(&c->returns) == woken_by_intr);

		r = wake_up_process(k);
		snprintf(name, sizeof(name), "wake_up_process_of_a_%s_sleeper_returns_1_and_wakes_it",
			 tag[i]);
		CHECK(name, r == 1 &&
				    WAIT_UNTIL(atomic_read(&c->returns) == woken_by_intr + 1 &&
					       atomic_read(&c->armed) == woken_by_intr + 2));

		atomic_set(&c->go, 1);
		wake_up(&c->wq);
		snprintf(name, sizeof(name), "wake_up_with_task_normal_wakes_a_%s_sleeper",
			 tag[i]);
		CHECK(name, WAIT_UNTIL(!waitqueue_active(&c->wq)) &&
				    atomic_read(&c->returns) == woken_by_intr + 2);
		kthread_stop(k);
	}
}

/* ---- schedule_timeout_*, msleep_interruptible, usleep_range ---------------- */

/* Wakes `target` with wake_up_process() every 2 ms until stopped. */
struct poker {
	struct task_struct *target;
	atomic_t pokes;
};

static int poker_fn(void *data)
{
	struct poker *p = data;

	while (!kthread_should_stop()) {
		wake_up_process(p->target);
		atomic_inc(&p->pokes);
		msleep(2);
	}
	return 0;
}

static struct poker pk;

static struct task_struct *poker_start(void)
{
	struct task_struct *k;

	pk.target = current;
	atomic_set(&pk.pokes, 0);
	k = kthread_run(poker_fn, &pk, "ktc-poker");
	WAIT_UNTIL(atomic_read(&pk.pokes) > 0);
	return k;
}

static void check_timeouts(void)
{
	long timeout = (long)msecs_to_jiffies(30);
	long full = (long)msecs_to_jiffies(10000);
	struct task_struct *p;
	unsigned long left_ms;
	long long t0, dt;
	long left;
	int p0;

	t0 = env_now_ms();
	left = schedule_timeout_idle(timeout);
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_idle_expires_and_returns_0", left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_idle_sleeps_its_timeout", dt, 15);

	t0 = env_now_ms();
	left = schedule_timeout_killable(timeout);
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_killable_expires_and_returns_0", left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_killable_sleeps_its_timeout", dt, 15);

	t0 = env_now_ms();
	left = schedule_timeout_interruptible(timeout);
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_interruptible_expires_and_returns_0", left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_interruptible_sleeps_its_timeout", dt, 15);

	t0 = env_now_ms();
	left = schedule_timeout_uninterruptible(timeout);
	dt = env_now_ms() - t0;
	CHECK("schedule_timeout_uninterruptible_expires_and_returns_0", left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_uninterruptible_sleeps_its_timeout",
			  dt, 15);

	/*
	 * wake_up_process() wakes TASK_NORMAL: each of these ends early, with
	 * time left (all of it when the wake came within the same jiffy).
	 */
	p = poker_start();
	t0 = env_now_ms();
	left = schedule_timeout_interruptible(full);
	CHECK("wake_up_process_ends_schedule_timeout_interruptible_early",
	      left > 0 && left <= full && env_now_ms() - t0 < 5000);
	t0 = env_now_ms();
	left = schedule_timeout_idle(full);
	CHECK("wake_up_process_ends_schedule_timeout_idle_early",
	      left > 0 && left <= full && env_now_ms() - t0 < 5000);
	t0 = env_now_ms();
	left = schedule_timeout_killable(full);
	CHECK("wake_up_process_ends_schedule_timeout_killable_early",
	      left > 0 && left <= full && env_now_ms() - t0 < 5000);
	t0 = env_now_ms();
	left = schedule_timeout_uninterruptible(full);
	CHECK("wake_up_process_ends_schedule_timeout_uninterruptible_early",
	      left > 0 && left <= full && env_now_ms() - t0 < 5000);

	/* ... but not msleep_interruptible() nor usleep_range(). */
	p0 = atomic_read(&pk.pokes);
	t0 = env_now_ms();
	left_ms = msleep_interruptible(60);
	dt = env_now_ms() - t0;
	CHECK("msleep_interruptible_returns_0_when_not_interrupted_by_a_signal",
	      left_ms == 0);
	CHECK("the_poker_woke_the_msleep_interruptible_sleeper",
	      atomic_read(&pk.pokes) > p0);
	CHECK_MS_AT_LEAST("a_wake_up_process_does_not_end_msleep_interruptible_early",
			  dt, 30);
	t0 = env_now_ms();
	usleep_range(40000, 50000);
	CHECK_MS_AT_LEAST("a_wake_up_process_does_not_end_usleep_range_early",
			  env_now_ms() - t0, 20);
	kthread_stop(p);

	t0 = env_now_ms();
	left_ms = msleep_interruptible(30);
	dt = env_now_ms() - t0;
	CHECK("msleep_interruptible_alone_returns_0", left_ms == 0);
	CHECK_MS_AT_LEAST("msleep_interruptible_sleeps_its_time", dt, 15);
	t0 = env_now_ms();
	usleep_range(20000, 25000);
	CHECK_MS_AT_LEAST("usleep_range_sleeps_at_least_min", env_now_ms() - t0, 10);
}

/* ---- jiffies ----------------------------------------------------------------- */

static void check_jiffies(void)
{
	unsigned long j0, j1, a, b, c, lo, hi, x;
	bool ok;

	j0 = jiffies;
	msleep(30);
	j1 = jiffies;
	CHECK("jiffies_advance", time_after(j1, j0));
	CHECK_MS_AT_LEAST("jiffies_advance_by_the_time_slept",
			  (long long)jiffies_to_msecs(j1 - j0), 15);

	a = 1000;
	b = 1001;
	CHECK("time_after_and_time_before_order_two_values",
	      time_after(b, a) && !time_after(a, b) && time_before(a, b) &&
		      !time_before(b, a) && !time_after(a, a) && !time_before(a, a));
	CHECK("time_after_eq_and_time_before_eq_include_equality",
	      time_after_eq(a, a) && time_before_eq(a, a) && time_after_eq(b, a) &&
		      !time_after_eq(a, b) && time_before_eq(a, b) &&
		      !time_before_eq(b, a));

	a = ULONG_MAX - 5;
	b = a + 10; /* wraps to 4 */
	CHECK("time_after_and_time_before_hold_across_a_wrap",
	      b == 4 && time_after(b, a) && !time_after(a, b) && time_before(a, b) &&
		      time_after_eq(b, a) && time_before_eq(a, b) &&
		      !time_before_eq(b, a));

	lo = 5;
	hi = 10;
	a = 5;
	b = 10;
	c = 11;
	x = 4;
	CHECK("time_in_range_includes_both_ends",
	      time_in_range(a, lo, hi) && time_in_range(b, lo, hi) &&
		      !time_in_range(c, lo, hi) && !time_in_range(x, lo, hi));

	lo = ULONG_MAX - 2;
	hi = 3;
	a = 1;
	b = ULONG_MAX;
	c = ULONG_MAX - 3;
	x = 4;
	ok = time_in_range(a, lo, hi) && time_in_range(b, lo, hi) &&
	     time_in_range(lo, lo, hi) && time_in_range(hi, lo, hi) &&
	     !time_in_range(c, lo, hi) && !time_in_range(x, lo, hi);
	CHECK("time_in_range_holds_across_a_wrap", ok);
}

static void check_conversions(void)
{
	static const unsigned int ms[] = { 1, 3, 7, 10, 333, 1001 };
	static const unsigned int us[] = { 1, 999, 1500, 20000, 123457 };
	unsigned int i;
	unsigned long j, r;
	bool ok = true;

	CHECK("msecs_to_jiffies_of_a_second_is_hz",
	      msecs_to_jiffies(1000) == HZ && msecs_to_jiffies(0) == 0);
	CHECK("msecs_to_jiffies_and_back_round_trips_whole_seconds",
	      jiffies_to_msecs(msecs_to_jiffies(1000)) == 1000 &&
		      jiffies_to_msecs(msecs_to_jiffies(5000)) == 5000 &&
		      jiffies_to_msecs(HZ) == 1000);
	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (msecs_to_jiffies(ms[i]) < 1 ||
		    jiffies_to_msecs(msecs_to_jiffies(ms[i])) < ms[i])
			ok = false;
	CHECK("msecs_to_jiffies_rounds_up", ok);
	ok = true;
	for (j = 1; j <= 3 * HZ; j += 7)
		if (msecs_to_jiffies(jiffies_to_msecs(j)) != j)
			ok = false;
	CHECK("jiffies_to_msecs_and_back_round_trips_jiffies", ok);

	CHECK("jiffies_to_usecs_of_hz_is_a_second", jiffies_to_usecs(HZ) == 1000000);
	CHECK("usecs_to_jiffies_of_a_second_is_hz",
	      usecs_to_jiffies(1000000) == HZ && usecs_to_jiffies(0) == 0 &&
		      usecs_to_jiffies(1) == 1);
	ok = true;
	for (i = 0; i < sizeof(us) / sizeof(us[0]); i++)
		if (jiffies_to_usecs(usecs_to_jiffies(us[i])) < us[i])
			ok = false;
	CHECK("usecs_to_jiffies_rounds_up", ok);

	/*
	 * round_jiffies_relative() rounds the absolute expiry to a whole
	 * second (skewed per CPU): down by less than HZ/4, or up by at most
	 * HZ; never into the past.
	 */
	j = 3 * HZ + HZ / 2 + 1;
	r = round_jiffies_relative(j);
	CHECK("round_jiffies_relative_stays_within_a_second_of_its_argument",
	      r > 0 && r + HZ / 4 >= j && r <= j + HZ);
	if (!(r > 0 && r + HZ / 4 >= j && r <= j + HZ))
		ktc_print("# note " KTC_PROG ": round_jiffies_relative(%lu) = %lu (HZ %d)",
			  j, r, (int)HZ);
}

/* ---- task fields ------------------------------------------------------------ */

struct tf_ctx {
	char comm[TASK_COMM_LEN];
	int pid;
	int nr;
	struct completion seen;
};

static int tf_fn(void *data)
{
	struct tf_ctx *c = data;

	snprintf(c->comm, sizeof(c->comm), "%s", current->comm);
	c->pid = current->pid;
	c->nr = task_pid_nr(current);
	complete(&c->seen);
	ktc_wait_for_stop();
	return 120;
}

static int gone_fn(void *data)
{
	complete((struct completion *)data);
	return 121;
}

static int resched_fn(void *data)
{
	int i;

	for (i = 0; i < 1000; i++)
		cond_resched();
	complete((struct completion *)data);
	ktc_wait_for_stop();
	return 122;
}

static struct tf_ctx tf1, tf2;
static struct completion gone_done, resched_done;

static void check_task_fields(void)
{
	struct kthread_worker *w;
	struct task_struct *k1, *k2, *g;
	char buf[TASK_COMM_LEN];
	int ok;

	init_completion(&tf1.seen);
	init_completion(&tf2.seen);
	k1 = kthread_run(tf_fn, &tf1, "ktc-comm-%d-abcdefghij", 7);
	k2 = kthread_run(tf_fn, &tf2, "ktc-short");
	ok = wait_for_completion_timeout(&tf1.seen, WAIT_LONG) > 0 &&
	     wait_for_completion_timeout(&tf2.seen, WAIT_LONG) > 0;
	CHECK("current_comm_is_the_kthread_run_name_cut_to_15_bytes",
	      ok && strcmp(tf1.comm, "ktc-comm-7-abcd") == 0 &&
		      strcmp(tf2.comm, "ktc-short") == 0);
	CHECK("current_pid_is_positive", ok && tf1.pid > 0 && tf2.pid > 0);
	CHECK("task_pid_nr_of_current_is_current_pid",
	      ok && tf1.nr == tf1.pid && tf2.nr == tf2.pid &&
		      task_pid_nr(current) == current->pid);
	CHECK("the_creator_reads_the_same_pid_from_the_task",
	      ok && k1->pid == tf1.pid && k2->pid == tf2.pid &&
		      task_pid_nr(k1) == tf1.pid);
	CHECK("each_task_has_its_own_pid",
	      ok && tf1.pid != tf2.pid && current->pid != tf1.pid &&
		      current->pid > 0);
	memset(buf, 0, sizeof(buf));
	get_task_comm(buf, k1);
	CHECK("get_task_comm_reads_the_name_of_another_task",
	      strcmp(buf, "ktc-comm-7-abcd") == 0);
	CHECK("kthread_stop_of_the_named_kthreads",
	      kthread_stop(k1) == 120 && kthread_stop(k2) == 120);

	w = kthread_create_worker(0, "ktc-wtask-%d", 5);
	CHECK("a_created_worker_has_its_task", !IS_ERR_OR_NULL(w) && w->task);
	if (!IS_ERR_OR_NULL(w)) {
		memset(buf, 0, sizeof(buf));
		if (w->task)
			get_task_comm(buf, w->task);
		CHECK("the_worker_task_is_named_by_the_worker",
		      strcmp(buf, "ktc-wtask-5") == 0);
		kthread_destroy_worker(w);
	}

	/* A task kept with get_task_struct() after its function returned. */
	init_completion(&gone_done);
	g = kthread_create(gone_fn, &gone_done, "ktc-gone-%d", 9);
	get_task_struct(g);
	wake_up_process(g);
	wait_for_completion_timeout(&gone_done, WAIT_LONG);
	env_wait_exiting(g);
	memset(buf, 0, sizeof(buf));
	get_task_comm(buf, g);
	CHECK("get_task_struct_keeps_the_comm_of_a_task_that_returned",
	      strcmp(buf, "ktc-gone-9") == 0);
	CHECK("kthread_stop_of_the_kept_task_gives_its_result",
	      kthread_stop(g) == 121);
	put_task_struct(g);

	init_completion(&resched_done);
	cond_resched();
	g = kthread_run(resched_fn, &resched_done, "ktc-resched");
	CHECK("cond_resched_in_a_loop_returns",
	      wait_for_completion_timeout(&resched_done, WAIT_LONG) > 0);
	kthread_stop(g);
}

/* ---- wait_for_completion_* ---------------------------------------------------- */

struct later {
	atomic_t completed;
	struct completion c;
};

static int complete_later_fn(void *data)
{
	struct later *l = data;

	msleep(10);
	atomic_set(&l->completed, 1);
	complete(&l->c);
	ktc_wait_for_stop();
	return 0;
}

static struct later lw;
static struct completion cn;

static struct task_struct *later_start(const char *name)
{
	atomic_set(&lw.completed, 0);
	init_completion(&lw.c);
	return kthread_run(complete_later_fn, &lw, "%s", name);
}

static void check_completions(void)
{
	struct task_struct *k;
	long long t0, dt;
	unsigned long ul;
	long l;
	int r;

	k = later_start("ktc-complete1");
	r = wait_for_completion_interruptible(&lw.c);
	CHECK("wait_for_completion_interruptible_returns_0_when_completed",
	      r == 0 && atomic_read(&lw.completed));
	kthread_stop(k);

	k = later_start("ktc-complete2");
	r = wait_for_completion_killable(&lw.c);
	CHECK("wait_for_completion_killable_returns_0_when_completed",
	      r == 0 && atomic_read(&lw.completed));
	kthread_stop(k);

	k = later_start("ktc-complete3");
	wait_for_completion_io(&lw.c);
	CHECK("wait_for_completion_io_returns_once_completed",
	      atomic_read(&lw.completed) && !completion_done(&lw.c));
	kthread_stop(k);

	init_completion(&cn);
	t0 = env_now_ms();
	l = wait_for_completion_interruptible_timeout(&cn, msecs_to_jiffies(30));
	dt = env_now_ms() - t0;
	CHECK("wait_for_completion_interruptible_timeout_returns_0_on_timeout", l == 0);
	CHECK_MS_AT_LEAST("wait_for_completion_interruptible_timeout_waits_its_timeout",
			  dt, 15);
	t0 = env_now_ms();
	l = wait_for_completion_killable_timeout(&cn, msecs_to_jiffies(30));
	dt = env_now_ms() - t0;
	CHECK("wait_for_completion_killable_timeout_returns_0_on_timeout", l == 0);
	CHECK_MS_AT_LEAST("wait_for_completion_killable_timeout_waits_its_timeout",
			  dt, 15);
	t0 = env_now_ms();
	ul = wait_for_completion_io_timeout(&cn, msecs_to_jiffies(30));
	dt = env_now_ms() - t0;
	CHECK("wait_for_completion_io_timeout_returns_0_on_timeout", ul == 0);
	CHECK_MS_AT_LEAST("wait_for_completion_io_timeout_waits_its_timeout", dt, 15);

	complete(&cn);
	CHECK("wait_for_completion_interruptible_timeout_of_a_done_completion_returns_the_timeout",
	      wait_for_completion_interruptible_timeout(&cn, 17) == 17);
	complete(&cn);
	CHECK("wait_for_completion_killable_timeout_of_a_done_completion_returns_the_timeout",
	      wait_for_completion_killable_timeout(&cn, 17) == 17);
	complete(&cn);
	CHECK("wait_for_completion_io_timeout_of_a_done_completion_returns_the_timeout",
	      wait_for_completion_io_timeout(&cn, 17) == 17);
	CHECK("each_of_those_took_one_completion", !completion_done(&cn));

	k = later_start("ktc-complete4");
	l = wait_for_completion_interruptible_timeout(&lw.c, WAIT_LONG);
	CHECK("wait_for_completion_interruptible_timeout_returns_the_jiffies_left_when_completed",
	      atomic_read(&lw.completed) && l > 0 && l <= (long)WAIT_LONG);
	kthread_stop(k);
	k = later_start("ktc-complete5");
	l = wait_for_completion_killable_timeout(&lw.c, WAIT_LONG);
	CHECK("wait_for_completion_killable_timeout_returns_the_jiffies_left_when_completed",
	      atomic_read(&lw.completed) && l > 0 && l <= (long)WAIT_LONG);
	kthread_stop(k);
	k = later_start("ktc-complete6");
	ul = wait_for_completion_io_timeout(&lw.c, WAIT_LONG);
	CHECK("wait_for_completion_io_timeout_returns_the_jiffies_left_when_completed",
	      atomic_read(&lw.completed) && ul > 0 && ul <= WAIT_LONG);
	kthread_stop(k);
}

/* ---- kthread_run_on_cpu, kthread_complete_and_exit, kthread_exit ------------- */

struct oncpu_ctx {
	int cpu;
	int allowed;
	char comm[TASK_COMM_LEN];
	struct completion seen;
};

static int oncpu_fn(void *data)
{
	struct oncpu_ctx *c = data;

	c->cpu = env_cpu();
	c->allowed = env_allowed_cpus();
	snprintf(c->comm, sizeof(c->comm), "%s", current->comm);
	complete(&c->seen);
	ktc_wait_for_stop();
	return 130;
}

struct exit_ctx {
	struct completion done;
	struct completion reached;
	atomic_t after_inner;
	atomic_t after;
};

static void exit_deep(struct exit_ctx *c, bool with_completion)
{
	if (with_completion)
		kthread_complete_and_exit(&c->done, 42);
	complete(&c->reached);
	kthread_exit(43);
}

static void exit_middle(struct exit_ctx *c, bool with_completion)
{
	exit_deep(c, with_completion);
	atomic_set(&c->after_inner, 1);
}

static int cae_fn(void *data)
{
	struct exit_ctx *c = data;

	exit_middle(c, true);
	atomic_set(&c->after, 1);
	return 1;
}

static int exit_fn(void *data)
{
	struct exit_ctx *c = data;

	exit_middle(c, false);
	atomic_set(&c->after, 1);
	return 2;
}

static struct oncpu_ctx oc;
static struct exit_ctx ec1, ec2;

static void check_cpu_and_exit(void)
{
	struct task_struct *k;
	char want[TASK_COMM_LEN];
	int cpu = env_last_cpu(), got;

	init_completion(&oc.seen);
	k = kthread_run_on_cpu(oncpu_fn, &oc, cpu, "ktc-oncpu/%u");
	got = !IS_ERR_OR_NULL(k) &&
	      wait_for_completion_timeout(&oc.seen, WAIT_LONG) > 0;
	CHECK("kthread_run_on_cpu_runs_the_kthread", got);
	CHECK("kthread_run_on_cpu_binds_it_to_that_cpu",
	      got && oc.cpu == cpu && oc.allowed == 1);
	snprintf(want, sizeof(want), "ktc-oncpu/%u", cpu);
	CHECK("kthread_run_on_cpu_names_it_with_the_cpu",
	      got && strcmp(oc.comm, want) == 0);
	CHECK("kthread_stop_of_the_cpu_bound_kthread",
	      got && kthread_stop(k) == 130);

	init_completion(&ec1.done);
	init_completion(&ec1.reached);
	k = kthread_create(cae_fn, &ec1, "ktc-cae");
	get_task_struct(k);
	wake_up_process(k);
	CHECK("kthread_complete_and_exit_completes_the_completion",
	      wait_for_completion_timeout(&ec1.done, WAIT_LONG) > 0);
	CHECK("kthread_stop_returns_the_kthread_complete_and_exit_code",
	      kthread_stop(k) == 42);
	CHECK("code_after_kthread_complete_and_exit_never_runs",
	      !atomic_read(&ec1.after_inner) && !atomic_read(&ec1.after));
	put_task_struct(k);

	init_completion(&ec2.done);
	init_completion(&ec2.reached);
	k = kthread_create(exit_fn, &ec2, "ktc-exit");
	get_task_struct(k);
	wake_up_process(k);
	wait_for_completion_timeout(&ec2.reached, WAIT_LONG);
	CHECK("kthread_stop_returns_the_kthread_exit_code", kthread_stop(k) == 43);
	CHECK("code_after_kthread_exit_never_runs",
	      !atomic_read(&ec2.after_inner) && !atomic_read(&ec2.after));
	put_task_struct(k);
}

/* ---- freezable sleeps during a freeze --------------------------------------- */

/*
 * As in kt_freeze.c: a freezable "ticker" shows when the freeze has frozen
 * the kthreads (its rounds stop for STALL_MS), a freezable "latecomer"
 * holds the freeze open until released, and an observer that is not
 * freezable watches during the freeze.
 */
#define STALL_MS 250
#define POLLS 25

/* Sleeps in schedule() with TASK_INTERRUPTIBLE | TASK_FREEZABLE. */
struct fzs {
	atomic_t armed;
	atomic_t returns;
};

static int fzs_fn(void *data)
{
	struct fzs *f = data;

	set_freezable();
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE | TASK_FREEZABLE);
		atomic_inc(&f->armed);
		if (kthread_should_stop())
			break;
		schedule();
		atomic_inc(&f->returns);
	}
	__set_current_state(TASK_RUNNING);
	return 140;
}

/* Sleeps in plain TASK_INTERRUPTIBLE; try_to_freeze() after each wake. */
struct pis {
	bool freezing_at_start;
	atomic_t armed;
	atomic_t returns;
	atomic_t saw_freezing;
	atomic_t froze;
};

static int pis_fn(void *data)
{
	struct pis *p = data;

	set_freezable();
	p->freezing_at_start = freezing(current);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		atomic_inc(&p->armed);
		if (kthread_should_stop())
			break;
		schedule();
		__set_current_state(TASK_RUNNING);
		atomic_inc(&p->returns);
		if (freezing(current))
			atomic_inc(&p->saw_freezing);
		if (try_to_freeze())
			atomic_inc(&p->froze);
	}
	__set_current_state(TASK_RUNNING);
	return 141;
}

struct ticker {
	atomic_t rounds;
};

static int ticker_fn(void *data)
{
	struct ticker *t = data;

	set_freezable();
	while (!kthread_should_stop()) {
		msleep(2);
		try_to_freeze();
		atomic_inc(&t->rounds);
	}
	return 142;
}

struct latecomer {
	atomic_t release;
	atomic_t froze;
};

static int latecomer_fn(void *data)
{
	struct latecomer *l = data;

	set_freezable();
	while (!kthread_should_stop()) {
		msleep(2); /* uninterruptible: not a freeze point */
		if (atomic_read(&l->release) && try_to_freeze())
			atomic_inc(&l->froze);
	}
	return 143;
}

static struct fzs fz;
static struct pis pi;
static struct ticker tick;
static struct latecomer late;

struct tobs {
	struct task_struct *fz_task;
	atomic_t armed;
	int seen;
	int polls;
	bool freezing_self;
	int wake_ret;
	int fz_returns_at_seen, fz_returns_at_release;
	int pi_returns_at_seen, pi_returns_at_release;
	int pi_froze_at_release, pi_saw_freezing_at_release;
};

static struct tobs obs;

static int tobs_fn(void *data)
{
	struct tobs *o = data;
	long long last_t = env_now_ms(), now;
	int last = -1, r;

	while (!kthread_should_stop()) {
		msleep(2);
		r = atomic_read(&tick.rounds);
		now = env_now_ms();
		if (r != last || !atomic_read(&o->armed)) {
			last = r;
			last_t = now;
			continue;
		}
		if (now - last_t < STALL_MS || atomic_read(&late.release))
			continue;
		if (!o->seen) {
			o->freezing_self = freezing(current);
			o->fz_returns_at_seen = atomic_read(&fz.returns);
			o->pi_returns_at_seen = atomic_read(&pi.returns);
			o->wake_ret = wake_up_process(o->fz_task);
			o->seen = 1;
			continue;
		}
		if (++o->polls >= POLLS) {
			o->fz_returns_at_release = atomic_read(&fz.returns);
			o->pi_returns_at_release = atomic_read(&pi.returns);
			o->pi_froze_at_release = atomic_read(&pi.froze);
			o->pi_saw_freezing_at_release = atomic_read(&pi.saw_freezing);
			atomic_set(&late.release, 1);
		}
	}
	return 0;
}

static void check_freeze(void)
{
	struct task_struct *kfz, *kpi, *kt, *kl, *ko;
	int ret, r;

	kfz = kthread_run(fzs_fn, &fz, "ktc-fzsleep");
	kpi = kthread_run(pis_fn, &pi, "ktc-pisleep");
	WAIT_UNTIL(atomic_read(&fz.armed) == 1 && atomic_read(&pi.armed) == 1);
	msleep(30);
	CHECK("an_interruptible_freezable_sleep_does_not_return_at_once",
	      atomic_read(&fz.armed) == 1 && atomic_read(&fz.returns) == 0);
	CHECK("freezing_current_is_false_outside_a_freeze",
	      !pi.freezing_at_start && !freezing(current));
	r = wake_up_process(kfz);
	CHECK("wake_up_process_ends_an_interruptible_freezable_sleep",
	      r == 1 && WAIT_UNTIL(atomic_read(&fz.returns) == 1 &&
				   atomic_read(&fz.armed) == 2));

	obs.fz_task = kfz;
	kt = kthread_run(ticker_fn, &tick, "ktc-ticker");
	kl = kthread_run(latecomer_fn, &late, "ktc-latecomer");
	ko = kthread_run(tobs_fn, &obs, "ktc-tobserver");
	WAIT_UNTIL(atomic_read(&tick.rounds) > 2);
	atomic_set(&obs.armed, 1);
	ret = env_freeze_cycle();
	CHECK("a_freeze_cycle_succeeds", ret == 0);
	if (ret)
		ktc_print("# note " KTC_PROG ": freeze %d; observer seen %d, polls %d",
			  ret, READ_ONCE(obs.seen), READ_ONCE(obs.polls));
	CHECK("a_frozen_freezable_sleep_returns_after_the_thaw",
	      WAIT_UNTIL(atomic_read(&fz.returns) == 2 && atomic_read(&fz.armed) == 3));
	CHECK("the_woken_plain_sleeper_returns_from_try_to_freeze_after_the_thaw",
	      WAIT_UNTIL(atomic_read(&pi.froze) == 1 && atomic_read(&pi.armed) == 2));
	atomic_set(&obs.armed, 0);
	kthread_stop(ko);

	/* Its try_to_freeze() returns, and counts, only once it runs after the thaw. */
	CHECK("the_freeze_waited_for_the_latecomer",
	      WAIT_UNTIL(atomic_read(&late.froze) >= 1) &&
		      atomic_read(&late.froze) == 1 && obs.polls >= POLLS);
	CHECK("an_interruptible_freezable_sleep_freezes_in_place",
	      obs.seen && obs.fz_returns_at_seen == 1 &&
		      obs.fz_returns_at_release == 1);
	CHECK("wake_up_process_of_a_frozen_sleeper_returns_0", obs.seen && obs.wake_ret == 0);
	CHECK("a_freeze_wakes_a_plain_interruptible_sleep_of_a_freezable_kthread",
	      obs.seen && obs.pi_returns_at_seen == 1 && obs.pi_returns_at_release == 1);
	CHECK("the_woken_kthread_freezes_at_its_next_try_to_freeze",
	      obs.seen && obs.pi_froze_at_release == 0 && atomic_read(&pi.froze) == 1);
	CHECK("freezing_current_is_true_in_a_freezable_kthread_during_a_freeze",
	      obs.seen && obs.pi_saw_freezing_at_release == 1);
	CHECK("freezing_current_is_false_in_a_kthread_that_is_not_freezable",
	      obs.seen && !obs.freezing_self);
	CHECK("after_the_thaw_the_sleepers_sleep_again",
	      atomic_read(&fz.returns) == 2 && atomic_read(&pi.returns) == 1);
	CHECK("kthread_stop_of_the_thawed_sleepers",
	      kthread_stop(kfz) == 140 && kthread_stop(kpi) == 141 &&
		      kthread_stop(kt) == 142 && kthread_stop(kl) == 143);
}

void run_checks(void)
{
	check_state_bits();
	check_sleep_states();
	check_timeouts();
	check_jiffies();
	check_conversions();
	check_task_fields();
	check_completions();
	check_cpu_and_exit();
	check_freeze();
}
