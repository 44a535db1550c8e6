/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-daemon.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv-log.h"
#include "hv-notify.h"

struct hv_daemon {
	const hv_daemon_ops *ops;
	GMainLoop *loop;
	hv_config *config;
	void *self;
	int exit_code;
	bool stopping;
	guint signal_ids[3];

	/* options */
	gboolean no_daemon;
	gboolean debug;
	gboolean version;
	char *device;
	char *transport;
	char *config_path;
	char *runtime_dir;
	char *log_target;
};

const hv_config *hv_daemon_get_config(const hv_daemon *d)
{
	return d->config;
}

const char *hv_daemon_get_device(const hv_daemon *d)
{
	return d->device;
}

const char *hv_daemon_get_transport(const hv_daemon *d)
{
	return d->transport;
}

const char *hv_daemon_get_runtime_dir(const hv_daemon *d)
{
	return d->runtime_dir;
}

const char *hv_daemon_get_name(const hv_daemon *d)
{
	return d->ops->name;
}

void hv_daemon_quit(hv_daemon *d, int exit_code)
{
	d->exit_code = exit_code;
	if (d->loop)
		g_main_loop_quit(d->loop);
}

static gboolean on_stop_signal(gpointer user_data)
{
	hv_daemon *d = user_data;

	if (d->stopping) {
		g_info("Stop already in progress");
		return G_SOURCE_CONTINUE;
	}

	d->stopping = true;
	g_info("Stopping on request");
	hv_notify("STOPPING=1");
	if (d->ops->stop)
		d->ops->stop(d->self);
	else
		hv_daemon_quit(d, HV_EXIT_OK);
	return G_SOURCE_CONTINUE;
}

static gboolean on_hup(gpointer user_data)
{
	g_info("SIGHUP received; configuration is read at start-up only, restart to apply changes, ignoring");
	return G_SOURCE_CONTINUE;
}

static int parse_options(hv_daemon *d, int *argc, char ***argv)
{
	GOptionEntry common[] = {
		{ "no-daemon", 'n', 0, G_OPTION_ARG_NONE, &d->no_daemon,
		  "Accepted for compatibility; the daemon always runs in the foreground", NULL },
		{ "debug", 'd', 0, G_OPTION_ARG_NONE, &d->debug, "Log debug messages", NULL },
		{ "device", 0, 0, G_OPTION_ARG_FILENAME, &d->device,
		  "Kernel device to use instead of the default", "PATH" },
		{ "transport", 0, 0, G_OPTION_ARG_STRING, &d->transport,
		  "Kernel interface: auto (char device if present, else the netlink connector), chardev or netlink", "NAME" },
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &d->config_path,
		  "Configuration file (default " HV_CONFIG_DEFAULT_PATH ")", "PATH" },
		{ "runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &d->runtime_dir,
		  "Directory for state markers (default " HV_RUNSTATEDIR ")", "DIR" },
		{ "log-target", 0, 0, G_OPTION_ARG_STRING, &d->log_target,
		  "auto, stderr, journal or syslog", "TARGET" },
		{ "version", 'V', 0, G_OPTION_ARG_NONE, &d->version, "Show the version and exit",
		  NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;

	g_option_context_set_summary(ctx, d->ops->summary);
	g_option_context_add_main_entries(ctx, common, NULL);
	if (d->ops->options)
		g_option_context_add_main_entries(ctx, d->ops->options, NULL);

	if (!g_option_context_parse(ctx, argc, argv, &error)) {
		fprintf(stderr, "%s: %s\nTry '%s --help'.\n", d->ops->name, error->message,
			d->ops->name);
		return -EINVAL;
	}

	if (*argc > 1) {
		fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", d->ops->name,
			(*argv)[1], d->ops->name);
		return -EINVAL;
	}

	return 0;
}

static int load_config(hv_daemon *d)
{
	g_autofree char *error = NULL;
	g_autofree char *dir = NULL;
	g_autoptr(GPtrArray) unknown = NULL;
	g_autoptr(GStrvBuilder) known = g_strv_builder_new();
	g_auto(GStrv) known_keys = NULL;
	static const char *const common_keys[] = { "daemon.runtime-dir", "daemon.log-target",
						   "daemon.debug", NULL };
	/* The sections of the daemons of the suite, besides [daemon]. */
	static const char *const suite_groups[] = { "vss", "kvp", "fcopy", NULL };
	bool debug = false;
	int r;

	r = hv_config_load(d->config_path, &d->config, &error);
	if (r < 0) {
		g_critical("Failed to read the configuration: %s", error ? error : g_strerror(-r));
		return r;
	}

	/* The keys are matched as names, never parsed back out of the message. */
	for (const char *const *k = common_keys; *k; k++)
		g_strv_builder_add(known, *k);
	for (const char *const *k = d->ops->known_keys; k && *k; k++)
		g_strv_builder_add(known, *k);
	/*
	 * One file serves the whole suite: the other daemons' sections are
	 * theirs to check. A section of ours, or one that is nobody's, is checked.
	 */
	for (const char *const *g = suite_groups; *g; g++) {
		g_autofree char *prefix = g_strdup_printf("%s.", *g);
		g_autofree char *whole = g_strdup_printf("%s.*", *g);
		bool own = false;

		for (const char *const *k = d->ops->known_keys; k && *k && !own; k++)
			own = g_str_has_prefix(*k, prefix);
		if (!own)
			g_strv_builder_add(known, whole);
	}
	known_keys = g_strv_builder_end(known);
	unknown = hv_config_unknown_keys(d->config, (const char *const *)known_keys);
	for (guint i = 0; i < unknown->len; i++)
		g_warning("Unknown configuration key %s, ignoring",
			  (const char *)g_ptr_array_index(unknown, i));

	r = hv_config_get_bool(d->config, "daemon", "debug", false, &debug, &error);
	if (r < 0) {
		g_critical("%s", error);
		return r;
	}
	if (debug)
		hv_log_set_debug(true);

	/* --log-target wins over the file; the names are hv_log_target's, in order. */
	if (!d->log_target) {
		static const char *const target_names[] = { "auto", "stderr", "journal", "syslog",
							    NULL };
		int target = HV_LOG_TARGET_AUTO;

		r = hv_config_get_enum(d->config, "daemon", "log-target", target_names,
				       HV_LOG_TARGET_AUTO, &target, &error);
		if (r < 0) {
			g_critical("%s", error);
			return r;
		}
		if (target != HV_LOG_TARGET_AUTO)
			hv_log_setup(d->ops->name, (hv_log_target)target, hv_log_debug_enabled());
	}

	if (!d->runtime_dir) {
		r = hv_config_get_string(d->config, "daemon", "runtime-dir", HV_RUNSTATEDIR, &dir,
					 &error);
		if (r < 0) {
			g_critical("%s", error);
			return r;
		}
		d->runtime_dir = g_steal_pointer(&dir);
	}

	if (!g_path_is_absolute(d->runtime_dir)) {
		g_critical("Runtime directory '%s' (from %s) must be an absolute path",
			   d->runtime_dir, hv_config_origin(d->config, "daemon", "runtime-dir"));
		return -EINVAL;
	}

	return 0;
}

static void daemon_clear(hv_daemon *d)
{
	for (size_t i = 0; i < G_N_ELEMENTS(d->signal_ids); i++)
		g_clear_handle_id(&d->signal_ids[i], g_source_remove);

	if (d->self && d->ops->free)
		d->ops->free(d->self);
	d->self = NULL;

	g_clear_pointer(&d->loop, g_main_loop_unref);
	g_clear_pointer(&d->config, hv_config_free);
	g_clear_pointer(&d->device, g_free);
	g_clear_pointer(&d->transport, g_free);
	g_clear_pointer(&d->config_path, g_free);
	g_clear_pointer(&d->runtime_dir, g_free);
	g_clear_pointer(&d->log_target, g_free);
}

guint hv_unix_fd_add_direct(int fd, GIOCondition cond, GUnixFDSourceFunc func, gpointer data)
{
	GSource *src = g_unix_fd_source_new(fd, cond);
	guint id;

	g_source_set_callback(src, G_SOURCE_FUNC(func), data, NULL);
	g_source_set_can_recurse(src, TRUE);
	id = g_source_attach(src, NULL);
	g_source_unref(src);
	return id;
}

int hv_daemon_main(const hv_daemon_ops *ops, int argc, char **argv)
{
	hv_daemon d = { .ops = ops, .exit_code = HV_EXIT_OK };
	hv_log_target target = HV_LOG_TARGET_AUTO;
	int r;

	/* A reader that went away must not kill a daemon that may hold file systems frozen. */
	signal(SIGPIPE, SIG_IGN);

	r = parse_options(&d, &argc, &argv);
	if (r < 0) {
		daemon_clear(&d);
		return HV_EXIT_USAGE;
	}

	if (d.version) {
		printf("%s (hyperv-daemons) %s\n", ops->name, HV_VERSION);
		daemon_clear(&d);
		return HV_EXIT_OK;
	}

	if (d.log_target) {
		target = hv_log_target_from_string(d.log_target);
		if (target == _HV_LOG_TARGET_INVALID) {
			fprintf(stderr, "%s: --log-target: '%s' is not one of auto, stderr, journal, syslog\n",
				ops->name, d.log_target);
			daemon_clear(&d);
			return HV_EXIT_USAGE;
		}
	}
	hv_log_setup(ops->name, target, d.debug);

	r = load_config(&d);
	if (r < 0) {
		daemon_clear(&d);
		return HV_EXIT_USAGE;
	}

	if (g_mkdir_with_parents(d.runtime_dir, 0755) < 0) {
		r = -errno;
		hv_log_error_errno(r, "Failed to create the runtime directory '%s': %m", d.runtime_dir);
		daemon_clear(&d);
		return HV_EXIT_FAILURE;
	}

	if (ops->command) {
		r = ops->command(&d);
		if (r >= 0) {
			daemon_clear(&d);
			return r;
		}
	}

	r = ops->init(&d, &d.self);
	if (r < 0) {
		daemon_clear(&d);
		return r == -EINVAL ? HV_EXIT_USAGE : HV_EXIT_FAILURE;
	}

	d.loop = g_main_loop_new(NULL, FALSE);
	d.signal_ids[0] = g_unix_signal_add(SIGTERM, on_stop_signal, &d);
	d.signal_ids[1] = g_unix_signal_add(SIGINT, on_stop_signal, &d);
	d.signal_ids[2] = g_unix_signal_add(SIGHUP, on_hup, NULL);

	r = ops->start(d.self);
	if (r < 0) {
		daemon_clear(&d);
		return HV_EXIT_FAILURE;
	}

	hv_notify("READY=1");
	g_main_loop_run(d.loop);
	hv_notify("STOPPING=1");

	r = d.exit_code;
	daemon_clear(&d);
	return r;
}
