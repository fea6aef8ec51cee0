// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_wait.c - wait queues as Linux 6.1 has them: wait_queue_head_t, the
 * wait_event*() family, the open-coded DEFINE_WAIT / prepare_to_wait /
 * finish_wait loop, DECLARE_WAITQUEUE with add_wait_queue /
 * remove_wait_queue, wake_up / wake_up_interruptible / wake_up_all,
 * exclusive waiters, wq_has_sleeper / waitqueue_active, and the freezable
 * waits during a freeze.
 *
 * Facts of the kernel these checks rest on:
 *  - wait_event*() check the condition first and do not sleep if it holds;
 *    they re-check it after every wake and return only once it holds (or
 *    the timeout expired);
 *  - wait_event_timeout() returns the timeout unchanged when the condition
 *    held at once, 1 when it held with no time left, 0 on timeout;
 *  - non-exclusive entries go to the head of the queue, exclusive ones
 *    (prepare_to_wait_exclusive, wait_event_*_exclusive) to the tail;
 *    wake_up() and wake_up_interruptible() wake every non-exclusive waiter
 *    and one exclusive waiter, wake_up_all() every waiter;
 *  - a DEFINE_WAIT entry (autoremove_wake_function) is removed from the
 *    queue by the wake that wakes its task, so a woken exclusive waiter
 *    queues again at the tail: exclusive waiters are woken in FIFO order;
 *    a DECLARE_WAITQUEUE entry (default_wake_function) stays queued;
 *  - wake_up_interruptible() wakes only TASK_INTERRUPTIBLE sleepers; a
 *    wait_event() waiter sleeps in TASK_UNINTERRUPTIBLE and stays queued;
 *  - a task frozen in wait_event_freezable() (TASK_FROZEN) is not woken by
 *    wake_up(): it stays queued and acts on the condition after the thaw.
 */
#define KTC_PROG "wait"
#include "env.h"

/* ---- the condition true at once, timeouts (no other thread) ------------- */

static DECLARE_WAIT_QUEUE_HEAD(static_wq);
static wait_queue_head_t lone_wq;

static void check_no_sleep(void)
{
	long long t0, dt;
	unsigned long start;
	long left;
	int ret;

	CHECK("declare_wait_queue_head_starts_empty",
	      !waitqueue_active(&static_wq) && !wq_has_sleeper(&static_wq));
	init_waitqueue_head(&lone_wq);
	CHECK("init_waitqueue_head_starts_empty",
	      !waitqueue_active(&lone_wq) && !wq_has_sleeper(&lone_wq));

	t0 = env_now_ms();
	wait_event(lone_wq, 1);
	CHECK_MS_BELOW("wait_event_with_a_true_condition_returns_at_once",
		       env_now_ms() - t0, 2000);
	ret = wait_event_interruptible(lone_wq, 1);
	CHECK("wait_event_interruptible_with_a_true_condition_returns_0", ret == 0);
	CHECK("wait_event_freezable_with_a_true_condition_returns_0",
	      wait_event_freezable(lone_wq, 1) == 0);
	CHECK("wait_event_timeout_with_a_true_condition_returns_the_timeout",
	      wait_event_timeout(lone_wq, 1, 7) == 7);
	CHECK("wait_event_interruptible_timeout_with_a_true_condition_returns_the_timeout",
	      wait_event_interruptible_timeout(lone_wq, 1, 9) == 9);
	CHECK("wait_event_freezable_timeout_with_a_true_condition_returns_the_timeout",
	      wait_event_freezable_timeout(lone_wq, 1, 11) == 11);
	CHECK("wait_event_timeout_with_a_true_condition_and_no_time_returns_1",
	      wait_event_timeout(lone_wq, 1, 0) == 1);
	t0 = env_now_ms();
	left = wait_event_timeout(lone_wq, 0, 0);
	CHECK("wait_event_timeout_with_a_false_condition_and_no_time_returns_0",
	      left == 0 && env_now_ms() - t0 < 2000);

	t0 = env_now_ms();
	left = wait_event_timeout(lone_wq, 0, msecs_to_jiffies(40));
	dt = env_now_ms() - t0;
	CHECK("wait_event_timeout_returns_0_on_timeout", left == 0);
	CHECK_MS_AT_LEAST("wait_event_timeout_waits_its_timeout", dt, 20);
	CHECK("wait_event_timeout_leaves_the_queue_empty",
	      !waitqueue_active(&lone_wq));

	t0 = env_now_ms();
	left = wait_event_interruptible_timeout(lone_wq, 0, msecs_to_jiffies(40));
	dt = env_now_ms() - t0;
	CHECK("wait_event_interruptible_timeout_returns_0_on_timeout", left == 0);
	CHECK_MS_AT_LEAST("wait_event_interruptible_timeout_waits_its_timeout",
			  dt, 20);

	t0 = env_now_ms();
	left = wait_event_freezable_timeout(lone_wq, 0, msecs_to_jiffies(40));
	dt = env_now_ms() - t0;
	CHECK("wait_event_freezable_timeout_returns_0_on_timeout", left == 0);
	CHECK_MS_AT_LEAST("wait_event_freezable_timeout_waits_its_timeout", dt, 20);

	/*
	 * The condition turns true as the timeout expires (nobody wakes the
	 * waiter: the timer does, once jiffies reached start + 40 ms' worth):
	 * the re-check after the expiry finds it true, with no time left: 1.
	 */
	start = jiffies;
	left = wait_event_timeout(lone_wq,
				  time_after_eq(jiffies, start + msecs_to_jiffies(40)),
				  msecs_to_jiffies(40));
	CHECK("wait_event_timeout_of_a_condition_true_at_expiry_returns_1",
	      left == 1);
}

/* ---- the open-coded forms, on the caller's own task ---------------------- */

static wait_queue_head_t self_wq;

static void check_open_coded_self(void)
{
	DEFINE_WAIT(w);
	DECLARE_WAITQUEUE(dw, current);
	bool queued, has_sleeper, after_wake, after_finish, after_second;
	long long t0, dt;

	init_waitqueue_head(&self_wq);

	/* DEFINE_WAIT: the wake removes the entry (autoremove). */
	prepare_to_wait(&self_wq, &w, TASK_UNINTERRUPTIBLE);
	queued = waitqueue_active(&self_wq);
	has_sleeper = wq_has_sleeper(&self_wq);
	wake_up(&self_wq);
	after_wake = waitqueue_active(&self_wq);
	t0 = env_now_ms();
	schedule();
	dt = env_now_ms() - t0;
	finish_wait(&self_wq, &w);
	after_finish = waitqueue_active(&self_wq);
	CHECK("prepare_to_wait_queues_the_entry", queued && has_sleeper);
	CHECK("a_woken_define_wait_entry_is_removed_by_the_wake", !after_wake);
	CHECK_MS_BELOW("a_wake_between_prepare_to_wait_and_schedule_is_not_lost",
		       dt, 2000);
	CHECK("finish_wait_leaves_the_queue_empty", !after_finish);

	/* finish_wait of an entry that was not woken; prepare twice. */
	prepare_to_wait(&self_wq, &w, TASK_INTERRUPTIBLE);
	prepare_to_wait(&self_wq, &w, TASK_INTERRUPTIBLE);
	queued = waitqueue_active(&self_wq);
	finish_wait(&self_wq, &w);
	after_finish = waitqueue_active(&self_wq);
	CHECK("finish_wait_removes_an_entry_that_was_not_woken",
	      queued && !after_finish);
	CHECK("prepare_to_wait_twice_queues_the_entry_once", !after_finish);

	prepare_to_wait_exclusive(&self_wq, &w, TASK_INTERRUPTIBLE);
	queued = waitqueue_active(&self_wq);
	wake_up(&self_wq);
	after_wake = waitqueue_active(&self_wq);
	schedule();
	finish_wait(&self_wq, &w);
	CHECK("a_woken_exclusive_define_wait_entry_is_removed_by_the_wake",
	      queued && !after_wake && !waitqueue_active(&self_wq));

	/* DECLARE_WAITQUEUE: default_wake_function leaves the entry queued. */
	add_wait_queue(&self_wq, &dw);
	queued = waitqueue_active(&self_wq) && wq_has_sleeper(&self_wq);
	set_current_state(TASK_INTERRUPTIBLE);
	wake_up(&self_wq);
	after_wake = waitqueue_active(&self_wq);
	t0 = env_now_ms();
	schedule();
	dt = env_now_ms() - t0;
	set_current_state(TASK_UNINTERRUPTIBLE);
	wake_up(&self_wq);
	after_second = waitqueue_active(&self_wq);
	schedule();
	__set_current_state(TASK_RUNNING);
	remove_wait_queue(&self_wq, &dw);
	after_finish = waitqueue_active(&self_wq);
	CHECK("add_wait_queue_queues_the_entry", queued);
	CHECK("a_declare_waitqueue_entry_stays_queued_after_a_wake",
	      after_wake && after_second);
	CHECK_MS_BELOW("a_wake_through_a_declare_waitqueue_entry_is_not_lost",
		       dt, 2000);
	CHECK("remove_wait_queue_empties_the_queue", !after_finish);
}

/* ---- a DECLARE_WAITQUEUE waiter in another kthread ----------------------- */

struct dq_ctx {
	wait_queue_head_t wq;
	atomic_t armed;  /* rounds for which the state is set */
	atomic_t wakes;  /* returns from schedule() */
	atomic_t go;
};

static int dq_fn(void *data)
{
	struct dq_ctx *c = data;
	DECLARE_WAITQUEUE(wait, current);

	add_wait_queue(&c->wq, &wait);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		atomic_inc(&c->armed);
		if (atomic_read(&c->go) || kthread_should_stop())
			break;
		schedule();
		atomic_inc(&c->wakes);
	}
	__set_current_state(TASK_RUNNING);
	remove_wait_queue(&c->wq, &wait);
	ktc_wait_for_stop();
	return 11;
}

static struct dq_ctx dq;

static void check_declare_waitqueue_thread(void)
{
	struct task_struct *k;
	int twice;

	init_waitqueue_head(&dq.wq);
	k = kthread_run(dq_fn, &dq, "ktc-dq");
	WAIT_UNTIL(atomic_read(&dq.armed) == 1);
	wake_up(&dq.wq);
	twice = WAIT_UNTIL(atomic_read(&dq.wakes) == 1 &&
			   atomic_read(&dq.armed) == 2);
	/* The entry was never queued again: the second wake finds it. */
	wake_up(&dq.wq);
	twice = twice && WAIT_UNTIL(atomic_read(&dq.wakes) == 2 &&
				    atomic_read(&dq.armed) == 3);
	CHECK("a_declare_waitqueue_waiter_is_woken_twice_without_queueing_again",
	      twice && waitqueue_active(&dq.wq));
	atomic_set(&dq.go, 1);
	wake_up(&dq.wq);
	CHECK("remove_wait_queue_in_the_waiter_empties_the_queue",
	      WAIT_UNTIL(!waitqueue_active(&dq.wq)));
	CHECK("kthread_stop_of_the_declare_waitqueue_waiter", kthread_stop(k) == 11);
}

/* ---- wait_event re-checks after each wake --------------------------------- */

struct re_ctx {
	wait_queue_head_t wq;
	atomic_t cond;
	atomic_t seen_one; /* evaluations that saw cond == 1 */
	atomic_t done;
};

static bool re_cond(struct re_ctx *c)
{
	int v = atomic_read(&c->cond);

	if (v == 1)
		atomic_inc(&c->seen_one);
	return v >= 2;
}

static int re_fn(void *data)
{
	struct re_ctx *c = data;

	wait_event(c->wq, re_cond(c));
	atomic_set(&c->done, 1);
	ktc_wait_for_stop();
	return 12;
}

static struct re_ctx re;

static void check_recheck(void)
{
	struct task_struct *k;
	bool sleeper, active;

	init_waitqueue_head(&re.wq);
	k = kthread_run(re_fn, &re, "ktc-recheck");
	WAIT_UNTIL(wq_has_sleeper(&re.wq));
	sleeper = wq_has_sleeper(&re.wq);
	active = waitqueue_active(&re.wq);
	CHECK("wq_has_sleeper_while_a_wait_event_waiter_waits", sleeper);
	CHECK("waitqueue_active_while_a_wait_event_waiter_waits", active);
	atomic_set(&re.cond, 1);
	wake_up(&re.wq);
	CHECK("wait_event_rechecks_its_condition_after_a_wake",
	      WAIT_UNTIL(atomic_read(&re.seen_one) > 0));
	CHECK("a_wake_with_the_condition_false_does_not_end_wait_event",
	      WAIT_UNTIL(wq_has_sleeper(&re.wq)) && !atomic_read(&re.done));
	atomic_set(&re.cond, 2);
	wake_up(&re.wq);
	CHECK("wait_event_returns_once_the_condition_holds",
	      WAIT_UNTIL(atomic_read(&re.done)));
	CHECK("wq_has_sleeper_is_false_after_the_waiter_returned",
	      !wq_has_sleeper(&re.wq) && !waitqueue_active(&re.wq));
	CHECK("kthread_stop_of_the_returned_waiter", kthread_stop(k) == 12);
}

/* ---- no lost wake between two threads; the jiffies left ------------------ */

#define PING_ROUNDS 200

struct ping_ctx {
	wait_queue_head_t wq;
	wait_queue_head_t ackq;
	atomic_t seq;
	atomic_t ack;
};

static int ping_fn(void *data)
{
	struct ping_ctx *c = data;
	int i;

	for (i = 0; i < PING_ROUNDS; i++) {
		wait_event(c->wq, atomic_read(&c->seq) > i || kthread_should_stop());
		if (kthread_should_stop())
			break;
		atomic_set(&c->ack, i + 1);
		wake_up(&c->ackq);
	}
	ktc_wait_for_stop();
	return 13;
}

struct later_ctx {
	wait_queue_head_t *wq;
	atomic_t *flag;
};

/* Once someone sleeps on the queue: set the flag, wake them. */
static int later_fn(void *data)
{
	struct later_ctx *c = data;

	WAIT_UNTIL(wq_has_sleeper(c->wq));
	atomic_set(c->flag, 1);
	wake_up(c->wq);
	ktc_wait_for_stop();
	return 0;
}

static struct ping_ctx ping;
static wait_queue_head_t later_wq;
static atomic_t later_flag;
static struct later_ctx later;

static void check_no_lost_wake(void)
{
	struct task_struct *k;
	long full = (long)msecs_to_jiffies(10000);
	long left;
	int i, all = 1;

	init_waitqueue_head(&ping.wq);
	init_waitqueue_head(&ping.ackq);
	k = kthread_run(ping_fn, &ping, "ktc-ping");
	for (i = 0; i < PING_ROUNDS && all; i++) {
		atomic_set(&ping.seq, i + 1);
		wake_up(&ping.wq);
		if (!wait_event_timeout(ping.ackq, atomic_read(&ping.ack) > i,
					WAIT_LONG))
			all = 0;
	}
	CHECK("no_wake_is_lost_in_200_rounds_between_two_threads", all);
	CHECK("kthread_stop_of_the_ping_thread", kthread_stop(k) == 13);

	init_waitqueue_head(&later_wq);
	later.wq = &later_wq;
	later.flag = &later_flag;
	k = kthread_run(later_fn, &later, "ktc-later");
	left = wait_event_timeout(later_wq, atomic_read(&later_flag), full);
	CHECK("wait_event_timeout_returns_the_jiffies_left_when_woken",
	      atomic_read(&later_flag) && left > 0 && left <= full);
	kthread_stop(k);

	atomic_set(&later_flag, 0);
	k = kthread_run(later_fn, &later, "ktc-later2");
	left = wait_event_interruptible_timeout(later_wq, atomic_read(&later_flag),
						full);
	CHECK("wait_event_interruptible_timeout_returns_the_jiffies_left_when_woken",
	      atomic_read(&later_flag) && left > 0 && left <= full);
	kthread_stop(k);
}

/* ---- exclusive waiters ------------------------------------------------------ */

#define NX 5 /* 0, 1: non-exclusive; 2, 3, 4: exclusive */

struct xw {
	int id;
	bool exclusive;
	atomic_t queued;
	atomic_t wakes;
};

static wait_queue_head_t xq;
static struct xw xws[NX];
static atomic_t x_total, x_ex;
static int x_order[64];

static int xw_fn(void *data)
{
	struct xw *x = data;
	DEFINE_WAIT(w);
	int n;

	for (;;) {
		if (x->exclusive)
			prepare_to_wait_exclusive(&xq, &w, TASK_INTERRUPTIBLE);
		else
			prepare_to_wait(&xq, &w, TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		atomic_set(&x->queued, 1);
		schedule();
		atomic_set(&x->queued, 0);
		if (kthread_should_stop())
			break;
		atomic_inc(&x->wakes);
		if (x->exclusive) {
			n = atomic_inc_return(&x_ex) - 1;
			if (n < 64)
				x_order[n] = x->id;
		}
		atomic_inc(&x_total);
	}
	finish_wait(&xq, &w);
	return 50 + x->id;
}

static bool all_queued(void)
{
	int i;

	for (i = 0; i < NX; i++)
		if (!atomic_read(&xws[i].queued))
			return false;
	return true;
}

/* Wait until `total` wakes were counted and every waiter queued again. */
static bool x_settle(int total)
{
	bool ok = WAIT_UNTIL(atomic_read(&x_total) == total && all_queued());

	msleep(20); /* a wrong extra wake would show here */
	return ok && atomic_read(&x_total) == total && all_queued();
}

struct xm_ctx {
	int id;
	atomic_t evals;
	int ret;
	atomic_t done;
};

static wait_queue_head_t xq2;
static atomic_t x2_release, x2_returned;
static struct xm_ctx xms[2];
static int x2_first = -1;

static bool xm_cond(struct xm_ctx *c)
{
	atomic_inc(&c->evals);
	return atomic_read(&x2_release) || kthread_should_stop();
}

static int xm_fn(void *data)
{
	struct xm_ctx *c = data;

	c->ret = wait_event_interruptible_exclusive(xq2, xm_cond(c));
	if (atomic_inc_return(&x2_returned) == 1)
		x2_first = c->id;
	atomic_set(&c->done, 1);
	ktc_wait_for_stop();
	return 60 + c->id;
}

static void check_exclusive(void)
{
	struct task_struct *k[NX], *m[2];
	bool settled = true, nonex_each = true, one_ex_each = true;
	bool fifo, all_ok, intr_ok, stopped = true;
	int i, round, before;

	init_waitqueue_head(&xq);
	for (i = 0; i < NX; i++) {
		xws[i].id = i;
		xws[i].exclusive = i >= 2;
		k[i] = kthread_run(xw_fn, &xws[i], "ktc-xw/%d", i);
		/* Queued one after the other: the exclusive FIFO order is 2, 3, 4. */
		WAIT_UNTIL(atomic_read(&xws[i].queued));
	}
	CHECK("five_waiters_are_queued", all_queued() && wq_has_sleeper(&xq));

	for (round = 1; round <= 3; round++) {
		before = atomic_read(&x_ex);
		wake_up(&xq);
		settled = x_settle(3 * round) && settled;
		if (atomic_read(&xws[0].wakes) != round ||
		    atomic_read(&xws[1].wakes) != round)
			nonex_each = false;
		if (atomic_read(&x_ex) != before + 1)
			one_ex_each = false;
	}
	CHECK("wake_up_wakes_every_non_exclusive_waiter", settled && nonex_each);
	CHECK("wake_up_wakes_exactly_one_exclusive_waiter", settled && one_ex_each);
	fifo = atomic_read(&x_ex) == 3 && x_order[0] == 2 && x_order[1] == 3 &&
	       x_order[2] == 4;
	CHECK("wake_up_wakes_the_exclusive_waiters_in_fifo_order", fifo);
	if (!fifo)
		ktc_print("# note " KTC_PROG ": exclusive wake order %d %d %d (%d wakes)",
			  x_order[0], x_order[1], x_order[2], atomic_read(&x_ex));

	wake_up_all(&xq);
	all_ok = x_settle(9 + NX);
	for (i = 2; i < NX; i++)
		if (atomic_read(&xws[i].wakes) != 2)
			all_ok = false;
	CHECK("wake_up_all_wakes_every_exclusive_waiter",
	      all_ok && atomic_read(&x_ex) == 6);

	wake_up_interruptible(&xq);
	intr_ok = x_settle(9 + NX + 3) && atomic_read(&x_ex) == 7 &&
		  atomic_read(&xws[0].wakes) == 5 && atomic_read(&xws[1].wakes) == 5;
	CHECK("wake_up_interruptible_wakes_every_non_exclusive_and_one_exclusive_waiter",
	      intr_ok);

	for (i = 0; i < NX; i++)
		if (kthread_stop(k[i]) != 50 + i)
			stopped = false;
	CHECK("kthread_stop_of_the_open_coded_waiters", stopped);
	CHECK("finish_wait_of_every_waiter_empties_the_queue",
	      !waitqueue_active(&xq));

	/* wait_event_interruptible_exclusive: one waiter per wake_up, FIFO. */
	init_waitqueue_head(&xq2);
	xms[0].id = 0;
	xms[1].id = 1;
	m[0] = kthread_run(xm_fn, &xms[0], "ktc-xm/0");
	WAIT_UNTIL(wq_has_sleeper(&xq2));
	m[1] = kthread_run(xm_fn, &xms[1], "ktc-xm/1");
	/* The second evaluation comes after prepare_to_wait_event(): queued. */
	WAIT_UNTIL(atomic_read(&xms[1].evals) >= 2);
	atomic_set(&x2_release, 1);
	wake_up(&xq2);
	WAIT_UNTIL(atomic_read(&x2_returned) > 0);
	msleep(20);
	CHECK("wait_event_interruptible_exclusive_wakes_one_waiter_per_wake_up",
	      atomic_read(&x2_returned) == 1 && wq_has_sleeper(&xq2));
	CHECK("wait_event_interruptible_exclusive_wakes_the_first_queued_first",
	      x2_first == 0);
	wake_up(&xq2);
	CHECK("a_second_wake_up_wakes_the_next_exclusive_waiter",
	      WAIT_UNTIL(atomic_read(&x2_returned) == 2));
	CHECK("wait_event_interruptible_exclusive_returns_0",
	      xms[0].ret == 0 && xms[1].ret == 0 && !waitqueue_active(&xq2));
	CHECK("kthread_stop_of_the_exclusive_waiters",
	      kthread_stop(m[0]) == 60 && kthread_stop(m[1]) == 61);
}

/* ---- wake_up_interruptible and the uninterruptible wait_event ------------- */

struct iu_ctx {
	bool interruptible;
	int ret;
	atomic_t evals;
	atomic_t done;
};

static wait_queue_head_t iuq;
static atomic_t iu_cond;

static bool iu_check(struct iu_ctx *c)
{
	atomic_inc(&c->evals);
	return atomic_read(&iu_cond) || kthread_should_stop();
}

static int iu_fn(void *data)
{
	struct iu_ctx *c = data;

	if (c->interruptible)
		c->ret = wait_event_interruptible(iuq, iu_check(c));
	else
		wait_event(iuq, iu_check(c));
	atomic_set(&c->done, 1);
	ktc_wait_for_stop();
	return c->interruptible ? 71 : 70;
}

static struct iu_ctx iu_u, iu_i = { .interruptible = true, .ret = -1 };

static void check_interruptible(void)
{
	struct task_struct *u, *i;

	init_waitqueue_head(&iuq);
	u = kthread_run(iu_fn, &iu_u, "ktc-iu-u");
	WAIT_UNTIL(wq_has_sleeper(&iuq));
	i = kthread_run(iu_fn, &iu_i, "ktc-iu-i");
	/* The second evaluation comes after prepare_to_wait_event(): queued. */
	WAIT_UNTIL(atomic_read(&iu_i.evals) >= 2);
	atomic_set(&iu_cond, 1);
	wake_up_interruptible(&iuq);
	CHECK("wake_up_interruptible_wakes_a_wait_event_interruptible_waiter",
	      WAIT_UNTIL(atomic_read(&iu_i.done)));
	CHECK("wait_event_interruptible_returns_0_when_the_condition_holds",
	      iu_i.ret == 0);
	msleep(20);
	CHECK("wake_up_interruptible_does_not_wake_a_wait_event_waiter",
	      !atomic_read(&iu_u.done));
	CHECK("the_unwoken_wait_event_waiter_stays_queued", wq_has_sleeper(&iuq));
	wake_up(&iuq);
	CHECK("wake_up_wakes_the_wait_event_waiter",
	      WAIT_UNTIL(atomic_read(&iu_u.done)) && !waitqueue_active(&iuq));
	CHECK("kthread_stop_of_both_waiters",
	      kthread_stop(u) == 70 && kthread_stop(i) == 71);
}

/* ---- wake_up_process of a waiter; kthread_stop of a waiter ---------------- */

struct wp_ctx {
	wait_queue_head_t wq;
	atomic_t poked;
	atomic_t rechecks;
	int ret;
	atomic_t returned;
};

static bool wp_cond(struct wp_ctx *c)
{
	if (atomic_read(&c->poked))
		atomic_inc(&c->rechecks);
	return kthread_should_stop();
}

static int wp_fn(void *data)
{
	struct wp_ctx *c = data;

	c->ret = wait_event_interruptible(c->wq, wp_cond(c) || kthread_should_stop());
	atomic_set(&c->returned, 1);
	return 80 + (kthread_should_stop() ? 1 : 0);
}

static struct wp_ctx wp = { .ret = -1 };

static void check_wake_up_process(void)
{
	struct task_struct *k;
	int r;

	init_waitqueue_head(&wp.wq);
	k = kthread_run(wp_fn, &wp, "ktc-wp");
	WAIT_UNTIL(wq_has_sleeper(&wp.wq));
	atomic_set(&wp.poked, 1);
	r = wake_up_process(k);
	CHECK("wake_up_process_of_a_queued_waiter_returns_1", r == 1);
	CHECK("wake_up_process_makes_a_waiter_recheck_its_condition",
	      WAIT_UNTIL(atomic_read(&wp.rechecks) > 0));
	msleep(20);
	CHECK("the_waiter_waits_on_after_that_recheck",
	      !atomic_read(&wp.returned) && wq_has_sleeper(&wp.wq));
	CHECK("kthread_stop_of_a_waiter_on_cond_or_should_stop_returns_its_result",
	      kthread_stop(k) == 81);
	CHECK("wait_event_interruptible_ended_by_the_stop_returns_0",
	      atomic_read(&wp.returned) && wp.ret == 0 &&
		      !waitqueue_active(&wp.wq));
}

/* ---- freezable waits during a freeze ---------------------------------------- */

/*
 * As in kt_freeze.c: a freezable "ticker" shows when the freeze has frozen
 * the kthreads (its rounds stop for STALL_MS), a freezable "latecomer"
 * holds the freeze open until released, and an observer that is not
 * freezable does the wakes during the freeze and watches what happens.
 */
#define STALL_MS 250
#define POLLS 25

struct fw_ctx {
	wait_queue_head_t wq;
	atomic_t cond;
	atomic_t handled;
	int ret[2];
	long tret[2];
};

static int fw_fn(void *data)
{
	struct fw_ctx *c = data;
	int ret, n;

	set_freezable();
	for (;;) {
		ret = wait_event_freezable(c->wq, atomic_read(&c->cond) ||
						       kthread_should_stop());
		if (kthread_should_stop())
			break;
		atomic_set(&c->cond, 0);
		n = atomic_read(&c->handled);
		if (n < 2)
			c->ret[n] = ret;
		atomic_inc(&c->handled);
	}
	return 90;
}

static int ft_fn(void *data)
{
	struct fw_ctx *c = data;
	long ret;
	int n;

	set_freezable();
	for (n = 0; n < 2; n++) {
		ret = wait_event_freezable_timeout(c->wq, atomic_read(&c->cond) ||
							       kthread_should_stop(),
						   msecs_to_jiffies(20000));
		if (kthread_should_stop())
			return 91;
		atomic_set(&c->cond, 0);
		c->tret[n] = ret;
		atomic_inc(&c->handled);
	}
	/* No freeze follows: not a freeze point any more. */
	ktc_wait_for_stop();
	return 91;
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
	return 92;
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
	return 93;
}

static struct fw_ctx fw, ft;
static struct ticker tick;
static struct latecomer late;

struct wobs {
	atomic_t armed;
	int woke;
	int polls;
	bool fw_queued_at_wake, fw_queued_after_wake, fw_queued_at_release;
	bool ft_queued_at_release;
	int fw_handled_at_wake, fw_handled_at_release;
	int ft_handled_at_wake, ft_handled_at_release;
};

static struct wobs obs;

static int wobs_fn(void *data)
{
	struct wobs *o = data;
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
		if (!o->woke) {
			o->fw_handled_at_wake = atomic_read(&fw.handled);
			o->ft_handled_at_wake = atomic_read(&ft.handled);
			o->fw_queued_at_wake = waitqueue_active(&fw.wq);
			atomic_set(&fw.cond, 1);
			wake_up(&fw.wq);
			atomic_set(&ft.cond, 1);
			wake_up(&ft.wq);
			o->fw_queued_after_wake = waitqueue_active(&fw.wq);
			o->woke = 1;
			continue;
		}
		if (++o->polls >= POLLS) {
			o->fw_handled_at_release = atomic_read(&fw.handled);
			o->ft_handled_at_release = atomic_read(&ft.handled);
			o->fw_queued_at_release = waitqueue_active(&fw.wq);
			o->ft_queued_at_release = waitqueue_active(&ft.wq);
			atomic_set(&late.release, 1);
		}
	}
	return 0;
}

static void check_freezable(void)
{
	struct task_struct *kfw, *kft, *kt, *kl, *ko;
	long full = (long)msecs_to_jiffies(20000);
	int ret;

	init_waitqueue_head(&fw.wq);
	init_waitqueue_head(&ft.wq);
	kfw = kthread_run(fw_fn, &fw, "ktc-fw");
	kft = kthread_run(ft_fn, &ft, "ktc-ft");
	WAIT_UNTIL(wq_has_sleeper(&fw.wq) && wq_has_sleeper(&ft.wq));
	atomic_set(&fw.cond, 1);
	wake_up(&fw.wq);
	atomic_set(&ft.cond, 1);
	wake_up(&ft.wq);
	CHECK("wait_event_freezable_returns_0_when_woken_with_the_condition",
	      WAIT_UNTIL(atomic_read(&fw.handled) == 1) && fw.ret[0] == 0);
	CHECK("wait_event_freezable_timeout_returns_the_jiffies_left_when_woken",
	      WAIT_UNTIL(atomic_read(&ft.handled) == 1) && ft.tret[0] > 0 &&
		      ft.tret[0] <= full);

	kt = kthread_run(ticker_fn, &tick, "ktc-ticker");
	kl = kthread_run(latecomer_fn, &late, "ktc-latecomer");
	ko = kthread_run(wobs_fn, &obs, "ktc-wobserver");
	CHECK("the_freezable_waiters_wait_again",
	      WAIT_UNTIL(wq_has_sleeper(&fw.wq) && wq_has_sleeper(&ft.wq) &&
			 atomic_read(&tick.rounds) > 2));

	atomic_set(&obs.armed, 1);
	ret = env_freeze_cycle();
	CHECK("a_freeze_cycle_succeeds", ret == 0);
	if (ret)
		ktc_print("# note " KTC_PROG ": freeze %d; observer woke %d, polls %d",
			  ret, READ_ONCE(obs.woke), READ_ONCE(obs.polls));
	CHECK("the_thawed_wait_event_freezable_waiter_handles_the_condition",
	      WAIT_UNTIL(atomic_read(&fw.handled) == 2) && fw.ret[1] == 0);
	CHECK("the_thawed_wait_event_freezable_timeout_waiter_returns_time_left",
	      WAIT_UNTIL(atomic_read(&ft.handled) == 2) && ft.tret[1] > 0 &&
		      ft.tret[1] <= full);
	atomic_set(&obs.armed, 0);
	kthread_stop(ko);

	/* Its try_to_freeze() returns, and counts, only once it runs after the thaw. */
	CHECK("the_freeze_waited_for_the_latecomer",
	      WAIT_UNTIL(atomic_read(&late.froze) >= 1) &&
		      atomic_read(&late.froze) == 1 && obs.polls >= POLLS);
	CHECK("a_frozen_wait_event_freezable_waiter_is_still_queued",
	      obs.woke && obs.fw_queued_at_wake);
	CHECK("a_wake_up_leaves_the_frozen_waiter_queued",
	      obs.woke && obs.fw_queued_after_wake && obs.fw_queued_at_release);
	CHECK("a_wake_up_during_the_freeze_is_not_acted_on_until_the_thaw",
	      obs.woke && obs.fw_handled_at_wake == 1 &&
		      obs.fw_handled_at_release == 1);
	CHECK("wait_event_freezable_timeout_does_not_return_during_the_freeze",
	      obs.woke && obs.ft_handled_at_wake == 1 &&
		      obs.ft_handled_at_release == 1 && obs.ft_queued_at_release);
	CHECK("kthread_stop_of_the_thawed_freezable_kthreads",
	      kthread_stop(kfw) == 90 && kthread_stop(kft) == 91 &&
		      kthread_stop(kt) == 92 && kthread_stop(kl) == 93);
	CHECK("the_freezable_wait_queues_end_empty",
	      !waitqueue_active(&fw.wq) && !waitqueue_active(&ft.wq));
}

void run_checks(void)
{
	check_no_sleep();
	check_open_coded_self();
	check_declare_waitqueue_thread();
	check_recheck();
	check_no_lost_wake();
	check_exclusive();
	check_interruptible();
	check_wake_up_process();
	check_freezable();
}
