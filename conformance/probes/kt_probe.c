// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_probe.c - measurements, not checks: where kthread and the kernel
 * differ (DIFFERENCES.md), print what each side does, as "# info" lines.
 * run.sh runs it only with CONFORMANCE_PROBES=1 and never compares it.
 * The last probe leaves a kthread stuck in the kernel: load it last.
 */
#define KTC_PROG "probe"
#include "env.h"

/* ---- 1. kthread_stop() right after the first wake ------------------------------- */

static atomic_t race_ran;

static int race_fn(void *data)
{
	atomic_inc(&race_ran);
	return 1;
}

static void probe_wake_then_stop(void)
{
	int i, eintr = 0, ran = 0, other = 0, r;
	struct task_struct *k;

	for (i = 0; i < 200; i++) {
		k = kthread_create(race_fn, NULL, "ktc-race");
		if (IS_ERR(k))
			continue;
		wake_up_process(k);
		r = kthread_stop(k);
		if (r == -EINTR)
			eintr++;
		else if (r == 1)
			ran++;
		else
			other++;
	}
	ktc_print("# info wake_up_process+kthread_stop x200: -EINTR (function never ran) %d, function ran %d, other %d",
		  eintr, ran, other);
}

/* ---- 2. kthread_bind() after the wake, while the thread sleeps ----------------------- */

struct bind_ctx {
	int allowed_before, allowed_after, cpu_after;
	struct completion started, done;
};

static int bind_fn(void *data)
{
	struct bind_ctx *c = data;

	c->allowed_before = env_allowed_cpus();
	complete(&c->started);
	msleep(300);
	c->allowed_after = env_allowed_cpus();
	c->cpu_after = env_cpu();
	complete(&c->done);
	ktc_wait_for_stop();
	return 0;
}

static struct bind_ctx bc;

static void probe_bind_after_wake(void)
{
	struct task_struct *k;

	init_completion(&bc.started);
	init_completion(&bc.done);
	k = kthread_run(bind_fn, &bc, "ktc-late-bind");
	wait_for_completion_timeout(&bc.started, WAIT_LONG);
	msleep(50); /* asleep in msleep (TASK_UNINTERRUPTIBLE) by now */
	kthread_bind(k, env_last_cpu());
	wait_for_completion_timeout(&bc.done, WAIT_LONG);
	kthread_stop(k);
	ktc_print("# info kthread_bind after the wake, thread asleep: allowed CPUs %d -> %d (cpu %d, bound to %d)",
		  bc.allowed_before, bc.allowed_after, bc.cpu_after, env_last_cpu());
}

/* ---- 3. kthread_stop() of a frozen kthread; was_frozen after a sleep ------------------ */

struct frz {
	bool interruptible;
	atomic_t rounds;
	atomic_t thawed;
};

static int frz_fn(void *data)
{
	struct frz *f = data;
	bool was_frozen = false;

	set_freezable();
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
	return 5;
}

/* Freezable; holds the freeze open until released (see kt_freeze.c). */
static atomic_t late_release, late_froze;

static int late_fn(void *data)
{
	set_freezable();
	while (!kthread_should_stop()) {
		msleep(2);
		if (atomic_read(&late_release) && try_to_freeze())
			atomic_inc(&late_froze);
	}
	return 0;
}

struct stopper {
	struct frz *f;
	struct task_struct *victim;
	long long t_start, t_end;
	int ret;
	atomic_t started;
	atomic_t done;
	int done_before_release;
};

/* Not freezable: stops the victim once it has been frozen for 100 ms. */
static int stopper_fn(void *data)
{
	struct stopper *s = data;
	long long last_t = env_now_ms();
	int last = atomic_read(&s->f->rounds), r;

	while (!kthread_should_stop() && !atomic_read(&s->started)) {
		msleep(2);
		r = atomic_read(&s->f->rounds);
		if (r != last) {
			last = r;
			last_t = env_now_ms();
		} else if (env_now_ms() - last_t >= 100) {
			s->t_start = env_now_ms();
			atomic_set(&s->started, 1);
			s->ret = kthread_stop(s->victim);
			s->t_end = env_now_ms();
			atomic_set(&s->done, 1);
		}
	}
	ktc_wait_for_stop();
	return 0;
}

/* Not freezable: 300 ms after the stop started, ends the freeze. */
static int releaser_fn(void *data)
{
	struct stopper *s = data;

	WAIT_UNTIL(atomic_read(&s->started));
	msleep(300);
	s->done_before_release = atomic_read(&s->done);
	atomic_set(&late_release, 1);
	ktc_wait_for_stop();
	return 0;
}

static struct frz fz, fz_intr;
static struct stopper st;

static void probe_freezer(void)
{
	struct task_struct *sk, *rk, *lk, *ik;
	int ret;

	fz_intr.interruptible = true;
	st.f = &fz;
	st.victim = kthread_run(frz_fn, &fz, "ktc-frozen");
	ik = kthread_run(frz_fn, &fz_intr, "ktc-frozen-i");
	lk = kthread_run(late_fn, NULL, "ktc-late");
	WAIT_UNTIL(atomic_read(&fz.rounds) > 2 && atomic_read(&fz_intr.rounds) > 0);
	sk = kthread_run(stopper_fn, &st, "ktc-stopper");
	rk = kthread_run(releaser_fn, &st, "ktc-releaser");
	ret = env_freeze_cycle();
	WAIT_UNTIL(atomic_read(&st.done));
	kthread_stop(rk);
	kthread_stop(sk);
	kthread_stop(lk);
	kthread_stop(ik);
	ktc_print("# info kthread_stop of a kthread frozen in kthread_freezable_should_stop: freeze %d, stop returned %d after %lld ms, %s the freeze ended",
		  ret, st.ret, st.t_end - st.t_start,
		  st.done_before_release ? "before" : "after");
	ktc_print("# info kthread_freezable_should_stop(&was_frozen) of a kthread that the freeze found in an interruptible schedule_timeout(): was_frozen %d time(s)",
		  atomic_read(&fz_intr.thawed));
}

/* ---- 4. kthread_flush_work() of an armed delayed work (kernel: last) -------------------- */

struct flusher {
	struct kthread_delayed_work dwork;
	atomic_t ran;
	struct completion flushed;
};

static void fl_fn(struct kthread_work *work)
{
	struct flusher *f = container_of(work, struct flusher, dwork.work);

	atomic_set(&f->ran, 1);
}

static int flusher_fn(void *data)
{
	struct flusher *f = data;

	kthread_flush_work(&f->dwork.work);
	complete(&f->flushed);
	ktc_wait_for_stop();
	return 0;
}

static struct flusher fl;

static void probe_flush_armed(void)
{
	struct kthread_worker *w = kthread_create_worker(0, "ktc-probe-w");
	struct task_struct *k;
	long long t0 = env_now_ms();
	bool returned;

	kthread_init_delayed_work(&fl.dwork, fl_fn);
	init_completion(&fl.flushed);
	kthread_queue_delayed_work(w, &fl.dwork, msecs_to_jiffies(200));
	k = kthread_run(flusher_fn, &fl, "ktc-flusher");
	returned = wait_for_completion_timeout(&fl.flushed, msecs_to_jiffies(3000)) > 0;
	ktc_print("# info kthread_flush_work of a delayed work armed for 200 ms: %s after %lld ms; the work %s",
		  returned ? "returned" : "still waiting", env_now_ms() - t0,
		  atomic_read(&fl.ran) ? "ran" : "did not run");
	if (returned) {
		kthread_stop(k);
		kthread_destroy_worker(w);
	}
	/* else: the flusher waits forever (kernel); leave it and the worker. */
}

void run_checks(void)
{
	probe_wake_then_stop();
	probe_bind_after_wake();
	probe_freezer();
	probe_flush_armed();
}
