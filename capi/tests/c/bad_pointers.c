/*
 * bad_pointers.c - NULL and error pointers passed in give -EINVAL (or false,
 * NULL, or nothing), never a crash; so do tasks that are not live kthreads
 * and misaligned workers. Misuse the kernel would WARN about is reported on
 * stderr.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

static int nothing(void *data)
{
	(void)data;
	return 0;
}

static void work_fn(struct kthread_work *work)
{
	(void)work;
}

int main(void)
{
	struct task_struct *null_task = NULL;
	struct task_struct *err_task = (struct task_struct *)ERR_PTR(-ENOMEM);
	struct kthread_worker *err_worker = (struct kthread_worker *)ERR_PTR(-ENOMEM);
	struct kthread_work *err_work = (struct kthread_work *)ERR_PTR(-EIO);
	struct kthread_delayed_work *err_dwork =
		(struct kthread_delayed_work *)ERR_PTR(-EIO);
	struct completion *err_completion = (struct completion *)ERR_PTR(-EINVAL);
	static alignas(64) unsigned char raw[2 * sizeof(struct kthread_worker)];
	struct kthread_worker *misaligned = (struct kthread_worker *)(void *)(raw + 8);
	DEFINE_KTHREAD_WORKER(owned);
	DEFINE_KTHREAD_WORK(work, work_fn);
	struct kthread_delayed_work dwork;
	struct cpumask mask;
	struct task_struct *k, *mine;
	bool frozen = true;

	CHECK("error pointer helpers",
	      IS_ERR(err_task) && PTR_ERR(err_task) == -ENOMEM &&
		      IS_ERR_OR_NULL(null_task) && !IS_ERR(null_task) &&
		      !IS_ERR_OR_NULL(&mask));

	/* Tasks. */
	CHECK("kthread_stop(NULL) is -EINVAL", kthread_stop(null_task) == -EINVAL);
	CHECK("kthread_stop(ERR_PTR) is -EINVAL", kthread_stop(err_task) == -EINVAL);
	CHECK("kthread_park(NULL), kthread_park(ERR_PTR) are -EINVAL",
	      kthread_park(null_task) == -EINVAL && kthread_park(err_task) == -EINVAL);
	kthread_unpark(null_task);
	kthread_unpark(err_task);
	CHECK("kthread_unpark(NULL/ERR_PTR) does nothing", 1);
	CHECK("wake_up_process(NULL/ERR_PTR) is -EINVAL",
	      wake_up_process(null_task) == -EINVAL &&
		      wake_up_process(err_task) == -EINVAL);
	CHECK("kthread_bind(NULL/ERR_PTR) is -EINVAL",
	      kthread_bind(null_task, 0) == -EINVAL &&
		      kthread_bind(err_task, 0) == -EINVAL);
	cpumask_clear(&mask);
	cpumask_set_cpu(0, &mask);
	CHECK("kthread_bind_mask(NULL task or NULL mask) is -EINVAL",
	      kthread_bind_mask(null_task, &mask) == -EINVAL &&
		      kthread_bind_mask(err_task, &mask) == -EINVAL);
	CHECK("kthread_data(NULL/ERR_PTR) is NULL",
	      kthread_data(null_task) == NULL && kthread_data(err_task) == NULL);

	/* A task that is not a kthread: main() itself. */
	mine = current;
	CHECK("kthread_park(main's own task) is -EINVAL, not a hang",
	      kthread_park(mine) == -EINVAL);
	CHECK("kthread_stop(main's own task) is -EINVAL", kthread_stop(mine) == -EINVAL);
	CHECK("kthread_bind(main's own task) is -EINVAL", kthread_bind(mine, 0) == -EINVAL);

	/* Creation. */
	k = kthread_create(NULL, NULL, "no-fn");
	CHECK("kthread_create with a NULL threadfn is -EINVAL",
	      IS_ERR(k) && PTR_ERR(k) == -EINVAL);
	k = kthread_create_on_node(nothing, NULL, -5, "bad-node");
	CHECK("kthread_create_on_node with a negative node is -EINVAL",
	      IS_ERR(k) && PTR_ERR(k) == -EINVAL);
	k = kthread_create_on_node(nothing, NULL, 4000, "offline-node");
	CHECK("kthread_create_on_node with a node that is not online is -EINVAL",
	      IS_ERR(k) && PTR_ERR(k) == -EINVAL);
	k = kthread_create_on_node_name(nothing, NULL, NUMA_NO_NODE, NULL);
	CHECK("a NULL name is -EINVAL", IS_ERR(k) && PTR_ERR(k) == -EINVAL);
	k = kthread_create_on_cpu(nothing, NULL, 0, NULL);
	CHECK("kthread_create_on_cpu with a NULL name is -EINVAL",
	      IS_ERR(k) && PTR_ERR(k) == -EINVAL);

	k = kthread_create(nothing, NULL, "bind-null-mask");
	CHECK("kthread_bind_mask(task, NULL) is -EINVAL",
	      kthread_bind_mask(k, NULL) == -EINVAL);
	CHECK("kthread_bind to a CPU that cannot exist is -EINVAL",
	      kthread_bind(k, 100000) == -EINVAL);
	CHECK("kthread_stop of the never-woken task is -EINTR", kthread_stop(k) == -EINTR);
	CHECK("a stopped task is refused everywhere",
	      kthread_stop(k) == -EINVAL && kthread_park(k) == -EINVAL &&
		      kthread_data(k) == NULL && kthread_bind(k, 0) == -EINVAL);

	/* Scheduling. */
	{
		/* Bits no sleeping code sets, and bits that are no state:
		 * reported (once per line), and the sleep is a real one. */
		long long t0 = now_ms();
		long left;

		set_current_state(77);
		left = schedule_timeout(10);
		CHECK("a state with library-owned bits sleeps (no busy loop)",
		      left == 0 && now_ms() - t0 >= 10);
		t0 = now_ms();
		set_current_state(TASK_STATE_MAX << 1);
		left = schedule_timeout(10);
		CHECK("an unknown state bit sleeps (no busy loop)",
		      left == 0 && now_ms() - t0 >= 10);
	}
	CHECK("schedule_timeout(negative) returns 0 at once", schedule_timeout(-5) == 0);

	/* Completions. */
	init_completion(NULL);
	reinit_completion(NULL);
	complete(NULL);
	complete_all(err_completion);
	wait_for_completion(NULL);
	wait_for_completion(err_completion);
	CHECK("completion calls on NULL/ERR_PTR do nothing", 1);
	CHECK("wait_for_completion_timeout(NULL) is 0 (as on timeout)",
	      wait_for_completion_timeout(NULL, HZ) == 0 &&
		      wait_for_completion_timeout(err_completion, HZ) == 0);
	CHECK("completion_done/try_wait_for_completion(NULL) are false",
	      !completion_done(NULL) && !try_wait_for_completion(err_completion));

	/* Freezer. */
	CHECK("kthread_freezable_should_stop(NULL) outside a kthread is false",
	      !kthread_freezable_should_stop(NULL));
	CHECK("kthread_freezable_should_stop writes was_frozen",
	      !kthread_freezable_should_stop(&frozen) && !frozen);

	/* Workers and works. */
	kthread_init_worker(NULL);
	kthread_init_worker(err_worker);
	kthread_init_work(NULL, work_fn);
	kthread_init_work(err_work, work_fn);
	kthread_init_delayed_work(NULL, work_fn);
	kthread_init_delayed_work(err_dwork, work_fn);
	CHECK("init calls on NULL/ERR_PTR do nothing", 1);
	CHECK("kthread_worker_fn(NULL/ERR_PTR) is -EINVAL",
	      kthread_worker_fn(NULL) == -EINVAL &&
		      kthread_worker_fn(err_worker) == -EINVAL);
	CHECK("kthread_queue_work with a NULL or ERR_PTR side is false",
	      !kthread_queue_work(NULL, &work) && !kthread_queue_work(err_worker, &work) &&
		      !kthread_queue_work(&owned, NULL) &&
		      !kthread_queue_work(&owned, err_work));
	kthread_init_delayed_work(&dwork, work_fn);
	CHECK("kthread_queue_delayed_work/kthread_mod_delayed_work with NULL are false",
	      !kthread_queue_delayed_work(NULL, &dwork, 1) &&
		      !kthread_queue_delayed_work(&owned, NULL, 1) &&
		      !kthread_mod_delayed_work(err_worker, &dwork, 1) &&
		      !kthread_mod_delayed_work(&owned, err_dwork, 1));
	kthread_flush_work(NULL);
	kthread_flush_work(err_work);
	kthread_flush_worker(NULL);
	kthread_flush_worker(err_worker);
	kthread_destroy_worker(NULL);
	kthread_destroy_worker(err_worker);
	CHECK("flush and destroy calls on NULL/ERR_PTR do nothing", 1);
	CHECK("kthread_cancel_*_sync(NULL/ERR_PTR) are false",
	      !kthread_cancel_work_sync(NULL) && !kthread_cancel_work_sync(err_work) &&
		      !kthread_cancel_delayed_work_sync(NULL) &&
		      !kthread_cancel_delayed_work_sync(err_dwork));
	CHECK("a work never queued: flush and cancel return at once",
	      !kthread_cancel_work_sync(&work));
	kthread_flush_work(&work);

	/* Misaligned workers are refused (and reported), not used. */
	CHECK("(the test's misaligned pointer)", ((uintptr_t)misaligned % 64) != 0);
	kthread_init_worker(misaligned);
	CHECK("kthread_worker_fn on a misaligned worker is -EINVAL",
	      kthread_worker_fn(misaligned) == -EINVAL);
	CHECK("kthread_queue_work on a misaligned worker is false",
	      !kthread_queue_work(misaligned, &work));

	/* Destroying a caller-owned worker: only a WARN, nothing freed. */
	kthread_destroy_worker(&owned);
	k = kthread_run(kthread_worker_fn, &owned, "owned");
	CHECK("a caller-owned worker survives kthread_destroy_worker",
	      kthread_queue_work(&owned, &work));
	kthread_flush_worker(&owned);
	CHECK("... and its thread stops normally", kthread_stop(k) == 0);

	/* Worker creation. */
	CHECK("kthread_create_worker with a NULL name is -EINVAL",
	      PTR_ERR(kthread_create_worker_name(0, NUMA_NO_NODE, -1, NULL)) == -EINVAL);
	CHECK("kthread_create_worker_name with a bad node is -EINVAL",
	      PTR_ERR(kthread_create_worker_name(0, -3, -1, "w")) == -EINVAL);
	return check_summary();
}
