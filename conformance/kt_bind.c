// SPDX-License-Identifier: GPL-2.0 OR MIT OR Apache-2.0
/*
 * kt_bind.c - SPEC §2 and §3: CPU placement. An unbound kthread may run on
 * every CPU; kthread_bind() before the first wake pins it to one CPU, for
 * good; kthread_create_on_cpu() binds and names it by the CPU.
 *
 * Not here: kthread_bind_mask() (6.1 does not export it to modules), and
 * kthread_bind() after the wake (the kernel WARNs and ignores it; the
 * library returns -EBUSY).
 */
#define KTC_PROG "bind"
#include "env.h"

struct cpu_ctx {
	int cpu_first;
	int cpu_later;
	int allowed_first;
	int allowed_later;
	void *data_seen;
	char comm[TASK_COMM_LEN];
	struct completion done;
};

static int cpu_fn(void *data)
{
	struct cpu_ctx *c = data;

	c->cpu_first = env_cpu();
	c->allowed_first = env_allowed_cpus();
	c->data_seen = kthread_data(current);
	env_comm(c->comm);
	msleep(20); /* sleep and come back: still on the same CPU */
	c->cpu_later = env_cpu();
	c->allowed_later = env_allowed_cpus();
	complete(&c->done);
	ktc_wait_for_stop();
	return 0;
}

static struct cpu_ctx unbound, first, last, percpu;

static void start(struct cpu_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cpu_first = c->cpu_later = -1;
	init_completion(&c->done);
}

static bool ran_on(struct cpu_ctx *c, int cpu)
{
	return c->cpu_first == cpu && c->cpu_later == cpu &&
	       c->allowed_first == 1 && c->allowed_later == 1;
}

static void check_bind_one(struct cpu_ctx *c, int cpu, const char *name)
{
	struct task_struct *k;

	start(c);
	k = kthread_create(cpu_fn, c, "ktc-bind/%d", cpu);
	kthread_bind(k, cpu); /* void in the kernel, int here: unused */
	wake_up_process(k);
	wait_for_completion_timeout(&c->done, WAIT_LONG);
	kthread_stop(k);
	CHECK(name, ran_on(c, cpu));
}

void run_checks(void)
{
	struct task_struct *k;
	char want[TASK_COMM_LEN];
	int cpu;

	start(&unbound);
	k = kthread_run(cpu_fn, &unbound, "ktc-unbound");
	wait_for_completion_timeout(&unbound.done, WAIT_LONG);
	kthread_stop(k);
	CHECK("an_unbound_kthread_may_run_on_every_cpu",
	      unbound.allowed_first == env_online_cpus() &&
		      unbound.allowed_later == env_online_cpus());

	check_bind_one(&first, env_first_cpu(),
		       "kthread_bind_before_the_wake_pins_it_to_the_first_cpu");
	check_bind_one(&last, env_last_cpu(),
		       "kthread_bind_before_the_wake_pins_it_to_the_last_cpu");

	cpu = env_last_cpu();
	start(&percpu);
	k = kthread_create_on_cpu(cpu_fn, &percpu, cpu, "ktc-pcpu/%u");
	CHECK("kthread_create_on_cpu_returns_a_task", !IS_ERR_OR_NULL(k));
	if (IS_ERR_OR_NULL(k))
		return;
	CHECK("kthread_create_on_cpu_gives_a_stopped_kthread",
	      wait_for_completion_timeout(&percpu.done, msecs_to_jiffies(30)) == 0);
	wake_up_process(k);
	wait_for_completion_timeout(&percpu.done, WAIT_LONG);
	kthread_stop(k);
	snprintf(want, sizeof(want), "ktc-pcpu/%u", cpu);
	CHECK("kthread_create_on_cpu_binds_to_that_cpu", ran_on(&percpu, cpu));
	CHECK("kthread_create_on_cpu_names_it_by_the_cpu",
	      strcmp(percpu.comm, want) == 0);
	CHECK("kthread_create_on_cpu_keeps_the_data", percpu.data_seen == &percpu);
}
