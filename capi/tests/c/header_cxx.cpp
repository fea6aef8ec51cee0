// header_cxx.cpp - kthread.h from C++17: the header compiles (extern "C",
// static_assert on the layouts, the kthread_run statement expression) and
// works: a kthread, a completion, a worker with a work embedded in a class.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>

#include "check.h" // includes kthread.h

static_assert(sizeof(kthread_work) == KTHREAD_SIZEOF_WORK, "layout");
static_assert(alignof(kthread_worker) == KTHREAD_ALIGNOF_WORKER, "layout");

namespace {

struct Device {
	int id = 0;
	std::atomic<int> runs{0};
	int seen_id = -1;
	kthread_work work;
	completion ran;

	explicit Device(int n) : id(n)
	{
		kthread_init_work(&work, &Device::work_fn);
		init_completion(&ran);
	}

	static void work_fn(kthread_work *w)
	{
		Device *d = container_of(w, Device, work);
		d->seen_id = d->id;
		d->runs.fetch_add(1);
		complete(&d->ran);
	}
};

struct LoopState {
	std::atomic<bool> have_work{false};
	std::atomic<int> handled{0};
	completion handled_one;
};

extern "C" int loop_fn(void *data)
{
	auto *s = static_cast<LoopState *>(data);

	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop() && !s->have_work.load())
			schedule();
		__set_current_state(TASK_RUNNING);
		if (s->have_work.exchange(false)) {
			s->handled.fetch_add(1);
			complete(&s->handled_one);
		}
	}
	return s->handled.load();
}

} // namespace

int main()
{
	LoopState s;
	init_completion(&s.handled_one);
	struct task_struct *k = kthread_run(loop_fn, &s, "cxx-loop/%d", 17);
	CHECK("kthread_run from C++", !IS_ERR_OR_NULL(k));
	s.have_work = true;
	wake_up_process(k);
	CHECK("the kernel loop sees the work",
	      wait_for_completion_timeout(&s.handled_one, WAIT_LONG) > 0);
	CHECK("kthread_stop returns its value", kthread_stop(k) == 1);

	kthread_worker *w = kthread_create_worker(0, "cxx-worker");
	CHECK("kthread_create_worker from C++", !IS_ERR_OR_NULL(w));
	Device dev(7);
	CHECK("kthread_queue_work", kthread_queue_work(w, &dev.work));
	kthread_flush_work(&dev.work);
	CHECK("the work ran and found its object with container_of",
	      dev.runs.load() == 1 && dev.seen_id == 7);
	kthread_destroy_worker(w);

	DEFINE_KTHREAD_WORKER(stack_worker);
	struct task_struct *t = kthread_run(kthread_worker_fn, &stack_worker, "cxx-kw");
	Device dev2(8);
	queue_kthread_work(&stack_worker, &dev2.work);
	flush_kthread_worker(&stack_worker);
	CHECK("a DEFINE_KTHREAD_WORKER worker in C++",
	      dev2.seen_id == 8 && kthread_stop(t) == 0);
	return check_summary();
}
