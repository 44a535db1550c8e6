/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers shared by the emulated host: monotonic time, the timeline
 * printer (one mutex so lines from several threads never interleave) and
 * threads that never take process signals.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EMU_NSEC_PER_MSEC 1000000ULL
#define EMU_NSEC_PER_SEC 1000000000ULL

uint64_t emu_now_ns(void);

/* Milliseconds between two monotonic timestamps, for printing. */
static inline double emu_ms(uint64_t from_ns, uint64_t to_ns)
{
	return ((double)to_ns - (double)from_ns) / 1e6;
}

/* The reference point of the timeline ("0 ms") and where it goes (NULL: stdout). */
void emu_timeline_init(bool quiet, FILE *out);
uint64_t emu_t0_ns(void);
bool emu_timeline_quiet(void);

/* "  12.41 ms  <text>" at time t_ns (0 = now); suppressed by --quiet. */
void emu_tl_at(uint64_t t_ns, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define emu_tl(...) emu_tl_at(0, __VA_ARGS__)

/* Like emu_tl_at, but printed even with --quiet (failures, warnings). */
void emu_tl_always(uint64_t t_ns, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A raw line without the time prefix (daemon output, summaries). */
void emu_tl_raw(bool always, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * pthread_create() with every signal blocked in the new thread, so process
 * signals (SIGINT, SIGTERM, SIGCHLD) go to the main thread and never to a
 * helper stuck in an uninterruptible wait on a frozen file system.
 */
int emu_thread_start(pthread_t *ret, void *(*fn)(void *), void *arg);

/* Sleep for ms milliseconds, restarting after signals. */
void emu_sleep_ms(uint64_t ms);

/* Absolute CLOCK_MONOTONIC deadline for pthread_cond_timedwait. */
struct timespec;
void emu_ns_to_timespec(uint64_t ns, struct timespec *ts);

/* Parse helpers: 0 or -EINVAL. */
int emu_parse_u64(const char *s, uint64_t *ret);
int emu_parse_hex(const char *s, uint8_t **ret_buf, size_t *ret_len);
int emu_parse_signal(const char *s, int *ret_sig);
const char *emu_signal_name(int sig);
