/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging: one writer for every glib log call. stderr when run by hand,
 * the journal when stderr is connected to it, syslog otherwise. While file
 * systems are frozen, output is held in memory and written after the thaw:
 * a log line that reaches a frozen disk would block the daemon.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum hv_log_target {
	HV_LOG_TARGET_AUTO,
	HV_LOG_TARGET_STDERR,
	HV_LOG_TARGET_JOURNAL,
	HV_LOG_TARGET_SYSLOG,
	_HV_LOG_TARGET_MAX,
	_HV_LOG_TARGET_INVALID = -1,
} hv_log_target;

hv_log_target hv_log_target_from_string(const char *s);
const char *hv_log_target_to_string(hv_log_target target);

/* Installs the writer. @debug enables debug messages (so does HV_DEBUG=1). */
void hv_log_setup(const char *ident, hv_log_target target, bool debug);
void hv_log_set_debug(bool debug);
bool hv_log_debug_enabled(void);
/* The target actually in use (never AUTO after setup). */
hv_log_target hv_log_get_target(void);

/* Hold every line in memory until hv_log_release(). Nests. */
void hv_log_hold(void);
void hv_log_release(void);
bool hv_log_is_held(void);

/*
 * Logs a message whose "%m" stands for strerror(-r), and returns @r, so that
 * "return hv_log_errno(r, "Failed to open '%s': %m", path);" is one statement.
 */
int hv_log_errno_full(GLogLevelFlags level, int r, const char *format, ...) G_GNUC_PRINTF(3, 4);
#define hv_log_errno(r, ...) hv_log_errno_full(G_LOG_LEVEL_WARNING, (r), __VA_ARGS__)
#define hv_log_error_errno(r, ...) hv_log_errno_full(G_LOG_LEVEL_CRITICAL, (r), __VA_ARGS__)
#define hv_log_debug_errno(r, ...) hv_log_errno_full(G_LOG_LEVEL_DEBUG, (r), __VA_ARGS__)

/* For tests: where stderr output goes (NULL: the real stderr). */
void hv_log_set_stream(FILE *stream);
