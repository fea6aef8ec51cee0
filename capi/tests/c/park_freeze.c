/*
 * park_freeze.c - kthread_park/kthread_unpark and the freezer from C:
 * set_freezable, kthread_freezable_should_stop(&was_frozen), try_to_freeze,
 * freeze_kthreads/thaw_kthreads, a KTW_FREEZABLE worker, a freeze timeout.
 */
#include <stdatomic.h>

#include "check.h"

/* ---- park ----------------------------------------------------------------- */

struct park_ctx {
	atomic_int rounds;
	atomic_int parks;
};

static int park_fn(void *data)
{
	struct park_ctx *c = data;

	while (!kthread_should_stop()) {
		if (kthread_should_park()) {
			atomic_fetch_add(&c->parks, 1);
			kthread_parkme();
			continue;
		}
		atomic_fetch_add(&c->rounds, 1);
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !kthread_should_park())
			schedule_timeout(msecs_to_jiffies(1));
		__set_current_state(TASK_RUNNING);
	}
	return 99;
}

static int return_zero(void *data)
{
	complete((struct completion *)data);
	return 0;
}

static void test_park(void)
{
	struct park_ctx c = { 0, 0 };
	DECLARE_COMPLETION_ONSTACK(done);
	struct task_struct *k;
	int r;

	k = kthread_run(park_fn, &c, "parkable");
	CHECK("a parkable kthread runs", WAIT_UNTIL(atomic_load(&c.rounds) > 2));
	CHECK("kthread_park returns 0", kthread_park(k) == 0);
	CHECK("... once the kthread sits in kthread_parkme", atomic_load(&c.parks) == 1);
	r = atomic_load(&c.rounds);
	msleep(30);
	CHECK("a parked kthread runs nothing", atomic_load(&c.rounds) == r);
	CHECK("kthread_park of a parked kthread is -EBUSY", kthread_park(k) == -EBUSY);
	kthread_unpark(k);
	CHECK("kthread_unpark lets it run again",
	      WAIT_UNTIL(atomic_load(&c.rounds) > r + 2));
	CHECK("park again", kthread_park(k) == 0 && atomic_load(&c.parks) == 2);
	CHECK("kthread_stop of a parked kthread", kthread_stop(k) == 99);

	/* Parking a never-woken kthread is its first wake. */
	c.rounds = 0;
	c.parks = 0;
	k = kthread_create(park_fn, &c, "park-first");
	CHECK("kthread_park of a never-woken kthread returns 0", kthread_park(k) == 0);
	msleep(20);
	CHECK("... and its threadfn has not started", atomic_load(&c.rounds) == 0);
	kthread_unpark(k);
	CHECK("kthread_unpark then starts threadfn",
	      WAIT_UNTIL(atomic_load(&c.rounds) > 0));
	CHECK("... which stops normally", kthread_stop(k) == 99);

	c.rounds = 0;
	k = kthread_create(park_fn, &c, "park-stop");
	kthread_park(k);
	CHECK("kthread_stop of a parked never-run kthread runs threadfn with should_stop set",
	      kthread_stop(k) == 99 && atomic_load(&c.rounds) == 0);

	/* Held with get_task_struct(), as in the kernel: it may end on its own. */
	k = kthread_create(return_zero, &done, "exits");
	get_task_struct(k);
	wake_up_process(k);
	wait_for_completion_timeout(&done, WAIT_LONG);
	CHECK("kthread_park of a kthread that exited is -ENOSYS",
	      WAIT_UNTIL(kthread_park(k) == -ENOSYS));
	CHECK("... and it still stops", kthread_stop_put(k) == 0);
}

/* ---- freezer ---------------------------------------------------------------- */

struct freeze_ctx {
	atomic_int rounds;
	atomic_int thawed; /* times kthread_freezable_should_stop said was_frozen */
	atomic_int freezable;
};

static int freezable_fn(void *data)
{
	struct freeze_ctx *c = data;
	bool was_frozen = false;

	set_freezable();
	atomic_store(&c->freezable, 1);
	while (!kthread_freezable_should_stop(&was_frozen)) {
		if (was_frozen)
			atomic_fetch_add(&c->thawed, 1);
		atomic_fetch_add(&c->rounds, 1);
		msleep(1); /* uninterruptible: freezes only at the loop head */
	}
	return 5;
}

static int unfreezable_fn(void *data)
{
	struct freeze_ctx *c = data;

	while (!kthread_should_stop()) {
		atomic_fetch_add(&c->rounds, 1);
		msleep(1);
		try_to_freeze(); /* not freezable: never freezes */
	}
	return 6;
}

/* Freezable, but never reaches a freeze point until stopped. */
static int stubborn_fn(void *data)
{
	(void)data;
	set_freezable();
	while (!kthread_should_stop())
		msleep(1);
	return 7;
}

static atomic_int fworker_runs;

static void fwork_fn(struct kthread_work *work)
{
	(void)work;
	atomic_fetch_add(&fworker_runs, 1);
}

static void test_freeze(void)
{
	struct freeze_ctx f = { 0, 0, 0 }, u = { 0, 0, 0 };
	struct task_struct *fk, *uk, *sk;
	struct kthread_worker *fw;
	struct kthread_work fwork;
	int r, ur;

	CHECK("thaw_kthreads when not frozen is -EINVAL", thaw_kthreads() == -EINVAL);
	CHECK("set_freezable outside a kthread does nothing", !set_freezable());
	CHECK("try_to_freeze outside a kthread does nothing", !try_to_freeze());

	fk = kthread_run(freezable_fn, &f, "freezable");
	uk = kthread_run(unfreezable_fn, &u, "unfreezable");
	fw = kthread_create_worker(KTW_FREEZABLE, "fworker");
	kthread_init_work(&fwork, fwork_fn);
	WAIT_UNTIL(atomic_load(&f.freezable) && atomic_load(&f.rounds) > 2);

	CHECK("freeze_kthreads returns 0", freeze_kthreads(5000) == 0);
	r = atomic_load(&f.rounds);
	ur = atomic_load(&u.rounds);
	CHECK("a KTW_FREEZABLE worker takes work while frozen",
	      kthread_queue_work(fw, &fwork));
	msleep(30);
	CHECK("a frozen kthread runs nothing", atomic_load(&f.rounds) == r);
	CHECK("a frozen worker runs nothing", atomic_load(&fworker_runs) == 0);
	CHECK("a kthread that is not freezable goes on",
	      WAIT_UNTIL(atomic_load(&u.rounds) > ur + 2));
	CHECK("freeze_kthreads when frozen is -EBUSY", freeze_kthreads(1000) == -EBUSY);
	CHECK("thaw_kthreads returns 0", thaw_kthreads() == 0);
	CHECK("a thawed kthread runs again", WAIT_UNTIL(atomic_load(&f.rounds) > r));
	CHECK("kthread_freezable_should_stop reported was_frozen",
	      atomic_load(&f.thawed) == 1);
	kthread_flush_work(&fwork);
	CHECK("a thawed worker runs its work", atomic_load(&fworker_runs) == 1);

	/* A kthread that does not freeze in time: everything is thawed again. */
	sk = kthread_run(stubborn_fn, NULL, "stubborn");
	msleep(10);
	CHECK("freeze_kthreads times out with -EBUSY when one does not freeze",
	      freeze_kthreads(100) == -EBUSY);
	r = atomic_load(&f.rounds);
	CHECK("... and thaws the others again", WAIT_UNTIL(atomic_load(&f.rounds) > r));
	CHECK("... so the system is not frozen", thaw_kthreads() == -EINVAL);
	CHECK("the stubborn kthread stops", kthread_stop(sk) == 7);

	/* kthread_stop releases a kthread frozen in kthread_freezable_should_stop. */
	CHECK("freeze again", freeze_kthreads(5000) == 0);
	CHECK("kthread_stop of a frozen kthread", kthread_stop(fk) == 5);
	CHECK("thaw", thaw_kthreads() == 0);
	CHECK("the unfreezable kthread stops", kthread_stop(uk) == 6);
	kthread_destroy_worker(fw);
}

int main(void)
{
	test_park();
	test_freeze();
	return check_summary();
}
