/*
 * hello_kthread.c - a kernel-style kthread and worker in a user-space C program.
 *
 * Build (from the repository root, after `cargo build --release -p kthread-capi`):
 *
 *     cc -std=gnu11 -Icapi/include examples/c/hello_kthread.c \
 *        -Ltarget/release -lkthread -Wl,-rpath,$PWD/target/release -o hello_kthread
 *     ./hello_kthread
 *
 * See capi/README.md for static linking and pkg-config.
 */
#include <stdio.h>

#include <kthread.h>

/* A kthread that sleeps until there is work or it is asked to stop. */
struct ticker {
	int pending;   /* work waiting; written by main, read by the kthread */
	int handled;
	struct completion done_one;
};

static int ticker_fn(void *data)
{
	struct ticker *t = data;

	printf("ticker: running as %p, data %p\n", (void *)current,
	       kthread_data(current));
	while (!kthread_should_stop()) {
		/* The kernel's lost-wake-up-free pattern. */
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !__atomic_load_n(&t->pending, __ATOMIC_ACQUIRE))
			schedule();
		__set_current_state(TASK_RUNNING);

		if (__atomic_exchange_n(&t->pending, 0, __ATOMIC_ACQ_REL)) {
			t->handled++;
			complete(&t->done_one);
		}
	}
	return t->handled;
}

/* A consumer on a wait queue, as kernel code writes it. */
static DECLARE_WAIT_QUEUE_HEAD(requests_wq);
static int requests, served;

static int server_fn(void *data)
{
	(void)data;
	while (!kthread_should_stop()) {
		if (wait_event_interruptible(requests_wq,
					     __atomic_load_n(&requests, __ATOMIC_ACQUIRE) > served ||
						     kthread_should_stop()))
			continue; /* a signal: -ERESTARTSYS */
		while (__atomic_load_n(&requests, __ATOMIC_ACQUIRE) > served)
			printf("server: request %d served by %s (pid %d)\n", ++served,
			       current->comm, current->pid);
	}
	return served;
}

/* A driver-like structure whose work item is recovered with container_of. */
struct my_device {
	const char *name;
	struct kthread_work reset_work;
};

static void reset_fn(struct kthread_work *work)
{
	struct my_device *dev = container_of(work, struct my_device, reset_work);

	printf("worker: resetting %s\n", dev->name);
}

int main(void)
{
	struct ticker t = { 0 };
	struct my_device dev = { .name = "eth0" };
	struct kthread_worker *worker;
	struct task_struct *k;
	int i, ret;

	init_completion(&t.done_one);
	k = kthread_run(ticker_fn, &t, "ticker/%d", 0);
	if (IS_ERR(k)) {
		fprintf(stderr, "kthread_run: error %ld\n", PTR_ERR(k));
		return 1;
	}
	for (i = 0; i < 3; i++) {
		__atomic_store_n(&t.pending, 1, __ATOMIC_RELEASE);
		wake_up_process(k);
		if (!wait_for_completion_timeout(&t.done_one, 5 * HZ)) {
			fprintf(stderr, "ticker did not answer\n");
			return 1;
		}
	}
	ret = kthread_stop(k);
	printf("stopped: kthread_stop() returned %d\n", ret);

	k = kthread_run(server_fn, NULL, "server");
	if (IS_ERR(k))
		return 1;
	for (i = 0; i < 3; i++) {
		__atomic_add_fetch(&requests, 1, __ATOMIC_RELEASE);
		wake_up(&requests_wq);
	}
	/* The stop reaches the waiter: its condition includes kthread_should_stop(). */
	printf("server: stopped after %d requests\n", kthread_stop(k));

	worker = kthread_create_worker(0, "events/%d", 0);
	if (IS_ERR(worker)) {
		fprintf(stderr, "kthread_create_worker: error %ld\n", PTR_ERR(worker));
		return 1;
	}
	kthread_init_work(&dev.reset_work, reset_fn);
	kthread_queue_work(worker, &dev.reset_work);
	kthread_flush_work(&dev.reset_work);
	kthread_destroy_worker(worker);
	return ret == 3 ? 0 : 1;
}
