/*
 * signal_queue.c - kthread_queue_work() from a signal handler, as kernel
 * code queues from an interrupt. A storm of SIGUSR1 hits the main thread
 * while it holds the worker lock most of the time (kthread_mod_delayed_work
 * walks a long timer list under it; kthread_flush_worker takes it with the
 * worker idle), and the handler queues a work on the same worker. A queue
 * that took the worker lock to wake the idle worker deadlocked here; the
 * runner's watchdog fails the program if it hangs. Every queue that
 * returned true must run exactly once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define ARMED 2000

static struct kthread_worker *worker;
static struct kthread_work work;
static atomic_long queued, ran, handled;
static atomic_int storm_stop;
static pthread_t victim;

static void work_fn(struct kthread_work *w)
{
	(void)w;
	atomic_fetch_add(&ran, 1);
}

static void noop_fn(struct kthread_work *w)
{
	(void)w;
}

static void on_signal(int sig)
{
	(void)sig;
	if (kthread_queue_work(worker, &work))
		atomic_fetch_add(&queued, 1);
	atomic_fetch_add(&handled, 1);
}

static void *storm(void *arg)
{
	(void)arg;
	while (!atomic_load(&storm_stop)) {
		if (pthread_kill(victim, SIGUSR1))
			abort();
		sched_yield();
	}
	return NULL;
}

int main(void)
{
	static struct kthread_delayed_work armed[ARMED], probe;
	struct sigaction sa;
	pthread_t storm_thread;
	sigset_t block;
	int i, armed_ok = 1, cancelled_ok = 1;
	long long until;

	worker = kthread_create_worker(0, "sigq");
	CHECK("worker created", !IS_ERR(worker));
	if (IS_ERR(worker))
		return check_summary();
	kthread_init_work(&work, work_fn);
	for (i = 0; i < ARMED; i++) {
		kthread_init_delayed_work(&armed[i], noop_fn);
		armed_ok &= kthread_queue_delayed_work(worker, &armed[i],
						       msecs_to_jiffies(3600000) + i);
	}
	CHECK("timers armed", armed_ok);
	kthread_init_delayed_work(&probe, noop_fn);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK("handler installed", sigaction(SIGUSR1, &sa, NULL) == 0);
	victim = pthread_self();
	CHECK("storm started", pthread_create(&storm_thread, NULL, storm, NULL) == 0);

	until = now_ms() + 1500;
	for (i = 0; now_ms() < until; i++) {
		if (i % 8 == 0)
			kthread_flush_worker(worker);
		else
			kthread_mod_delayed_work(worker, &probe,
						 msecs_to_jiffies(7200000));
	}
	atomic_store(&storm_stop, 1);
	pthread_join(storm_thread, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);

	kthread_cancel_delayed_work_sync(&probe);
	for (i = 0; i < ARMED; i++)
		cancelled_ok &= kthread_cancel_delayed_work_sync(&armed[i]);
	CHECK("every armed timer was still armed", cancelled_ok);
	kthread_flush_worker(worker);
	printf("# %d rounds, %ld signals handled, %ld queued\n", i,
	       atomic_load(&handled), atomic_load(&queued));
	CHECK("signals reached the handler", atomic_load(&handled) > 0);
	CHECK("every successful queue ran once",
	      atomic_load(&ran) == atomic_load(&queued));
	kthread_destroy_worker(worker);
	return check_summary();
}
