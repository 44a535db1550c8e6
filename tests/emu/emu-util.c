/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "emu-util.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t tl_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tl_t0;
static bool tl_quiet;
static FILE *tl_out;

uint64_t emu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * EMU_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void emu_ns_to_timespec(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / EMU_NSEC_PER_SEC);
	ts->tv_nsec = (long)(ns % EMU_NSEC_PER_SEC);
}

void emu_timeline_init(bool quiet, FILE *out)
{
	tl_t0 = emu_now_ns();
	tl_quiet = quiet;
	tl_out = out ? out : stdout;
}

uint64_t emu_t0_ns(void)
{
	return tl_t0;
}

bool emu_timeline_quiet(void)
{
	return tl_quiet;
}

static void tl_vprint(uint64_t t_ns, const char *fmt, va_list ap)
{
	char buf[2048];

	if (!t_ns)
		t_ns = emu_now_ns();

	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_mutex_lock(&tl_lock);
	fprintf(tl_out ? tl_out : stdout, "%9.2f ms  %s\n", emu_ms(tl_t0, t_ns), buf);
	fflush(tl_out ? tl_out : stdout);
	pthread_mutex_unlock(&tl_lock);
}

void emu_tl_at(uint64_t t_ns, const char *fmt, ...)
{
	va_list ap;

	if (tl_quiet)
		return;

	va_start(ap, fmt);
	tl_vprint(t_ns, fmt, ap);
	va_end(ap);
}

void emu_tl_always(uint64_t t_ns, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tl_vprint(t_ns, fmt, ap);
	va_end(ap);
}

void emu_tl_raw(bool always, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	if (tl_quiet && !always)
		return;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&tl_lock);
	fputs(buf, tl_out ? tl_out : stdout);
	fputc('\n', tl_out ? tl_out : stdout);
	fflush(tl_out ? tl_out : stdout);
	pthread_mutex_unlock(&tl_lock);
}

int emu_thread_start(pthread_t *ret, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(ret, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

void emu_sleep_ms(uint64_t ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int emu_parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;

	*ret = v;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex bytes; spaces, '.', ',' and '_' between bytes are ignored. */
int emu_parse_hex(const char *s, uint8_t **ret_buf, size_t *ret_len)
{
	size_t n = 0, cap = strlen(s) / 2 + 1;
	uint8_t *buf;
	int hi = -1;

	if (!strncasecmp(s, "0x", 2))
		s += 2;

	buf = calloc(1, cap);
	if (!buf)
		return -ENOMEM;

	for (; *s; s++) {
		int v;

		if (strchr(" ._,", *s) && hi < 0)
			continue;

		v = hex_digit(*s);
		if (v < 0)
			goto fail;

		if (hi < 0) {
			hi = v;
			continue;
		}

		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}

	if (hi >= 0 || n == 0)
		goto fail;

	*ret_buf = buf;
	*ret_len = n;
	return 0;

fail:
	free(buf);
	return -EINVAL;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT },
	{ "ABRT", SIGABRT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },
	{ "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
};

int emu_parse_signal(const char *s, int *ret_sig)
{
	uint64_t v;

	if (!strncasecmp(s, "SIG", 3))
		s += 3;

	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		if (!strcasecmp(s, signals[i].name)) {
			*ret_sig = signals[i].sig;
			return 0;
		}
	}

	if (emu_parse_u64(s, &v) < 0 || v == 0 || v >= 65)
		return -EINVAL;

	*ret_sig = (int)v;
	return 0;
}

const char *emu_signal_name(int sig)
{
	static __thread char buf[16];

	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		if (signals[i].sig == sig) {
			snprintf(buf, sizeof(buf), "SIG%s", signals[i].name);
			return buf;
		}
	}

	snprintf(buf, sizeof(buf), "signal %d", sig);
	return buf;
}
