/*
 * self_ending.c - kthreads that end on their own are reaped at exit, as in
 * the kernel: 100,000 of them, none stopped, leave resident memory and the
 * mapping count flat, and creation never fails (it used to fail with
 * -EAGAIN after about 32,700, when the map count ran out).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define ROUNDS 100000

static int returns_at_once(void *data)
{
	(void)data;
	return 0;
}

/* A field of /proc/self/status, in its unit (kB for VmRSS). */
static long status_field(const char *name)
{
	char line[256];
	long v = -1;
	size_t n = strlen(name);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static long map_count(void)
{
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* Waits (bounded) until at most `n` threads are left in the process. */
static int threads_settle(long n)
{
	return WAIT_UNTIL(status_field("Threads") <= n);
}

int main(void)
{
	long rss0, maps0, threads0, rss1, maps1;
	int i, failed = 0, first_error = 0;

	/* Warm up: kthreadd, the allocator's arenas, the first stacks. */
	for (i = 0; i < 2000; i++) {
		struct task_struct *k = kthread_run(returns_at_once, NULL, "warm/%d", i);

		if (IS_ERR(k))
			failed++;
	}
	/* The harness, kthreadd and its spares (8 by default). */
	threads_settle(4 + 8);
	threads0 = status_field("Threads");
	rss0 = status_field("VmRSS");
	maps0 = map_count();
	for (i = 0; i < ROUNDS; i++) {
		struct task_struct *k = kthread_run(returns_at_once, NULL, "self-end/%d", i);

		if (IS_ERR(k)) {
			if (!failed++)
				first_error = (int)PTR_ERR(k);
		}
	}
	/* kthreadd's spares may be more now than when threads0 was read (a
	 * refill was on its way): at most its cache size of 8 more. */
	CHECK("threads_settle_back", threads_settle(threads0 + 8));
	rss1 = status_field("VmRSS");
	maps1 = map_count();
	printf("# %d self-ending kthreads: VmRSS %ld -> %ld kB, maps %ld -> %ld, threads %ld\n",
	       ROUNDS, rss0, rss1, maps0, maps1, status_field("Threads"));
	if (failed)
		printf("# %d creations failed, the first with %d\n", failed, first_error);
	CHECK("creation_never_fails", failed == 0);
	CHECK("mappings_flat", maps1 - maps0 < 64);
	CHECK("resident_memory_flat", rss1 - rss0 < 16 * 1024);
	return check_summary();
}
