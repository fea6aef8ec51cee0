/*
 * wait_queue.c - wait queues, the task-state bits, time and task fields
 * through kthread.h, written as kernel code writes them.
 *
 * The loop of journal_fn() is the kernel's idiom, unchanged:
 *	wait_event_freezable(wq, cond || kthread_should_stop())
 * It must sleep without using CPU, freeze, thaw and stop.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static DECLARE_WAIT_QUEUE_HEAD(journal_wq);
static int journal_commits_requested;
static int journal_commits_done;
static long long journal_cpu_ns;
static int journal_frozen_seen;

static long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int journal_fn(void *data)
{
	(void)data;
	set_freezable();
	while (!kthread_should_stop()) {
		long long before = thread_cpu_ns();

		wait_event_freezable(journal_wq,
				     __atomic_load_n(&journal_commits_requested, __ATOMIC_ACQUIRE) >
						     journal_commits_done ||
					     kthread_should_stop());
		__atomic_add_fetch(&journal_cpu_ns, thread_cpu_ns() - before,
				   __ATOMIC_RELAXED);
		if (freezing(current))
			journal_frozen_seen = 1;
		if (__atomic_load_n(&journal_commits_requested, __ATOMIC_ACQUIRE) > journal_commits_done)
			__atomic_add_fetch(&journal_commits_done, 1, __ATOMIC_RELEASE);
	}
	return 42;
}

static int sleeper_state;
static int sleeper_fn(void *data)
{
	(void)data;
	while (!kthread_should_stop()) {
		set_current_state(sleeper_state);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

/* Exclusive waiters of the open-coded form, counting their wakes. */
static DECLARE_WAIT_QUEUE_HEAD(excl_wq);
static int excl_woken, excl_queued;

static int excl_fn(void *data)
{
	DEFINE_WAIT(wait);

	(void)data;
	prepare_to_wait_exclusive(&excl_wq, &wait, TASK_INTERRUPTIBLE);
	__atomic_add_fetch(&excl_queued, 1, __ATOMIC_RELEASE);
	while (!kthread_should_stop()) {
		schedule();
		if (!kthread_should_stop())
			break;
		prepare_to_wait_exclusive(&excl_wq, &wait, TASK_INTERRUPTIBLE);
	}
	finish_wait(&excl_wq, &wait);
	__atomic_add_fetch(&excl_woken, 1, __ATOMIC_RELEASE);
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

static int comm_ok, pid_ok;
static int fields_fn(void *data)
{
	struct task_struct *me = current;
	char buf[TASK_COMM_LEN];

	(void)data;
	get_task_comm(buf, me);
	comm_ok = strcmp(me->comm, "ktc-fields-is-l") == 0 && strcmp(buf, me->comm) == 0;
	pid_ok = me->pid > 0 && task_pid_nr(me) == me->pid;
	return 0;
}

static struct completion deaf_gate;
static int deaf_fn(void *data)
{
	(void)data;
	wait_for_completion(&deaf_gate); /* deaf to kthread_should_stop() */
	return kthread_should_stop() ? 5 : -1;
}

static int after_exit;
static struct completion exit_done;

static void deep_exit(int depth, long code)
{
	if (depth)
		deep_exit(depth - 1, code);
	else if (code == 8)
		kthread_complete_and_exit(&exit_done, code);
	else
		kthread_exit(code);
	after_exit = 1;
}

static int exit_fn(void *data)
{
	deep_exit(5, (long)data);
	after_exit = 1;
	return -1;
}

int main(void)
{
	struct task_struct *k, *ex[3];
	struct kthread_worker *w;
	long left;
	unsigned long j0;
	int i, r;

	/* The kernel's freezable wait loop: sleeps, freezes, thaws, stops. */
	k = kthread_run(journal_fn, NULL, "jbd2/%s", "sda1");
	CHECK("journal_runs", !IS_ERR_OR_NULL(k));
	CHECK("journal_queued", WAIT_UNTIL(wq_has_sleeper(&journal_wq)));
	msleep(100);
	CHECK("journal_sleeps_without_cpu", __atomic_load_n(&journal_cpu_ns, __ATOMIC_RELAXED) < 20000000);
	__atomic_add_fetch(&journal_commits_requested, 1, __ATOMIC_RELEASE);
	wake_up(&journal_wq);
	CHECK("journal_commits", WAIT_UNTIL(__atomic_load_n(&journal_commits_done, __ATOMIC_ACQUIRE) == 1));
	CHECK("journal_requeued", WAIT_UNTIL(wq_has_sleeper(&journal_wq)));
	CHECK("journal_freezes", freeze_kthreads(10000) == 0);
	__atomic_add_fetch(&journal_commits_requested, 1, __ATOMIC_RELEASE);
	wake_up(&journal_wq);
	msleep(20);
	CHECK("journal_runs_nothing_while_frozen", __atomic_load_n(&journal_commits_done, __ATOMIC_ACQUIRE) == 1);
	CHECK("journal_thaws", thaw_kthreads() == 0);
	CHECK("journal_commits_after_thaw", WAIT_UNTIL(__atomic_load_n(&journal_commits_done, __ATOMIC_ACQUIRE) == 2));
	CHECK("journal_stops", kthread_stop(k) == 42);

	/* TASK_IDLE, TASK_KILLABLE, and freezable sleeps sleep. */
	{
		unsigned int states[] = { TASK_IDLE, TASK_KILLABLE,
					  TASK_INTERRUPTIBLE | TASK_FREEZABLE,
					  TASK_IDLE | TASK_FREEZABLE };
		for (i = 0; i < 4; i++) {
			sleeper_state = (int)states[i];
			k = kthread_run(sleeper_fn, NULL, "ktc-state/%d", i);
			msleep(10);
			CHECK("sleep_state_wakes", wake_up_process(k) == 1);
			CHECK("sleep_state_stops", kthread_stop(k) == 0);
		}
	}

	/* Exclusive waiters: one per wake_up, all by wake_up_all. */
	for (i = 0; i < 3; i++)
		ex[i] = kthread_run(excl_fn, NULL, "ktc-excl/%d", i);
	CHECK("excl_queued", WAIT_UNTIL(__atomic_load_n(&excl_queued, __ATOMIC_ACQUIRE) == 3));
	r = __wake_up(&excl_wq, TASK_NORMAL, 1, NULL);
	CHECK("wake_up_wakes_one_exclusive", r == 1);
	CHECK("one_woke", WAIT_UNTIL(__atomic_load_n(&excl_woken, __ATOMIC_ACQUIRE) == 1));
	wake_up_all(&excl_wq);
	CHECK("all_woke", WAIT_UNTIL(__atomic_load_n(&excl_woken, __ATOMIC_ACQUIRE) == 3));
	CHECK("queue_empty", !waitqueue_active(&excl_wq));
	for (i = 0; i < 3; i++)
		kthread_stop(ex[i]);

	/* Timeouts. */
	left = wait_event_timeout(journal_wq, 0, 5);
	CHECK("wait_event_timeout_expires", left == 0);
	left = wait_event_timeout(journal_wq, 1, 0);
	CHECK("wait_event_timeout_true_at_zero_is_1", left == 1);
	left = wait_event_interruptible_timeout(journal_wq, 1, 50);
	CHECK("wait_event_interruptible_timeout_left", left == 50);
	CHECK("wait_event_interruptible_true", wait_event_interruptible(journal_wq, 1) == 0);

	/* Time. */
	j0 = jiffies;
	msleep(20);
	CHECK("jiffies_advance", time_after(jiffies, j0) && time_after_eq(jiffies, j0 + 10));
	CHECK("time_after_wraps", time_after(5UL, (unsigned long)-5L) && time_before((unsigned long)-5L, 5UL));
	CHECK("time_in_range", time_in_range(10UL, 5UL, 15UL) && !time_in_range(20UL, 5UL, 15UL));
	CHECK("usecs_round_trip", jiffies_to_usecs(usecs_to_jiffies(3000)) == 3000);
	CHECK("round_jiffies_relative", round_jiffies_relative(100) >= 1 && round_jiffies_relative(100) <= 100 + HZ);
	{
		long long t = now_ms();

		usleep_range(5000, 6000);
		CHECK("usleep_range_sleeps_min", now_ms() - t >= 5);
		t = now_ms();
		CHECK("msleep_interruptible_returns_0", msleep_interruptible(10) == 0);
		CHECK("msleep_interruptible_sleeps", now_ms() - t >= 10);
	}
	CHECK("schedule_timeout_idle", schedule_timeout_idle(2) == 0);
	CHECK("schedule_timeout_killable", schedule_timeout_killable(2) == 0);

	/* Fields. */
	k = kthread_create(fields_fn, NULL, "ktc-fields-is-long");
	get_task_struct(k); /* fields_fn returns at once */
	wake_up_process(k);
	CHECK("task_pid_field", !IS_ERR(k) && k->pid > 0);
	kthread_stop_put(k);
	CHECK("comm_field", comm_ok);
	CHECK("pid_field", pid_ok);
	w = kthread_create_worker(0, "ktc-worker");
	CHECK("worker_task", !IS_ERR(w) && w->task != NULL && strcmp(w->task->comm, "ktc-worker") == 0);
	kthread_destroy_worker(w);
	w = kthread_create_worker_on_node(0, NUMA_NO_NODE, "ktc-node/%d", 0);
	CHECK("create_worker_on_node", !IS_ERR(w) && w->task != NULL && strcmp(w->task->comm, "ktc-node/0") == 0);
	kthread_destroy_worker(w);
	w = kthread_create_worker_on_node(0, 100000, "ktc-node/%d", 1);
	CHECK("create_worker_on_a_node_that_cannot_exist_fails", IS_ERR(w));
	k = kthread_create(fields_fn, NULL, "ktc-fields-is-long");
	get_task_struct(k);
	wake_up_process(k);
	kthread_stop(k);
	CHECK("get_task_struct_keeps_comm", strcmp(k->comm, "ktc-fields-is-l") == 0);
	put_task_struct(k);
	CHECK("cond_resched", cond_resched() == 0);

	/* kthread_exit() from deep inside; kthread_complete_and_exit(). */
	init_completion(&exit_done);
	k = kthread_create(exit_fn, (void *)7L, "ktc-exit");
	get_task_struct(k); /* it ends on its own */
	wake_up_process(k);
	CHECK("kthread_exit_result", kthread_stop_put(k) == 7 && !after_exit);
	k = kthread_create(exit_fn, (void *)8L, "ktc-exit");
	get_task_struct(k);
	wake_up_process(k);
	CHECK("kthread_complete_and_exit_completes",
	      wait_for_completion_timeout(&exit_done, WAIT_LONG) > 0);
	CHECK("kthread_complete_and_exit_result", kthread_stop_put(k) == 8 && !after_exit);
	/* kthread_stop_timeout(): -ETIMEDOUT keeps the task; a later stop gets the result. */
	init_completion(&deaf_gate);
	k = kthread_run(deaf_fn, NULL, "ktc-deaf");
	{
		long long t0 = now_ms();

		r = kthread_stop_timeout(k, msecs_to_jiffies(20));
		CHECK("kthread_stop_timeout_times_out", r == -ETIMEDOUT && now_ms() - t0 >= 20);
	}
	complete(&deaf_gate);
	CHECK("kthread_stop_timeout_again_gives_the_result",
	      kthread_stop_timeout(k, WAIT_LONG) == 5);
	CHECK("kthread_stop_timeout_of_a_stopped_task_is_einval",
	      kthread_stop_timeout(k, 1) == -EINVAL);

	/* Scheduling policy and nice (root: real-time allowed). */
	k = kthread_create(deaf_fn, NULL, "ktc-sched");
	set_user_nice(k, 7);
	CHECK("set_user_nice", task_nice(k) == 7);
	set_user_nice(k, 40); /* out of range: ignored */
	CHECK("set_user_nice_out_of_range_ignored", task_nice(k) == 7);
	CHECK("kthread_sched_setscheduler_rejects_bad_priority",
	      kthread_sched_setscheduler(k, 1 /* SCHED_FIFO */, 0) == -EINVAL);
	if (geteuid() == 0) {
		sched_set_fifo_low(k);
		CHECK("sched_set_fifo_low", sched_getscheduler(k->pid) == SCHED_FIFO);
		sched_set_normal(k, 3);
		CHECK("sched_set_normal", sched_getscheduler(k->pid) == SCHED_OTHER && task_nice(k) == 3);
	}
	CHECK("stop_of_the_never_woken_sched_task", kthread_stop(k) == -EINTR);

	kthread_exit(1); /* not a kthread: reported, returns */
	CHECK("kthread_exit_outside_returns", 1);
	CHECK("freezing_false", !freezing(current));
	return check_summary();
}
