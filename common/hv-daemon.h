/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon skeleton shared by every service: options, configuration,
 * logging, signals as glib sources, readiness notification, the main loop.
 * A service hands in its ops table; main.c is a few lines.
 *
 * Exit codes: 0 stopped on request, 1 failure at run time, 2 bad usage or
 * configuration.
 */
#pragma once

#include <glib.h>
#include <glib-unix.h>

#include "hv-config.h"

#define HV_EXIT_OK 0
#define HV_EXIT_FAILURE 1
#define HV_EXIT_USAGE 2

typedef struct hv_daemon hv_daemon;

typedef struct hv_daemon_ops {
	const char *name;             /* program name, e.g. "hv_vss_daemon" */
	const char *summary;          /* one line for --help */
	const char *const *known_keys; /* "group.key" accepted in the configuration */
	GOptionEntry *options;        /* service options, may be NULL */
	/*
	 * Runs before the daemon proper when it returns >= 0 (an exit code), e.g.
	 * for a one-shot command given on the command line. May be NULL.
	 */
	int (*command)(hv_daemon *d);
	/*
	 * After options and configuration, before any glib source or thread
	 * exists (so a service may fork() here). Creates the service object.
	 */
	int (*init)(hv_daemon *d, void **ret_self);
	/* Opens the kernel interface and adds sources; a failure ends the daemon. */
	int (*start)(void *self);
	/* SIGTERM/SIGINT: wind down (thaw...), then call hv_daemon_quit(). */
	void (*stop)(void *self);
	void (*free)(void *self);
} hv_daemon_ops;

/* Runs the daemon; returns the process exit code. */
int hv_daemon_main(const hv_daemon_ops *ops, int argc, char **argv);

const hv_config *hv_daemon_get_config(const hv_daemon *d);
/* --device, or NULL */
const char *hv_daemon_get_device(const hv_daemon *d);
/* --transport, or NULL */
const char *hv_daemon_get_transport(const hv_daemon *d);
/* Where state markers live: --runtime-dir, [daemon] runtime-dir, or the built-in /run dir. */
const char *hv_daemon_get_runtime_dir(const hv_daemon *d);
const char *hv_daemon_get_name(const hv_daemon *d);
/* Ends the main loop with @exit_code. */
void hv_daemon_quit(hv_daemon *d, int exit_code);

/*
 * g_unix_fd_add() for a device fd whose handler never runs the main loop
 * itself: the source may recurse, so GLib does not take the fd out of the
 * poll set and put it back around every dispatch (two eventfd wake-ups and
 * one more poll() per request; one more round trip on a FUSE device).
 */
guint hv_unix_fd_add_direct(int fd, GIOCondition cond, GUnixFDSourceFunc func, gpointer data);
