/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* A backlog bigger than this while frozen means something else is wrong. */
#define HELD_MAX 4096

typedef struct held_line {
	GLogLevelFlags level;
	gint64 when_us;
	char *message;
} held_line;

static struct {
	GMutex lock;
	hv_log_target target;
	bool debug;
	unsigned int hold_depth;
	GPtrArray *held;
	unsigned int dropped;
	FILE *stream;
	bool syslog_open;
	bool writer_set;
} log_state = {
	.target = HV_LOG_TARGET_STDERR,
};

static const char *const target_names[_HV_LOG_TARGET_MAX] = {
	[HV_LOG_TARGET_AUTO] = "auto",
	[HV_LOG_TARGET_STDERR] = "stderr",
	[HV_LOG_TARGET_JOURNAL] = "journal",
	[HV_LOG_TARGET_SYSLOG] = "syslog",
};

hv_log_target hv_log_target_from_string(const char *s)
{
	if (!s)
		return _HV_LOG_TARGET_INVALID;

	for (int i = 0; i < _HV_LOG_TARGET_MAX; i++)
		if (strcmp(s, target_names[i]) == 0)
			return (hv_log_target)i;

	return _HV_LOG_TARGET_INVALID;
}

const char *hv_log_target_to_string(hv_log_target target)
{
	if (target < 0 || target >= _HV_LOG_TARGET_MAX)
		return NULL;

	return target_names[target];
}

static const char *level_prefix(GLogLevelFlags level)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return "error: ";
	if (level & G_LOG_LEVEL_WARNING)
		return "warning: ";
	if (level & G_LOG_LEVEL_DEBUG)
		return "debug: ";
	return "";
}

static int level_to_priority(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return LOG_ERR;
	if (level & G_LOG_LEVEL_CRITICAL)
		return LOG_ERR;
	if (level & G_LOG_LEVEL_WARNING)
		return LOG_WARNING;
	if (level & G_LOG_LEVEL_MESSAGE)
		return LOG_NOTICE;
	if (level & G_LOG_LEVEL_INFO)
		return LOG_INFO;
	return LOG_DEBUG;
}

static void emit(GLogLevelFlags level, const char *message)
{
	switch (log_state.target) {
	case HV_LOG_TARGET_JOURNAL: {
		const GLogField fields[] = {
			{ "MESSAGE", message, -1 },
			{ "PRIORITY", (char[]){ (char)('0' + level_to_priority(level)), 0 }, -1 },
			{ "SYSLOG_IDENTIFIER", g_get_prgname() ? g_get_prgname() : "hyperv", -1 },
		};

		if (g_log_writer_journald(level, fields, G_N_ELEMENTS(fields), NULL) ==
		    G_LOG_WRITER_HANDLED)
			return;
		break;
	}
	case HV_LOG_TARGET_SYSLOG:
		syslog(level_to_priority(level), "%s", message);
		return;
	case HV_LOG_TARGET_STDERR:
	case HV_LOG_TARGET_AUTO:
	case _HV_LOG_TARGET_MAX:
	case _HV_LOG_TARGET_INVALID:
		break;
	}

	fprintf(log_state.stream ? log_state.stream : stderr, "%s%s\n", level_prefix(level),
		message);
	fflush(log_state.stream ? log_state.stream : stderr);
}

static void held_line_free(gpointer p)
{
	held_line *l = p;

	g_free(l->message);
	g_free(l);
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
			       gpointer user_data)
{
	const char *message = NULL;

	if ((level & G_LOG_LEVEL_DEBUG) && !log_state.debug)
		return G_LOG_WRITER_HANDLED;

	for (gsize i = 0; i < n_fields; i++)
		if (strcmp(fields[i].key, "MESSAGE") == 0) {
			message = fields[i].value;
			break;
		}

	if (!message)
		return G_LOG_WRITER_UNHANDLED;

	g_mutex_lock(&log_state.lock);
	if (log_state.hold_depth > 0) {
		if (log_state.held->len < HELD_MAX) {
			held_line *l = g_new0(held_line, 1);

			l->level = level;
			l->when_us = g_get_monotonic_time();
			l->message = g_strdup(message);
			g_ptr_array_add(log_state.held, l);
		} else {
			log_state.dropped++;
		}
	} else {
		emit(level, message);
	}
	g_mutex_unlock(&log_state.lock);

	return G_LOG_WRITER_HANDLED;
}

static hv_log_target detect_target(void)
{
	if (g_log_writer_is_journald(STDERR_FILENO))
		return HV_LOG_TARGET_JOURNAL;

	if (fcntl(STDERR_FILENO, F_GETFD) >= 0)
		return HV_LOG_TARGET_STDERR;

	return HV_LOG_TARGET_SYSLOG;
}

void hv_log_setup(const char *ident, hv_log_target target, bool debug)
{
	const char *env = g_getenv("HV_DEBUG");

	if (ident)
		g_set_prgname(ident);

	if (target == HV_LOG_TARGET_AUTO || target < 0 || target >= _HV_LOG_TARGET_MAX)
		target = detect_target();

	log_state.target = target;
	log_state.debug = debug || (env && *env && strcmp(env, "0") != 0);
	if (!log_state.held)
		log_state.held = g_ptr_array_new_with_free_func(held_line_free);

	if (target == HV_LOG_TARGET_SYSLOG && !log_state.syslog_open) {
		openlog(g_get_prgname(), LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_state.syslog_open = true;
	}

	/* glib allows setting the writer only once per process. */
	if (!log_state.writer_set)
		g_log_set_writer_func(writer, NULL, NULL);
	log_state.writer_set = true;
}

void hv_log_set_debug(bool debug)
{
	log_state.debug = debug;
}

bool hv_log_debug_enabled(void)
{
	return log_state.debug;
}

hv_log_target hv_log_get_target(void)
{
	return log_state.target;
}

void hv_log_set_stream(FILE *stream)
{
	log_state.stream = stream;
}

void hv_log_hold(void)
{
	g_mutex_lock(&log_state.lock);
	if (!log_state.held)
		log_state.held = g_ptr_array_new_with_free_func(held_line_free);
	log_state.hold_depth++;
	g_mutex_unlock(&log_state.lock);
}

void hv_log_release(void)
{
	g_mutex_lock(&log_state.lock);
	if (log_state.hold_depth == 0 || --log_state.hold_depth > 0) {
		g_mutex_unlock(&log_state.lock);
		return;
	}

	for (guint i = 0; i < log_state.held->len; i++) {
		const held_line *l = g_ptr_array_index(log_state.held, i);
		g_autofree char *m = g_strdup_printf(
			"%s (held while frozen, %.1f ms ago)", l->message,
			(double)(g_get_monotonic_time() - l->when_us) / 1000.0);

		emit(l->level, m);
	}
	g_ptr_array_set_size(log_state.held, 0);

	if (log_state.dropped > 0) {
		g_autofree char *m = g_strdup_printf(
			"%u log lines were dropped while file systems were frozen",
			log_state.dropped);

		emit(G_LOG_LEVEL_WARNING, m);
		log_state.dropped = 0;
	}
	g_mutex_unlock(&log_state.lock);
}

bool hv_log_is_held(void)
{
	return log_state.hold_depth > 0;
}

int hv_log_errno_full(GLogLevelFlags level, int r, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list ap;

	/* glibc's printf expands %m from errno. */
	errno = r < 0 ? -r : r;
	va_start(ap, format);
	message = g_strdup_vprintf(format, ap);
	va_end(ap);

	g_log_structured(G_LOG_DOMAIN, level, "MESSAGE", "%s", message);
	return r;
}
