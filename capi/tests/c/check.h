/*
 * check.h - the tiny test harness of the C test programs.
 *
 * CHECK(name, cond) prints "ok NAME" or "FAIL NAME (file:line: cond)" on
 * stdout; check_summary() prints "# N passed, M failed" and returns the exit
 * status. The Rust runner (capi/tests/c_programs.rs) requires exit status 0,
 * at least one "ok" line, no other lines except "# ..." comments, and a
 * summary that agrees. Call CHECK from main() only; kthreads record what
 * they saw in variables that main() checks.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <time.h>

#include "kthread.h"

static int check_passed, check_failed;

#define CHECK(name, cond)                                                    \
	do {                                                                 \
		if (cond) {                                                  \
			printf("ok %s\n", name);                             \
			check_passed++;                                      \
		} else {                                                     \
			printf("FAIL %s (%s:%d: %s)\n", name, __FILE__,      \
			       __LINE__, #cond);                             \
			check_failed++;                                      \
		}                                                            \
		fflush(stdout);                                              \
	} while (0)

static inline int check_summary(void)
{
	printf("# %d passed, %d failed\n", check_passed, check_failed);
	fflush(stdout);
	return check_failed ? 1 : 0;
}

/* Milliseconds on CLOCK_MONOTONIC. */
static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bound on every wait that should end soon. */
#define WAIT_LONG msecs_to_jiffies(10000)

/* Wait (bounded, 10 s) until `cond` holds; evaluates to whether it did. */
#define WAIT_UNTIL(cond)                                                     \
	__extension__({                                                      \
		long long __deadline = now_ms() + 10000;                     \
		while (!(cond) && now_ms() < __deadline)                     \
			msleep(1);                                           \
		(cond) ? 1 : 0;                                              \
	})

#endif /* CHECK_H */
