// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_signal.c - signals to kthreads as Linux 6.1 has them: allow_signal(),
 * disallow_signal(), send_sig(), signal_pending(), fatal_signal_pending(),
 * flush_signals(), kernel_dequeue_signal(), and what a pending signal does
 * to the interruptible and killable sleeps (wait_event_*(),
 * schedule_timeout_*(), msleep_interruptible()); md's thread loop, and
 * what kthread_stop() does to signal_pending().
 *
 * Facts of the kernel these checks rest on:
 *  - a kthread starts with every handler SIG_IGN: send_sig() of a signal it
 *    did not allow returns 0 and drops the signal (it is never pending and
 *    wakes nothing); allow_signal(sig) (kernel_sigaction(sig, SIG_KTHREAD))
 *    lets any signal through, disallow_signal(sig) (SIG_IGN) drops it again
 *    and discards it if it is pending;
 *  - send_sig() queues the signal for that task alone; a second one of the
 *    same number while it is pending is merged; signal_pending() stays true
 *    until flush_signals() or kernel_dequeue_signal() takes it, which
 *    returns the lowest pending number first; fatal_signal_pending() is
 *    true for a pending SIGKILL only;
 *  - a pending signal ends every TASK_INTERRUPTIBLE sleep, and a sleep that
 *    starts with one pending does not sleep (signal_pending_state()):
 *    the wait_event_interruptible*() family returns -ERESTARTSYS,
 *    schedule_timeout_interruptible() the jiffies left,
 *    msleep_interruptible() the milliseconds left (one jiffy more than
 *    asked when it did not sleep at all); it does not take the signal;
 *  - only SIGKILL ends a TASK_KILLABLE sleep (wait_event_killable*(),
 *    schedule_timeout_killable()); a pending SIGTERM does not;
 *  - kthread_stop() sets TIF_NOTIFY_SIGNAL, which signal_pending() counts,
 *    before its wake: from then on signal_pending() is true in the
 *    kthread, flush_signals() does not clear it, fatal_signal_pending()
 *    stays false, and an interruptible wait returns -ERESTARTSYS at once.
 */
#define KTC_PROG "signal"
#include "env.h"

/* The kthread's side of a step: report it, then wait for the next go. */
static int step_done(struct completion *step, struct completion *go)
{
	complete(step);
	return wait_for_completion_timeout(go, WAIT_LONG) > 0;
}

static int step_wait(struct completion *step)
{
	return wait_for_completion_timeout(step, WAIT_LONG) > 0;
}

/* ---- an allowed SIGKILL ends wait_event_interruptible() ------------------ */

struct kill_ctx {
	wait_queue_head_t wq;
	int cond;
	struct completion ready, done;
	int pending_at_start, fatal_at_start;
	int ret;
	int pending, fatal, pending_after, fatal_after;
};

static int kill_fn(void *data)
{
	struct kill_ctx *c = data;

	c->pending_at_start = signal_pending(current);
	c->fatal_at_start = fatal_signal_pending(current);
	allow_signal(SIGKILL);
	complete(&c->ready);
	c->ret = wait_event_interruptible(c->wq, READ_ONCE(c->cond) ||
						      kthread_should_stop());
	c->pending = signal_pending(current);
	c->fatal = fatal_signal_pending(current);
	flush_signals(current);
	c->pending_after = signal_pending(current);
	c->fatal_after = fatal_signal_pending(current);
	complete(&c->done);
	ktc_wait_for_stop();
	return 70;
}

static struct kill_ctx kc;

static void check_sigkill(void)
{
	struct task_struct *k;
	int ready, done, r;

	init_waitqueue_head(&kc.wq);
	init_completion(&kc.ready);
	init_completion(&kc.done);
	k = kthread_run(kill_fn, &kc, "ktc-sigkill");
	ready = step_wait(&kc.ready) && WAIT_UNTIL(waitqueue_active(&kc.wq));
	CHECK("a_new_kthread_has_no_signal_pending",
	      ready && !kc.pending_at_start && !kc.fatal_at_start);
	msleep(20);
	CHECK("wait_event_interruptible_sleeps_until_the_signal",
	      ready && !completion_done(&kc.done));
	r = send_sig(SIGKILL, k, 1);
	done = step_wait(&kc.done);
	CHECK("an_allowed_sigkill_ends_wait_event_interruptible_with_erestartsys",
	      r == 0 && done && kc.ret == -ERESTARTSYS);
	CHECK("signal_pending_and_fatal_signal_pending_are_true_after_the_sigkill",
	      done && kc.pending && kc.fatal);
	CHECK("flush_signals_clears_signal_pending_and_fatal_signal_pending",
	      done && !kc.pending_after && !kc.fatal_after);
	CHECK("kthread_stop_of_the_signalled_kthread", kthread_stop(k) == 70);
}

/* ---- md's thread loop ------------------------------------------------------ */

#define MD_SIGNALS 5
#define MD_WAKES 3

struct md_ctx {
	wait_queue_head_t wq;
	long timeout;
	atomic_t flag;
	atomic_t rounds, signals, wakes, timeouts;
	struct completion seen; /* once when ready, then once per event seen */
	/* after kthread_stop() */
	int stop_pending, stop_fatal, stop_pending_after_flush;
	long stop_wait;
	long long stop_wait_ms;
};

static int md_fn(void *data)
{
	struct md_ctx *c = data;
	long long t0;
	long left;
	int sig, wake;

	allow_signal(SIGKILL);
	complete(&c->seen);
	while (!kthread_should_stop()) {
		left = wait_event_interruptible_timeout(c->wq, atomic_read(&c->flag) ||
								kthread_should_stop(),
							c->timeout);
		if (kthread_should_stop())
			break;
		sig = 0;
		if (signal_pending(current)) {
			flush_signals(current);
			sig = 1;
		}
		wake = atomic_xchg(&c->flag, 0);
		if (left == 0)
			atomic_inc(&c->timeouts);
		atomic_inc(&c->rounds);
		if (sig) {
			atomic_inc(&c->signals);
			complete(&c->seen);
		}
		if (wake) {
			atomic_inc(&c->wakes);
			complete(&c->seen);
		}
	}
	c->stop_pending = signal_pending(current);
	c->stop_fatal = fatal_signal_pending(current);
	flush_signals(current);
	c->stop_pending_after_flush = signal_pending(current);
	t0 = env_now_ms();
	c->stop_wait = wait_event_interruptible_timeout(c->wq, 0, msecs_to_jiffies(2000));
	c->stop_wait_ms = env_now_ms() - t0;
	return atomic_read(&c->signals);
}

static struct md_ctx md;

static void check_md_loop(void)
{
	struct task_struct *k;
	int i, sent_ok = 1, seen_ok, rounds, ret;

	init_waitqueue_head(&md.wq);
	init_completion(&md.seen);
	md.timeout = (long)msecs_to_jiffies(20);
	k = kthread_run(md_fn, &md, "ktc-md");
	seen_ok = step_wait(&md.seen);
	msleep(100);
	for (i = 0; i < MD_SIGNALS; i++) {
		if (send_sig(SIGKILL, k, 1) != 0)
			sent_ok = 0;
		seen_ok = seen_ok && step_wait(&md.seen);
		if (i < MD_WAKES) {
			atomic_set(&md.flag, 1);
			wake_up(&md.wq);
			seen_ok = seen_ok && step_wait(&md.seen);
		}
	}
	CHECK("md_loop_sees_each_signal_and_each_wake", sent_ok && seen_ok);
	CHECK("md_loop_counts_each_signal_and_each_wake_once",
	      seen_ok && atomic_read(&md.signals) == MD_SIGNALS &&
		      atomic_read(&md.wakes) == MD_WAKES);
	ret = kthread_stop(k);
	rounds = atomic_read(&md.rounds);
	CHECK("md_loop_times_out_between_events", atomic_read(&md.timeouts) >= 1);
	CHECK("md_loop_rounds_are_the_events_and_the_timeouts",
	      rounds >= MD_SIGNALS + MD_WAKES &&
		      rounds <= MD_SIGNALS + MD_WAKES + atomic_read(&md.timeouts));
	CHECK("md_loop_kthread_stop_returns_the_signal_count", ret == MD_SIGNALS);
	CHECK("signal_pending_is_true_in_a_kthread_woken_by_kthread_stop_even_after_flush_signals",
	      md.stop_pending && !md.stop_fatal && md.stop_pending_after_flush);
	CHECK("an_interruptible_wait_after_kthread_stop_returns_erestartsys_at_once",
	      md.stop_wait == -ERESTARTSYS && md.stop_wait_ms < 1000);
}

/* ---- signals that are not allowed are ignored ------------------------------ */

struct ign_ctx {
	wait_queue_head_t wq;
	int cond;
	struct completion step, go;
	int usr1_pending;
	long slept;
	int slept_pending;
	int disallowed_pending;
	int term_pending, term_pending_after_disallow, term_after;
	int reallowed_pending;
};

static int ign_fn(void *data)
{
	struct ign_ctx *c = data;

	allow_signal(SIGTERM);
	if (!step_done(&c->step, &c->go)) /* main: SIGUSR1 */
		goto out;
	c->usr1_pending = signal_pending(current);
	complete(&c->step); /* main: SIGUSR1 during the sleep, then the wake */
	c->slept = wait_event_interruptible_timeout(c->wq, READ_ONCE(c->cond) ||
								   kthread_should_stop(),
						    WAIT_LONG);
	c->slept_pending = signal_pending(current);
	allow_signal(SIGUSR1);
	disallow_signal(SIGUSR1);
	if (!step_done(&c->step, &c->go)) /* main: SIGUSR1 */
		goto out;
	c->disallowed_pending = signal_pending(current);
	if (!step_done(&c->step, &c->go)) /* main: SIGTERM */
		goto out;
	c->term_pending = signal_pending(current);
	disallow_signal(SIGTERM);
	c->term_pending_after_disallow = signal_pending(current);
	if (!step_done(&c->step, &c->go)) /* main: SIGTERM */
		goto out;
	c->term_after = signal_pending(current);
	allow_signal(SIGTERM);
	if (!step_done(&c->step, &c->go)) /* main: SIGTERM */
		goto out;
	c->reallowed_pending = signal_pending(current);
	flush_signals(current);
	complete(&c->step);
out:
	flush_signals(current);
	ktc_wait_for_stop();
	return 71;
}

static struct ign_ctx ig;

static void check_ignored(void)
{
	struct task_struct *k;
	int ok, r1, r2, r3, r4, r5, r6, asleep;

	init_waitqueue_head(&ig.wq);
	init_completion(&ig.step);
	init_completion(&ig.go);
	k = kthread_run(ign_fn, &ig, "ktc-sigign");
	ok = step_wait(&ig.step);
	r1 = send_sig(SIGUSR1, k, 1);
	complete(&ig.go);
	ok = ok && step_wait(&ig.step);
	CHECK("send_sig_of_a_signal_never_allowed_returns_0_and_drops_it",
	      ok && r1 == 0 && !ig.usr1_pending);

	asleep = ok && WAIT_UNTIL(waitqueue_active(&ig.wq));
	r2 = send_sig(SIGUSR1, k, 1);
	msleep(30);
	CHECK("a_signal_never_allowed_does_not_end_an_interruptible_wait",
	      asleep && r2 == 0 && waitqueue_active(&ig.wq));
	WRITE_ONCE(ig.cond, 1);
	wake_up(&ig.wq);
	ok = ok && step_wait(&ig.step);
	CHECK("the_wait_then_ends_by_its_condition_with_no_signal_pending",
	      ok && ig.slept > 0 && !ig.slept_pending);

	r3 = send_sig(SIGUSR1, k, 1);
	complete(&ig.go);
	ok = ok && step_wait(&ig.step);
	CHECK("a_signal_allowed_then_disallowed_is_ignored",
	      ok && r3 == 0 && !ig.disallowed_pending);

	r4 = send_sig(SIGTERM, k, 1);
	complete(&ig.go);
	ok = ok && step_wait(&ig.step);
	CHECK("an_allowed_sigterm_is_pending", ok && r4 == 0 && ig.term_pending);
	CHECK("disallow_signal_discards_the_pending_signal",
	      ok && !ig.term_pending_after_disallow);
	r5 = send_sig(SIGTERM, k, 1);
	complete(&ig.go);
	ok = ok && step_wait(&ig.step);
	CHECK("a_disallowed_sigterm_is_ignored", ok && r5 == 0 && !ig.term_after);
	r6 = send_sig(SIGTERM, k, 1);
	complete(&ig.go);
	ok = ok && step_wait(&ig.step);
	CHECK("allow_signal_again_lets_it_through", ok && r6 == 0 && ig.reallowed_pending);
	CHECK("kthread_stop_of_the_kthread_that_ignored_signals", kthread_stop(k) == 71);
}

/* ---- killable sleeps -------------------------------------------------------- */

struct kl_ctx {
	wait_queue_head_t wq;
	int cond;
	struct completion step, go;
	long term_left;
	long long term_ms;
	int term_pending, term_fatal;
	long pend_left, pend_wek, pend_intr;
	long long pend_intr_ms;
	long kill_left;
	long long kill_ms;
	int kill_pending, kill_fatal;
	long kill_again_left;
	int wek_ret, wek_fatal;
};

static int kl_fn(void *data)
{
	struct kl_ctx *c = data;
	long long t0;

	allow_signal(SIGKILL);
	allow_signal(SIGTERM);
	complete(&c->step); /* main: SIGTERM during the killable sleep */
	t0 = env_now_ms();
	c->term_left = schedule_timeout_killable(msecs_to_jiffies(200));
	c->term_ms = env_now_ms() - t0;
	c->term_pending = signal_pending(current);
	c->term_fatal = fatal_signal_pending(current);
	if (!step_done(&c->step, &c->go)) /* main: looks at us from outside */
		goto out;
	/* The SIGTERM is still pending. */
	c->pend_left = schedule_timeout_killable(msecs_to_jiffies(50));
	c->pend_wek = wait_event_killable_timeout(c->wq, kthread_should_stop(),
						  msecs_to_jiffies(50));
	t0 = env_now_ms();
	c->pend_intr = schedule_timeout_interruptible(msecs_to_jiffies(10000));
	c->pend_intr_ms = env_now_ms() - t0;
	flush_signals(current);
	complete(&c->step); /* main: SIGKILL during the killable sleep */
	t0 = env_now_ms();
	c->kill_left = schedule_timeout_killable(msecs_to_jiffies(10000));
	c->kill_ms = env_now_ms() - t0;
	c->kill_pending = signal_pending(current);
	c->kill_fatal = fatal_signal_pending(current);
	c->kill_again_left = schedule_timeout_killable(msecs_to_jiffies(10000));
	flush_signals(current);
	complete(&c->step); /* main: SIGKILL during wait_event_killable */
	c->wek_ret = wait_event_killable(c->wq, READ_ONCE(c->cond) || kthread_should_stop());
	c->wek_fatal = fatal_signal_pending(current);
	flush_signals(current);
	complete(&c->step);
out:
	flush_signals(current);
	ktc_wait_for_stop();
	return 72;
}

static struct kl_ctx kl;

static void check_killable(void)
{
	struct task_struct *k;
	long full = (long)msecs_to_jiffies(10000);
	int ok, r, asleep, outside_pending, outside_fatal;

	init_waitqueue_head(&kl.wq);
	init_completion(&kl.step);
	init_completion(&kl.go);
	k = kthread_run(kl_fn, &kl, "ktc-sigkillable");
	ok = step_wait(&kl.step);
	msleep(20);
	r = send_sig(SIGTERM, k, 1);
	ok = ok && step_wait(&kl.step);
	outside_pending = signal_pending(k);
	outside_fatal = fatal_signal_pending(k);
	CHECK("an_allowed_sigterm_does_not_end_schedule_timeout_killable",
	      ok && r == 0 && kl.term_left == 0);
	CHECK_MS_AT_LEAST("schedule_timeout_killable_sleeps_its_timeout_despite_the_sigterm",
			  kl.term_ms, 100);
	CHECK("the_sigterm_is_pending_and_not_fatal",
	      ok && kl.term_pending && !kl.term_fatal);
	CHECK("signal_pending_of_the_kthread_read_from_another_task",
	      ok && outside_pending && !outside_fatal);
	complete(&kl.go);
	ok = ok && step_wait(&kl.step);
	CHECK("a_pending_sigterm_does_not_end_a_killable_sleep",
	      ok && kl.pend_left == 0 && kl.pend_wek == 0);
	CHECK("the_same_pending_sigterm_ends_an_interruptible_sleep_at_once",
	      ok && kl.pend_intr > 0 && kl.pend_intr <= full && kl.pend_intr_ms < 5000);

	msleep(20);
	r = send_sig(SIGKILL, k, 1);
	ok = ok && step_wait(&kl.step);
	CHECK("an_allowed_sigkill_ends_schedule_timeout_killable_with_time_left",
	      ok && r == 0 && kl.kill_left > 0 && kl.kill_left <= full &&
		      kl.kill_ms < 5000);
	CHECK("the_sigkill_is_pending_and_fatal", ok && kl.kill_pending && kl.kill_fatal);
	CHECK("schedule_timeout_killable_with_a_pending_sigkill_returns_at_once",
	      ok && kl.kill_again_left > 0);

	asleep = ok && WAIT_UNTIL(waitqueue_active(&kl.wq));
	msleep(20);
	CHECK("wait_event_killable_sleeps_until_the_sigkill",
	      asleep && !completion_done(&kl.step));
	r = send_sig(SIGKILL, k, 1);
	if (!step_wait(&kl.step)) { /* not ended by it: end it */
		WRITE_ONCE(kl.cond, 1);
		wake_up(&kl.wq);
		ok = 0;
		step_wait(&kl.step);
	}
	CHECK("an_allowed_sigkill_ends_wait_event_killable_with_erestartsys",
	      ok && r == 0 && kl.wek_ret == -ERESTARTSYS && kl.wek_fatal);
	CHECK("kthread_stop_of_the_killable_sleeper", kthread_stop(k) == 72);
}

/* ---- interruptible sleeps ----------------------------------------------------- */

struct in_ctx {
	wait_queue_head_t wq;
	struct completion step;
	unsigned long ms_left;
	long long ms_ms;
	int ms_pending;
	unsigned long again_left;
	long long again_ms;
	long sti_left;
	long long sti_ms;
	long weit_ret;
	int wei_ret;
	long long wei_ms;
	long woken_left;
	long long woken_ms;
};

static int in_fn(void *data)
{
	struct in_ctx *c = data;
	long long t0;

	allow_signal(SIGUSR1);
	complete(&c->step); /* main: SIGUSR1 during msleep_interruptible */
	t0 = env_now_ms();
	c->ms_left = msleep_interruptible(10000);
	c->ms_ms = env_now_ms() - t0;
	c->ms_pending = signal_pending(current);
	/* The SIGUSR1 is still pending: none of these sleeps. */
	t0 = env_now_ms();
	c->again_left = msleep_interruptible(10000);
	c->again_ms = env_now_ms() - t0;
	t0 = env_now_ms();
	c->sti_left = schedule_timeout_interruptible(msecs_to_jiffies(10000));
	c->sti_ms = env_now_ms() - t0;
	t0 = env_now_ms();
	c->weit_ret = wait_event_interruptible_timeout(c->wq, kthread_should_stop(),
						       msecs_to_jiffies(10000));
	c->wei_ret = wait_event_interruptible(c->wq, kthread_should_stop());
	c->wei_ms = env_now_ms() - t0;
	flush_signals(current);
	complete(&c->step); /* main: SIGUSR1 during schedule_timeout_interruptible */
	t0 = env_now_ms();
	c->woken_left = schedule_timeout_interruptible(msecs_to_jiffies(10000));
	c->woken_ms = env_now_ms() - t0;
	flush_signals(current);
	complete(&c->step);
	ktc_wait_for_stop();
	return 73;
}

static struct in_ctx in;

static void check_interruptible(void)
{
	struct task_struct *k;
	long full = (long)msecs_to_jiffies(10000);
	int ok, r;

	init_waitqueue_head(&in.wq);
	init_completion(&in.step);
	k = kthread_run(in_fn, &in, "ktc-sigintr");
	ok = step_wait(&in.step);
	msleep(30);
	r = send_sig(SIGUSR1, k, 1);
	ok = ok && step_wait(&in.step);
	CHECK("msleep_interruptible_ended_by_a_signal_returns_the_ms_left",
	      ok && r == 0 && in.ms_left > 0 &&
		      in.ms_left <= 10000 + jiffies_to_msecs(1) && in.ms_ms < 5000);
	CHECK("msleep_interruptible_leaves_the_signal_pending", ok && in.ms_pending);
	CHECK("msleep_interruptible_with_a_pending_signal_returns_at_once",
	      ok && in.again_left > 0 && in.again_ms < 5000);
	CHECK("schedule_timeout_interruptible_with_a_pending_signal_returns_at_once",
	      ok && in.sti_left > 0 && in.sti_left <= full && in.sti_ms < 5000);
	CHECK("wait_event_interruptible_with_a_pending_signal_returns_erestartsys_at_once",
	      ok && in.weit_ret == -ERESTARTSYS && in.wei_ret == -ERESTARTSYS &&
		      in.wei_ms < 5000);
	msleep(30);
	r = send_sig(SIGUSR1, k, 1);
	ok = ok && step_wait(&in.step);
	CHECK("a_signal_ends_schedule_timeout_interruptible_with_time_left",
	      ok && r == 0 && in.woken_left > 0 && in.woken_left <= full &&
		      in.woken_ms < 5000);
	CHECK("kthread_stop_of_the_interruptible_sleeper", kthread_stop(k) == 73);
}

/* ---- kernel_dequeue_signal ---------------------------------------------------- */

struct dq_ctx {
	struct completion step, go;
	int none;
	int d1, p1, d2, p2, d3;
	int k1, k2, kp;
};

static int dq_fn(void *data)
{
	struct dq_ctx *c = data;

	allow_signal(SIGKILL);
	allow_signal(SIGTERM);
	allow_signal(SIGUSR1);
	c->none = kernel_dequeue_signal();
	if (!step_done(&c->step, &c->go)) /* main: SIGTERM, SIGUSR1, SIGTERM */
		goto out;
	c->d1 = kernel_dequeue_signal();
	c->p1 = signal_pending(current);
	c->d2 = kernel_dequeue_signal();
	c->p2 = signal_pending(current);
	c->d3 = kernel_dequeue_signal();
	if (!step_done(&c->step, &c->go)) /* main: SIGKILL */
		goto out;
	c->k1 = kernel_dequeue_signal();
	c->kp = signal_pending(current) || fatal_signal_pending(current);
	c->k2 = kernel_dequeue_signal();
	complete(&c->step);
out:
	flush_signals(current);
	ktc_wait_for_stop();
	return 74;
}

static struct dq_ctx dq;

static void check_dequeue(void)
{
	struct task_struct *k;
	int ok, r;

	init_completion(&dq.step);
	init_completion(&dq.go);
	k = kthread_run(dq_fn, &dq, "ktc-sigdequeue");
	ok = step_wait(&dq.step);
	CHECK("kernel_dequeue_signal_with_nothing_pending_returns_0", ok && dq.none == 0);
	r = send_sig(SIGTERM, k, 1);
	r |= send_sig(SIGUSR1, k, 1);
	r |= send_sig(SIGTERM, k, 1);
	complete(&dq.go);
	ok = ok && step_wait(&dq.step);
	CHECK("kernel_dequeue_signal_returns_the_lowest_pending_signal_first",
	      ok && r == 0 && dq.d1 == SIGUSR1 && dq.p1 && dq.d2 == SIGTERM);
	CHECK("a_signal_sent_twice_while_pending_is_pending_once",
	      ok && dq.d3 == 0 && !dq.p2);
	r = send_sig(SIGKILL, k, 1);
	complete(&dq.go);
	ok = ok && step_wait(&dq.step);
	CHECK("kernel_dequeue_signal_returns_sigkill_and_clears_it",
	      ok && r == 0 && dq.k1 == SIGKILL && !dq.kp && dq.k2 == 0);
	CHECK("kthread_stop_of_the_dequeuing_kthread", kthread_stop(k) == 74);
}

void run_checks(void)
{
	check_sigkill();
	check_md_loop();
	check_ignored();
	check_killable();
	check_interruptible();
	check_dequeue();
}
