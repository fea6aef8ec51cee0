/*
 * fork_child.c - a fork() child of a process with C kthreads and workers:
 * the inherited pointers answer at once (-ECHILD, 0, false) and never wait
 * for the parent's threads, and the child creates, runs and stops its own.
 * The child has alarm(20) as its watchdog: a hang ends it with SIGALRM.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static int loop_fn(void *data)
{
	(void)data;
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 3;
}

static struct completion gate;
static void stuck_fn(struct kthread_work *w)
{
	(void)w;
	wait_for_completion(&gate);
}

static void nothing_fn(struct kthread_work *w)
{
	(void)w;
}

static int child(struct task_struct *k, struct kthread_worker *w,
		 struct kthread_work *queued)
{
	struct kthread_work fresh;
	struct task_struct *mine;
	struct kthread_worker *mw;

	alarm(20);
	kthread_init_work(&fresh, nothing_fn);
	if (wake_up_process(k) != 0)
		return 1;
	if (kthread_park(k) != -ECHILD || kthread_bind(k, 0) != -ECHILD)
		return 2;
	if (kthread_queue_work(w, &fresh))
		return 3;
	kthread_flush_worker(w); /* returns at once */
	kthread_flush_work(queued); /* idle: returns at once */
	if (kthread_cancel_work_sync(queued))
		return 4;
	if (kthread_stop(k) != -ECHILD)
		return 5;
	kthread_destroy_worker(w); /* waits for nothing */
	mine = kthread_run(loop_fn, NULL, "child-k");
	if (IS_ERR(mine) || kthread_stop(mine) != 3)
		return 6;
	mw = kthread_create_worker(0, "child-w");
	if (IS_ERR(mw) || !kthread_queue_work(mw, &fresh))
		return 7;
	kthread_flush_worker(mw);
	kthread_destroy_worker(mw);
	return 0;
}

int main(void)
{
	struct kthread_work stuck, queued;
	struct kthread_worker *w;
	struct task_struct *k;
	int status = -1;
	pid_t pid;

	init_completion(&gate);
	kthread_init_work(&stuck, stuck_fn);
	kthread_init_work(&queued, nothing_fn);
	k = kthread_run(loop_fn, NULL, "parent-k");
	w = kthread_create_worker(0, "parent-w");
	CHECK("parent_objects", !IS_ERR(k) && !IS_ERR(w));
	kthread_queue_work(w, &stuck); /* running in the parent at the fork */
	kthread_queue_work(w, &queued);
	pid = fork();
	if (pid == 0)
		_exit(child(k, w, &queued));
	CHECK("fork", pid > 0);
	CHECK("child_exits", waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status))
		printf("# child killed by signal %d (SIGALRM: it hung)\n", WTERMSIG(status));
	else if (WEXITSTATUS(status))
		printf("# child failed at step %d\n", WEXITSTATUS(status));
	CHECK("inherited_pointers_answer_at_once_in_the_child",
	      WIFEXITED(status) && WEXITSTATUS(status) == 0);
	complete_all(&gate);
	kthread_flush_worker(w);
	CHECK("the_parent_goes_on", kthread_queue_work(w, &queued));
	kthread_flush_worker(w);
	kthread_destroy_worker(w);
	CHECK("parent_stops_its_kthread", kthread_stop(k) == 3);
	return check_summary();
}
