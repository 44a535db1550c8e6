/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vss-daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv-connector.h"
#include "hv-freeze.h"
#include "hv-log.h"
#include "hv-macro.h"
#include "hv-mount.h"
#include "hv-notify.h"
#include "hv-sched-boost.h"
#include "hv-status.h"
#include "hv-transport.h"
#include "vss-hooks.h"
#include "vss-state.h"

#define VSS_GROUP "vss"
#define VSS_DEFAULT_DEVICE "/dev/vmbus/hv_vss"
#define VSS_DEFAULT_FREEZE_TIMEOUT_S 120
#define VSS_MARKER_NAME "vss-frozen"
#define VSS_STATUS_NAME "vss-status"
#define VSS_DEFAULT_HOOK_TIMEOUT_S 30
#define VSS_HISTORY_MAX 10
#define VSS_REOPEN_MIN_MS 250
#define VSS_REOPEN_MAX_MS 10000

typedef enum vss_foreign_policy {
	VSS_FOREIGN_FAIL,
	VSS_FOREIGN_IGNORE,
} vss_foreign_policy;

static const char *const foreign_policy_names[] = { "fail", "ignore", NULL };

typedef struct vss_config {
	hv_transport_kind transport;
	char *device;
	unsigned int freeze_timeout_s;
	char **exclude_mountpoints;
	char **exclude_fstypes;
	bool preflush;
	bool parallel_freeze;
	char *hooks_dir;
	unsigned int hook_timeout_s;
	vss_foreign_policy foreign;
} vss_config;

typedef struct vss_backup {
	gint64 started;          /* g_get_real_time() */
	unsigned int n_fs;
	double freeze_ms;        /* FREEZE received -> all frozen */
	double frozen_ms;        /* last freeze -> thaw start */
	double thaw_ms;
	char *result;            /* "ok", "freeze failed: ...", "auto-thawed", ... */
} vss_backup;

typedef struct vss_daemon {
	hv_daemon *daemon;
	vss_config cfg;
	char *marker_path;
	hv_freeze_guard *guard;

	hv_transport *transport;
	guint io_source;
	guint reopen_source;
	unsigned int reopen_delay_ms;
	bool reopen_error_logged;

	vss_state state;
	uint8_t op;              /* op of the request being answered */
	hv_freeze *freeze;
	guint auto_thaw_source;
	gint64 frozen_since_us;
	/* begun when a freeze succeeds (with ->freeze), ended at the THAW's reply (do_thaw()) */
	hv_sched_boost boost;
	gint64 freeze_started_us;
	unsigned int n_backups;

	GPtrArray *hooks;        /* the hooks that ran "freeze" for the current backup */
	vss_backup history[VSS_HISTORY_MAX]; /* newest first */
	unsigned int n_history;
	gint64 state_since;      /* g_get_real_time() */
	char *status_path;
	bool status_stale;       /* the status file is behind: written by flush_status() */
} vss_daemon;

static const hv_service vss_service = {
	.name = "vss",
	.device = VSS_DEFAULT_DEVICE,
	.max_msg = 2 * 4096, /* the driver's largest VSS packet */
	.register_msg = &(const struct hv_vss_msg){ .vss_hdr.operation = HV_VSS_OP_REGISTER1 },
	.register_len = sizeof(struct hv_vss_msg),
	.register_reply_len = sizeof(hv_vss_version),
	.parse_register_reply = vss_parse_register_reply,
	.cn_idx = HV_CN_VSS_IDX,
	.cn_val = HV_CN_VSS_VAL,
	/* old drivers: REGISTER over the connector, no answer (never on the char device) */
	.legacy_register_msg = &(const struct hv_vss_msg){ .vss_hdr.operation = HV_VSS_OP_REGISTER },
	.legacy_register_len = sizeof(struct hv_vss_msg),
	.legacy_version = HV_VSS_OP_REGISTER,
};

static gboolean thaw_all;
static gboolean thaw_force;
static gboolean show_status;
static gboolean allow_user_peer;
static GOptionEntry vss_options[] = {
	{ "thaw-all", 0, 0, G_OPTION_ARG_NONE, &thaw_all,
	  "Thaw every file system that the marker in the runtime directory says we froze, then exit",
	  NULL },
	{ "force", 0, 0, G_OPTION_ARG_NONE, &thaw_force,
	  "With --thaw-all: thaw every local file system a backup would freeze, whoever froze it",
	  NULL },
	{ "allow-user-peer", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &allow_user_peer,
	  "For tests only: over the netlink connector, talk to a user-space process (the emulated driver) instead of the kernel",
	  NULL },
	{ "status", 0, 0, G_OPTION_ARG_NONE, &show_status,
	  "Show the running daemon's state, its last backups and the freeze plan now, then exit",
	  NULL },
	{ NULL },
};

static const char *const vss_known_keys[] = {
	"vss.transport",	 "vss.device",	       "vss.freeze-timeout", "vss.exclude-mountpoints",
	"vss.exclude-fstypes", "vss.preflush",	       "vss.parallel-freeze", "vss.foreign-frozen",
	"vss.hooks-dir",	 "vss.hook-timeout",   NULL,
};

static void handle_event(vss_daemon *v, vss_event event);

static void vss_config_clear(vss_config *c)
{
	g_clear_pointer(&c->device, g_free);
	g_clear_pointer(&c->exclude_mountpoints, g_strfreev);
	g_clear_pointer(&c->exclude_fstypes, g_strfreev);
	g_clear_pointer(&c->hooks_dir, g_free);
}

static int vss_config_load(hv_daemon *d, vss_config *c)
{
	static const char *const transport_names[] = { "auto", "chardev", "netlink", NULL };
	const hv_config *cfg = hv_daemon_get_config(d);
	g_autofree char *error = NULL;
	int transport = HV_TRANSPORT_AUTO;
	int foreign = VSS_FOREIGN_FAIL;
	int r;

	if (hv_daemon_get_transport(d)) {
		c->transport = hv_transport_kind_from_string(hv_daemon_get_transport(d));
		if (c->transport == _HV_TRANSPORT_KIND_INVALID) {
			g_critical("--transport: '%s' is not one of auto, chardev, netlink",
				   hv_daemon_get_transport(d));
			return -EINVAL;
		}
	} else {
		r = hv_config_get_enum(cfg, VSS_GROUP, "transport", transport_names,
				       HV_TRANSPORT_AUTO, &transport, &error);
		if (r < 0)
			goto bad;
		c->transport = (hv_transport_kind)transport;
	}

	if (hv_daemon_get_device(d))
		c->device = g_strdup(hv_daemon_get_device(d));
	else {
		r = hv_config_get_string(cfg, VSS_GROUP, "device", NULL, &c->device, &error);
		if (r < 0)
			goto bad;
	}

	r = hv_config_get_uint(cfg, VSS_GROUP, "freeze-timeout", VSS_DEFAULT_FREEZE_TIMEOUT_S, 1,
			       24 * 3600, &c->freeze_timeout_s, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_strv(cfg, VSS_GROUP, "exclude-mountpoints", &c->exclude_mountpoints,
			       &error);
	if (r < 0)
		goto bad;

	for (char **p = c->exclude_mountpoints; *p; p++)
		if (**p != '/') {
			g_critical("%s: [vss] exclude-mountpoints: '%s' is not valid: expected absolute paths or globs such as /data/*",
				   hv_config_origin(cfg, VSS_GROUP, "exclude-mountpoints"), *p);
			return -EINVAL;
		}

	r = hv_config_get_strv(cfg, VSS_GROUP, "exclude-fstypes", &c->exclude_fstypes, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_bool(cfg, VSS_GROUP, "preflush", true, &c->preflush, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_bool(cfg, VSS_GROUP, "parallel-freeze", true, &c->parallel_freeze,
			       &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_string(cfg, VSS_GROUP, "hooks-dir", VSS_HOOKS_DEFAULT_DIR, &c->hooks_dir,
				 &error);
	if (r < 0)
		goto bad;
	if (!g_path_is_absolute(c->hooks_dir)) {
		g_critical("%s: [vss] hooks-dir = '%s' is not valid: expected an absolute path",
			   hv_config_origin(cfg, VSS_GROUP, "hooks-dir"), c->hooks_dir);
		return -EINVAL;
	}

	r = hv_config_get_uint(cfg, VSS_GROUP, "hook-timeout", VSS_DEFAULT_HOOK_TIMEOUT_S, 1, 3600,
			       &c->hook_timeout_s, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_enum(cfg, VSS_GROUP, "foreign-frozen", foreign_policy_names,
			       VSS_FOREIGN_FAIL, &foreign, &error);
	if (r < 0)
		goto bad;
	c->foreign = (vss_foreign_policy)foreign;

	return 0;
bad:
	g_critical("%s", error);
	return r;
}

static void write_status(vss_daemon *v);

/*
 * The status file is written once an event has been handled, so after the
 * reply to the host (see handle_event()): it is for --status, the host is
 * not waiting for it.
 */
static void flush_status(vss_daemon *v)
{
	if (!v->status_stale)
		return;

	v->status_stale = false;
	write_status(v);
}

static void set_state(vss_daemon *v, vss_state next)
{
	if (next == v->state)
		return;

	g_debug("State %s -> %s", vss_state_to_string(v->state), vss_state_to_string(next));
	v->state = next;
	v->state_since = g_get_real_time();
	v->status_stale = true;
}

static void send_reply(vss_daemon *v, uint32_t status)
{
	struct hv_vss_msg reply;
	int r;

	vss_build_reply(v->op, status, &reply);
	r = hv_transport_send(v->transport, &reply, sizeof(reply));
	if (r >= 0) {
		g_debug("Replied to %s: %s", vss_op_to_string(v->op),
			status == HV_S_OK ? "ok" : "failed");
		return;
	}

	hv_log_errno(r, "Failed to send the reply to %s: %m", vss_op_to_string(v->op));
	/*
	 * -EINVAL/-EFAULT: the driver gave up on this request (its timeout)
	 * but the device still works. Anything else: the device is gone.
	 */
	handle_event(v, r == -EINVAL || r == -EFAULT ? VSS_EVENT_REPLY_FAILED
						     : VSS_EVENT_TRANSPORT_LOST);
}

static void log_freeze_entries(const hv_freeze *f, bool verbose)
{
	for (unsigned int i = 0; i < hv_freeze_n_entries(f); i++) {
		const hv_freeze_entry *e = hv_freeze_get_entry(f, i);

		if (e->error < 0)
			hv_log_errno(e->error, "%s (%s): %s: %m", e->mountpoint, e->fstype,
				     hv_freeze_result_to_string(e->result));
		else if (verbose)
			g_info("%s (%s): %s, wave %u, freeze %.2f ms, thaw %.2f ms", e->mountpoint,
			       e->fstype, hv_freeze_result_to_string(e->result), e->wave,
			       (double)e->freeze_us / 1000.0, (double)e->thaw_us / 1000.0);
		else
			g_debug("%s (%s): %s", e->mountpoint, e->fstype,
				hv_freeze_result_to_string(e->result));
	}
}

static int build_plan(vss_daemon *v, hv_freeze_plan **ret)
{
	g_autoptr(hv_mount_table) table = NULL;
	hv_freeze_policy policy = {
		.exclude_mountpoints = (const char *const *)v->cfg.exclude_mountpoints,
		.exclude_fstypes = (const char *const *)v->cfg.exclude_fstypes,
	};
	int r;

	r = hv_mount_table_load(NULL, &table);
	if (r < 0)
		return hv_log_errno(r, "Failed to read the mount table: %m");

	r = hv_freeze_plan_build(table, &policy, ret);
	if (r < 0)
		return hv_log_errno(r, "Failed to plan the freeze: %m");

	return 0;
}

static gboolean on_auto_thaw(gpointer user_data)
{
	vss_daemon *v = user_data;

	v->auto_thaw_source = 0;
	handle_event(v, VSS_EVENT_AUTO_THAW);
	return G_SOURCE_REMOVE;
}

/* Logs what a hook printed, one line each, and how it ended. */
static void log_hook(const char *path, const char *arg, int r, const vss_hook_result *res)
{
	g_autofree char *name = g_path_get_basename(path);

	if (res->output && *res->output) {
		g_auto(GStrv) lines = g_strsplit(res->output, "\n", -1);

		for (char **l = lines; *l; l++)
			if (**l)
				g_info("hook %s %s: %s", name, arg, *l);
	}
	if (res->truncated)
		g_info("hook %s %s: (output truncated at 64 KiB)", name, arg);

	if (r == -ETIMEDOUT)
		g_warning("Hook %s %s did not finish within %.0f s and was killed", name, arg,
			  (double)res->duration_us / 1e6);
	else if (r == -EPROTO)
		g_warning("Hook %s %s failed with exit status %d", name, arg, res->status);
	else if (r < 0)
		hv_log_errno(r, "Hook %s %s could not be started: %m", name, arg);
	else
		g_debug("Hook %s %s done in %.1f ms", name, arg, (double)res->duration_us / 1000.0);
}

/* Runs hooks[0..n) (in reverse when @reverse) with @arg; all run; first error returned. */
static int run_hooks(vss_daemon *v, GPtrArray *hooks, guint n, const char *arg, bool reverse)
{
	int first = 0;

	for (guint k = 0; hooks && k < n; k++) {
		const char *path = g_ptr_array_index(hooks, reverse ? n - 1 - k : k);
		vss_hook_result res;
		int r = vss_hook_run(path, arg, v->cfg.hook_timeout_s * 1000, &res);

		log_hook(path, arg, r, &res);
		vss_hook_result_clear(&res);
		if (r < 0 && first == 0)
			first = r;
	}

	return first;
}

/*
 * Runs every hook with "freeze", in name order, stopping at the first that
 * fails; those that already ran get "freeze-fail" in reverse. On success
 * v->hooks holds the list for the thaw.
 */
static int run_freeze_hooks(vss_daemon *v)
{
	g_autoptr(GPtrArray) hooks = NULL;
	g_autoptr(GPtrArray) skipped = NULL;
	int r;

	r = vss_hooks_list(v->cfg.hooks_dir, &hooks, &skipped);
	if (r < 0)
		return hv_log_errno(r, "Failed to read the hook directory %s: %m", v->cfg.hooks_dir);

	for (guint i = 0; i < skipped->len; i++) {
		const char *why = g_ptr_array_index(skipped, i);

		if (vss_hook_skip_is_refusal(why))
			g_warning("Hook not run: %s", why);
		else
			g_debug("Hook skipped: %s", why);
	}

	for (guint i = 0; i < hooks->len; i++) {
		const char *path = g_ptr_array_index(hooks, i);
		vss_hook_result res;

		r = vss_hook_run(path, "freeze", v->cfg.hook_timeout_s * 1000, &res);
		log_hook(path, "freeze", r, &res);
		vss_hook_result_clear(&res);
		if (r < 0) {
			/* The failing hook itself gets freeze-fail too: it may have half-prepared. */
			run_hooks(v, hooks, i + 1, "freeze-fail", true);
			return r;
		}
	}

	g_clear_pointer(&v->hooks, g_ptr_array_unref);
	v->hooks = g_steal_pointer(&hooks);
	return 0;
}

static void record_backup(vss_daemon *v, gint64 started, unsigned int n_fs, double freeze_ms,
			  double frozen_ms, double thaw_ms, const char *result)
{
	vss_backup *last = &v->history[VSS_HISTORY_MAX - 1];

	g_free(last->result);
	memmove(&v->history[1], &v->history[0], sizeof(v->history[0]) * (VSS_HISTORY_MAX - 1));
	v->history[0] = (vss_backup){
		.started = started,
		.n_fs = n_fs,
		.freeze_ms = freeze_ms,
		.frozen_ms = frozen_ms,
		.thaw_ms = thaw_ms,
		.result = g_strdup(result),
	};
	v->n_history = MIN(v->n_history + 1, VSS_HISTORY_MAX);
}

static char *iso_time(gint64 real_us)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(real_us / G_USEC_PER_SEC);

	return t ? g_date_time_format_iso8601(t) : g_strdup("?");
}

/*
 * Replaces @path with @text through a temporary file and rename(), so that a
 * reader sees the old or the new file whole. No fsync: it lives on a tmpfs.
 * (GLib 2.74's in-place mode does not truncate a longer old file.)
 */
static int write_file_replace(const char *path, const char *text)
{
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	size_t len = strlen(text);
	hv_autofd int fd = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;

	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			unlink(tmp);
			return r;
		}
		done += (size_t)n;
	}

	if (rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return 0;
}

/*
 * The status file in the runtime directory (a tmpfs), read by --status.
 * Never written while file systems are frozen.
 */
static void write_status(vss_daemon *v)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autofree char *data = NULL;
	g_autofree char *since = NULL;
	int r;

	/*
	 * The runtime directory is a tmpfs (like the marker's), so this is safe
	 * while frozen; an administrator sees "frozen since ...".
	 */
	if (!v->status_path)
		return;

	kf = g_key_file_new();
	since = iso_time(v->state_since);
	g_key_file_set_integer(kf, "daemon", "pid", (gint)getpid());
	g_key_file_set_string(kf, "daemon", "state", vss_state_to_string(v->state));
	g_key_file_set_string(kf, "daemon", "since", since);
	if (v->transport) {
		g_key_file_set_string(kf, "daemon", "transport", v->transport->ops->name);
		g_key_file_set_string(kf, "daemon", "device", v->transport->device);
		g_key_file_set_uint64(kf, "daemon", "driver-protocol", v->transport->version);
	}
	g_key_file_set_uint64(kf, "daemon", "backups", v->n_backups);

	for (unsigned int i = 0; i < v->n_history; i++) {
		const vss_backup *b = &v->history[i];
		g_autofree char *group = g_strdup_printf("backup %u", i + 1);
		g_autofree char *started = iso_time(b->started);

		g_key_file_set_string(kf, group, "started", started);
		g_key_file_set_string(kf, group, "result", b->result);
		g_key_file_set_uint64(kf, group, "file-systems", b->n_fs);
		g_key_file_set_double(kf, group, "freeze-ms", b->freeze_ms);
		g_key_file_set_double(kf, group, "frozen-ms", b->frozen_ms);
		g_key_file_set_double(kf, group, "thaw-ms", b->thaw_ms);
	}

	data = g_key_file_to_data(kf, NULL, NULL);
	r = write_file_replace(v->status_path, data);
	if (r < 0)
		hv_log_debug_errno(r, "Failed to write %s: %m", v->status_path);
}

static int do_freeze(vss_daemon *v)
{
	g_autoptr(hv_freeze_plan) plan = NULL;
	g_autoptr(hv_freeze) freeze = NULL;
	hv_freeze_options options = {
		.preflush = v->cfg.preflush,
		.parallel_freeze = v->cfg.parallel_freeze,
		.foreign_is_error = v->cfg.foreign == VSS_FOREIGN_FAIL,
		.marker_path = v->marker_path,
	};
	gint64 start = g_get_monotonic_time();
	int r;

	/* A marker left by a thaw that failed: try those again first. */
	r = hv_freeze_marker_recover(v->marker_path);
	if (r > 0)
		g_warning("Thawed %d file system%s left frozen by an earlier failed thaw", r,
			  r == 1 ? "" : "s");

	r = build_plan(v, &plan);
	if (r < 0)
		return r;

	for (guint i = 0; i < plan->skipped->len; i++) {
		const hv_plan_skip *s = g_ptr_array_index(plan->skipped, i);

		g_debug("Not freezing %s (%s): %s", s->mountpoint, s->fstype,
			hv_skip_reason_to_string(s->reason));
	}

	r = run_freeze_hooks(v);
	if (r < 0) {
		record_backup(v, g_get_real_time(), 0, 0, 0, 0, "failed: a freeze hook failed");
		return hv_log_errno(r, "A freeze hook failed, not freezing: %m");
	}

	g_info("Freezing %u file system%s in %u wave%s", plan->targets->len,
	       plan->targets->len == 1 ? "" : "s", plan->n_waves, plan->n_waves == 1 ? "" : "s");

	/* From here until the last thaw, nothing may be written to a disk: hold the log. */
	hv_log_hold();
	r = hv_freeze_execute(plan, &options, &freeze);
	if (r < 0) {
		g_autofree char *result = NULL;

		hv_log_release();
		if (freeze)
			log_freeze_entries(freeze, false);
		hv_log_errno(r, "Freeze failed, everything frozen so far was thawed again: %m");
		result = g_strdup_printf("failed: %s", g_strerror(-r));
		record_backup(v, g_get_real_time(), plan->targets->len,
			      (double)(g_get_monotonic_time() - start) / 1000.0, 0, 0, result);
		if (v->hooks)
			run_hooks(v, v->hooks, v->hooks->len, "freeze-fail", true);
		g_clear_pointer(&v->hooks, g_ptr_array_unref);
		return r;
	}

	v->freeze = g_steal_pointer(&freeze);
	v->frozen_since_us = g_get_monotonic_time();
	/*
	 * Boosted while frozen: the thread sleeps until the THAW comes, and
	 * wakes then ahead of the writers that wait for it (see do_thaw()).
	 */
	hv_sched_boost_begin(&v->boost);
	v->freeze_started_us = start;
	g_info("Frozen in %.2f ms", (double)(v->frozen_since_us - start) / 1000.0);
	v->auto_thaw_source = g_timeout_add_seconds(v->cfg.freeze_timeout_s, on_auto_thaw, v);
	return 0;
}

/*
 * With @reply, the host's THAW is answered as soon as the file systems are
 * thawed: nothing but the FITHAW calls comes before the reply; closing the
 * fds, the marker, logging, bookkeeping, the status file and the thaw hooks
 * come after it. The thread runs boosted (SCHED_FIFO when allowed) from the
 * end of the freeze to the reply: it sleeps most of that time, and when the
 * THAW comes it is woken ahead of the (CPU-bound or blocked) applications,
 * and the writers each FITHAW wakes do not preempt it before the last file
 * system is thawed and the host answered.
 */
static int do_thaw(vss_daemon *v, const char *why, bool reply)
{
	gint64 start = g_get_monotonic_time();
	int r = 0;

	g_clear_handle_id(&v->auto_thaw_source, g_source_remove);

	if (v->freeze) {
		g_autofree char *result = NULL;
		double thaw_ms;
		int h;

		r = hv_freeze_thaw_now(v->freeze);
		thaw_ms = (double)(g_get_monotonic_time() - start) / 1000.0;
		if (reply) {
			send_reply(v, r < 0 ? HV_E_FAIL : HV_S_OK);
			reply = false;
		}

		hv_sched_boost_end(&v->boost);
		hv_freeze_settle(v->freeze);
		hv_log_release();
		g_info("Thawed (%s) after %.1f ms frozen; thaw took %.2f ms (boost: %s)", why,
		       (double)(start - v->frozen_since_us) / 1000.0, thaw_ms,
		       hv_sched_boost_kind_to_string(v->boost.kind));
		if (v->boost.kind != HV_SCHED_BOOST_FIFO && v->boost.error < 0)
			hv_log_debug_errno(v->boost.error, "The thaw ran without SCHED_FIFO: %m");
		log_freeze_entries(v->freeze, hv_log_debug_enabled());
		if (r < 0)
			hv_log_errno(r, "Thaw failed on at least one file system (all were tried): %m");

		result = r < 0 ? g_strdup_printf("thaw failed: %s", g_strerror(-r))
			       : g_strdup_printf("ok (%s)", why);
		record_backup(v, g_get_real_time() - (g_get_monotonic_time() - v->freeze_started_us),
			      hv_freeze_n_entries(v->freeze),
			      (double)(v->frozen_since_us - v->freeze_started_us) / 1000.0,
			      (double)(start - v->frozen_since_us) / 1000.0, thaw_ms, result);
		g_clear_pointer(&v->freeze, hv_freeze_free);
		v->n_backups++;

		/* Every hook runs; a failure is reported once all have. */
		h = run_hooks(v, v->hooks, v->hooks ? v->hooks->len : 0, "thaw", true);
		if (h < 0)
			hv_log_errno(h, "At least one thaw hook failed (all were run): %m");
		g_clear_pointer(&v->hooks, g_ptr_array_unref);
	}

	if (reply)
		send_reply(v, r < 0 ? HV_E_FAIL : HV_S_OK);

	hv_notify_status("Idle; %u backup%s served", v->n_backups, v->n_backups == 1 ? "" : "s");
	v->status_stale = true;
	return r;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user_data);

static void close_transport(vss_daemon *v)
{
	g_clear_handle_id(&v->io_source, g_source_remove);
	hv_transport_close(v->transport);
}

static int open_transport(vss_daemon *v)
{
	int r = hv_transport_open(v->transport);

	if (r < 0)
		return r;

	/* on_readable() never runs the main loop itself. */
	v->io_source = hv_unix_fd_add_direct(v->transport->fd, G_IO_IN | G_IO_ERR | G_IO_HUP,
					     on_readable, v);
	if (v->transport->legacy_registered)
		g_info("Registered with the VSS driver on %s (transport %s, legacy driver protocol "
		       "%u: no answer to REGISTER1 within %d ms, registered with REGISTER)",
		       v->transport->device, v->transport->ops->name, v->transport->version,
		       v->transport->legacy_fallback_ms);
	else
		g_info("Registered with the VSS driver on %s (transport %s, driver protocol %u)",
		       v->transport->device, v->transport->ops->name, v->transport->version);
	hv_notify_status("Idle; registered on %s", v->transport->device);
	return 0;
}

static gboolean on_reopen(gpointer user_data)
{
	vss_daemon *v = user_data;
	int r;

	v->reopen_source = 0;
	r = open_transport(v);
	if (r < 0) {
		if (!v->reopen_error_logged)
			hv_log_errno(r, "Failed to reopen %s, retrying: %m", v->transport->device);
		v->reopen_error_logged = true;
		v->reopen_delay_ms = MIN(v->reopen_delay_ms * 2, VSS_REOPEN_MAX_MS);
		v->reopen_source = g_timeout_add(v->reopen_delay_ms, on_reopen, v);
		return G_SOURCE_REMOVE;
	}

	v->reopen_error_logged = false;
	handle_event(v, VSS_EVENT_CONNECTED);
	return G_SOURCE_REMOVE;
}

static void schedule_reopen(vss_daemon *v)
{
	close_transport(v);
	v->reopen_delay_ms = VSS_REOPEN_MIN_MS;
	g_clear_handle_id(&v->reopen_source, g_source_remove);
	v->reopen_source = g_timeout_add(v->reopen_delay_ms, on_reopen, v);
}

static void handle_event(vss_daemon *v, vss_event event)
{
	vss_action action;
	vss_state next = vss_state_next(v->state, event, &action);
	int r;

	g_debug("Event %s in state %s: %s", vss_event_to_string(event),
		vss_state_to_string(v->state), vss_action_to_string(action));
	set_state(v, next);
	/* A freeze can take long: --status shows "freezing" meanwhile. */
	if (action == VSS_ACTION_FREEZE)
		flush_status(v);

	switch (action) {
	case VSS_ACTION_NONE:
		break;
	case VSS_ACTION_REPLY_OK:
		send_reply(v, HV_S_OK);
		break;
	case VSS_ACTION_REPLY_FAIL:
		send_reply(v, HV_E_FAIL);
		break;
	case VSS_ACTION_FREEZE:
		r = do_freeze(v);
		handle_event(v, r < 0 ? VSS_EVENT_FREEZE_FAILED : VSS_EVENT_FREEZE_DONE);
		break;
	case VSS_ACTION_THAW_REPLY:
		do_thaw(v, "THAW from the host", true);
		break;
	case VSS_ACTION_THAW:
		if (event == VSS_EVENT_AUTO_THAW)
			g_warning("No THAW within %u s of the freeze: thawing now; the next THAW will report failure",
				  v->cfg.freeze_timeout_s);
		do_thaw(v, vss_event_to_string(event), false);
		break;
	case VSS_ACTION_REOPEN:
		g_warning("The VSS driver closed or reset %s; reopening", v->transport->device);
		schedule_reopen(v);
		break;
	case VSS_ACTION_THAW_REOPEN:
		do_thaw(v, "driver reset", false);
		g_warning("The VSS driver closed or reset %s while frozen; thawed, reopening",
			  v->transport->device);
		schedule_reopen(v);
		break;
	case VSS_ACTION_THAW_QUIT:
		do_thaw(v, "stop requested", false);
		hv_daemon_quit(v->daemon, HV_EXIT_OK);
		break;
	case VSS_ACTION_QUIT:
		hv_daemon_quit(v->daemon, HV_EXIT_OK);
		break;
	case _VSS_ACTION_MAX:
		break;
	}

	flush_status(v);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user_data)
{
	vss_daemon *v = user_data;
	uint8_t buf[2 * 4096];
	vss_event event;
	ssize_t n;

	if (!(cond & G_IO_IN)) {
		v->io_source = 0;
		handle_event(v, VSS_EVENT_TRANSPORT_LOST);
		return G_SOURCE_REMOVE;
	}

	n = hv_transport_recv(v->transport, buf, sizeof(buf));
	if (n == -EAGAIN) {
		static unsigned int refused_seen, dropped_seen;

		/* Netlink: a sender other than the kernel, logged once. */
		if (v->transport->n_refused && !refused_seen)
			g_warning("Refused a connector message from port %u (requests are taken from %s only; further refusals are not logged)",
				  v->transport->refused_port,
				  allow_user_peer ? "the first user-space peer (test mode)" : "the kernel");
		refused_seen = v->transport->n_refused;
		if (v->transport->n_dropped != dropped_seen)
			g_debug("Dropped a malformed or foreign connector message (%u so far)",
				v->transport->n_dropped);
		dropped_seen = v->transport->n_dropped;
		return G_SOURCE_CONTINUE;
	}

	if (n < 0) {
		hv_log_errno((int)n, "Failed to read from %s: %m", v->transport->device);
		v->io_source = 0;
		handle_event(v, VSS_EVENT_TRANSPORT_LOST);
		return G_SOURCE_REMOVE;
	}

	event = vss_parse_request(buf, (size_t)n, &v->op);
	if (event == VSS_EVENT_BAD_REQUEST)
		g_warning("Malformed or unknown request from the driver (%zd bytes, op %u): answering failure",
			  n, v->op);
	else
		g_info("Host request %s", vss_op_to_string(v->op));

	handle_event(v, event);
	return v->io_source ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void vss_free(void *self);

/* --thaw-all --force: FITHAW every file system the plan selects now. */
static int thaw_everything(vss_daemon *v)
{
	g_autoptr(hv_freeze_plan) plan = NULL;
	int thawed = 0, failed = 0;

	if (build_plan(v, &plan) < 0)
		return HV_EXIT_FAILURE;

	for (guint i = 0; i < plan->targets->len; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);
		int r = hv_thaw_mountpoint(t->mountpoint);

		if (r > 0) {
			g_info("Thawed %s (%s)", t->mountpoint, t->fstype);
			thawed++;
		} else if (r < 0) {
			hv_log_errno(r, "Failed to thaw %s (%s): %m", t->mountpoint, t->fstype);
			failed++;
		}
	}

	g_info("Thawed %d of %u local file system%s (the others were not frozen)", thawed,
	       plan->targets->len, plan->targets->len == 1 ? "" : "s");
	return failed ? HV_EXIT_FAILURE : HV_EXIT_OK;
}

static bool pid_is_daemon(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/comm", (int)pid);
	g_autofree char *comm = NULL;

	if (pid <= 0 || !g_file_get_contents(path, &comm, NULL, NULL))
		return false;

	return g_str_has_prefix(comm, "hv_vss_daemon");
}

static void print_status(vss_daemon *v)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(hv_freeze_plan) plan = NULL;
	g_autoptr(GPtrArray) hooks = NULL;
	g_autoptr(GPtrArray) skipped = NULL;
	g_autofree char *marker = NULL;
	g_auto(GStrv) groups = NULL;
	gint64 pid;

	printf("hv_vss_daemon status (runtime directory %s)\n", hv_daemon_get_runtime_dir(v->daemon));
	if (g_key_file_load_from_file(kf, v->status_path, G_KEY_FILE_NONE, &error)) {
		g_autofree char *state = g_key_file_get_string(kf, "daemon", "state", NULL);
		g_autofree char *since = g_key_file_get_string(kf, "daemon", "since", NULL);
		g_autofree char *transport = g_key_file_get_string(kf, "daemon", "transport", NULL);
		g_autofree char *device = g_key_file_get_string(kf, "daemon", "device", NULL);

		pid = g_key_file_get_int64(kf, "daemon", "pid", NULL);
		printf("  daemon:     %s (pid %" G_GINT64_FORMAT ")\n",
		       pid_is_daemon((pid_t)pid) ? "running" : "not running", pid);
		printf("  state:      %s since %s\n", state ? state : "?", since ? since : "?");
		printf("  transport:  %s on %s, driver protocol %" G_GUINT64_FORMAT "\n",
		       transport ? transport : "?", device ? device : "?",
		       g_key_file_get_uint64(kf, "daemon", "driver-protocol", NULL));
		printf("  backups:    %" G_GUINT64_FORMAT " served\n",
		       g_key_file_get_uint64(kf, "daemon", "backups", NULL));
	} else {
		printf("  daemon:     no status: %s (not running, or never started here)\n",
		       error->message);
	}

	marker = NULL;
	if (g_file_get_contents(v->marker_path, &marker, NULL, NULL))
		printf("  marker:     %s exists: file systems may be frozen; 'hv_vss_daemon --thaw-all' thaws them\n",
		       v->marker_path);
	else
		printf("  marker:     none (nothing frozen by us)\n");

	printf("  settings:   freeze-timeout %u s, preflush %s, foreign-frozen %s, hook-timeout %u s\n",
	       v->cfg.freeze_timeout_s, v->cfg.preflush ? "on" : "off",
	       foreign_policy_names[v->cfg.foreign], v->cfg.hook_timeout_s);
	{
		g_autofree char *mps = g_strjoinv(", ", v->cfg.exclude_mountpoints);
		g_autofree char *types = g_strjoinv(", ", v->cfg.exclude_fstypes);

		printf("  excluded:   mount points [%s], file system types [%s]\n", mps, types);
		printf("  built in:   read-only, pseudo (proc, tmpfs, overlay...), network (nfs, cifs...), FUSE and\n"
		       "              non-block file systems are never frozen; each superblock is frozen once\n");
	}
	for (const char *const *f = hv_config_files(hv_daemon_get_config(v->daemon)); *f; f++)
		printf("  config:     %s\n", *f);

	if (vss_hooks_list(v->cfg.hooks_dir, &hooks, &skipped) == 0) {
		printf("  hooks:      %u in %s\n", hooks->len, v->cfg.hooks_dir);
		for (guint i = 0; i < hooks->len; i++)
			printf("    run:      %s\n", (const char *)g_ptr_array_index(hooks, i));
		for (guint i = 0; i < skipped->len; i++)
			printf("    skipped:  %s\n", (const char *)g_ptr_array_index(skipped, i));
	}

	if (build_plan(v, &plan) == 0) {
		printf("  plan now:   %u file system%s in %u wave%s (frozen in this order, thawed in reverse)\n",
		       plan->targets->len, plan->targets->len == 1 ? "" : "s", plan->n_waves,
		       plan->n_waves == 1 ? "" : "s");
		for (guint i = 0; i < plan->targets->len; i++) {
			const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

			printf("    wave %u:   %s (%s on %s)\n", t->wave, t->mountpoint, t->fstype,
			       t->source);
		}
		for (guint i = 0; i < plan->skipped->len; i++) {
			const hv_plan_skip *sk = g_ptr_array_index(plan->skipped, i);

			printf("    skipped:  %s (%s): %s\n", sk->mountpoint, sk->fstype,
			       hv_skip_reason_to_string(sk->reason));
		}
	}

	groups = g_key_file_get_groups(kf, NULL);
	for (char **g = groups; g && *g; g++) {
		g_autofree char *started = NULL;
		g_autofree char *result = NULL;

		if (!g_str_has_prefix(*g, "backup "))
			continue;

		started = g_key_file_get_string(kf, *g, "started", NULL);
		result = g_key_file_get_string(kf, *g, "result", NULL);
		printf("  %s:  %s, %" G_GUINT64_FORMAT " fs, freeze %.2f ms, frozen %.1f ms, thaw %.2f ms: %s\n",
		       *g, started ? started : "?",
		       g_key_file_get_uint64(kf, *g, "file-systems", NULL),
		       g_key_file_get_double(kf, *g, "freeze-ms", NULL),
		       g_key_file_get_double(kf, *g, "frozen-ms", NULL),
		       g_key_file_get_double(kf, *g, "thaw-ms", NULL), result ? result : "?");
	}
}

static int vss_command(hv_daemon *d)
{
	vss_daemon *v;
	int r;

	if (!thaw_all && !show_status) {
		if (thaw_force) {
			g_critical("--force goes with --thaw-all");
			return HV_EXIT_USAGE;
		}
		return -1;
	}

	/* A daemon object for the configuration and the plan; nothing is opened. */
	v = g_new0(vss_daemon, 1);
	v->daemon = d;
	r = vss_config_load(d, &v->cfg);
	if (r < 0) {
		vss_free(v);
		return HV_EXIT_USAGE;
	}
	v->marker_path = g_build_filename(hv_daemon_get_runtime_dir(d), VSS_MARKER_NAME, NULL);
	v->status_path = g_build_filename(hv_daemon_get_runtime_dir(d), VSS_STATUS_NAME, NULL);

	if (show_status) {
		print_status(v);
		vss_free(v);
		return HV_EXIT_OK;
	}

	r = hv_freeze_marker_recover(v->marker_path);
	if (r < 0)
		hv_log_errno(r, "Failed to thaw what %s lists: %m", v->marker_path);
	else
		g_info("Thawed %d file system%s listed in %s", r, r == 1 ? "" : "s",
		       v->marker_path);

	if (thaw_force)
		r = thaw_everything(v) == HV_EXIT_OK && r >= 0 ? 0 : -EIO;

	vss_free(v);
	return r < 0 ? HV_EXIT_FAILURE : HV_EXIT_OK;
}

static void vss_free(void *self)
{
	vss_daemon *v = self;

	if (!v)
		return;

	g_clear_handle_id(&v->reopen_source, g_source_remove);
	g_clear_handle_id(&v->auto_thaw_source, g_source_remove);
	/* Last line of defence: freeing the handle thaws. */
	if (v->freeze) {
		hv_freeze_free(g_steal_pointer(&v->freeze));
		hv_log_release();
	}
	close_transport(v);
	hv_transport_free(v->transport);
	/* Only now that nothing is frozen may the guard go. */
	hv_freeze_guard_free(v->guard);
	vss_config_clear(&v->cfg);
	g_clear_pointer(&v->hooks, g_ptr_array_unref);
	for (unsigned int i = 0; i < VSS_HISTORY_MAX; i++)
		g_free(v->history[i].result);
	g_free(v->status_path);
	g_free(v->marker_path);
	g_free(v);
}

static int vss_init(hv_daemon *d, void **ret_self)
{
	vss_daemon *v = g_new0(vss_daemon, 1);
	const char *why = NULL;
	int r;

	v->daemon = d;
	v->state = VSS_STATE_DISCONNECTED;

	r = vss_config_load(d, &v->cfg);
	if (r < 0)
		goto fail;

	v->marker_path = g_build_filename(hv_daemon_get_runtime_dir(d), VSS_MARKER_NAME, NULL);
	v->status_path = g_build_filename(hv_daemon_get_runtime_dir(d), VSS_STATUS_NAME, NULL);
	v->state_since = g_get_real_time();

	/* A marker left behind means a daemon died with file systems frozen. */
	r = hv_freeze_marker_recover(v->marker_path);
	if (r > 0)
		g_warning("Thawed %d file system%s that a previous daemon left frozen (%s)", r,
			  r == 1 ? "" : "s", v->marker_path);
	else if (r < 0)
		hv_log_errno(r, "Failed to recover from %s, continuing: %m", v->marker_path);

	/* Before any thread exists: the guard is a fork(). */
	r = hv_freeze_guard_start(v->marker_path, &v->guard);
	if (r < 0) {
		hv_log_error_errno(r, "Failed to start the freeze guard process: %m");
		goto fail;
	}

	r = hv_transport_new(&vss_service, v->cfg.transport, v->cfg.device, &v->transport, &why);
	if (r < 0) {
		hv_log_error_errno(r, "No way to reach the VSS driver (%s: %s): is this a Hyper-V guest with hv_utils loaded?",
				   v->cfg.device ? v->cfg.device : VSS_DEFAULT_DEVICE,
				   why ? why : "unsupported transport");
		goto fail;
	}
	hv_transport_set_allow_user_peer(v->transport, allow_user_peer);
	g_info("Using the %s transport on %s (%s)%s", v->transport->ops->name, v->transport->device,
	       why, allow_user_peer ? "; user-space peers allowed (testing)" : "");

	*ret_self = v;
	return 0;
fail:
	vss_free(v);
	return r;
}

/*
 * Builds the freeze plan once at start-up and logs its size. The plan of a
 * FREEZE is built again from the mount table of that moment; this one only
 * shows early what a backup would freeze, and takes the first-use costs
 * (libmount, the sysfs lookups, the pages of that code) out of the first
 * FREEZE: measured 1.4-2.6 ms for the first plan of a process, 0.3-0.7 ms
 * for the next ones (16 file systems in hv-sandbox).
 */
static void plan_at_start(vss_daemon *v)
{
	g_autoptr(hv_freeze_plan) plan = NULL;

	if (build_plan(v, &plan) < 0)
		return;

	g_info("A freeze now would take %u file system%s in %u wave%s (%u mount%s skipped)",
	       plan->targets->len, plan->targets->len == 1 ? "" : "s", plan->n_waves,
	       plan->n_waves == 1 ? "" : "s", plan->skipped->len,
	       plan->skipped->len == 1 ? "" : "s");
}

static int vss_start(void *self)
{
	vss_daemon *v = self;
	int r;

	plan_at_start(v);
	r = open_transport(v);

	if (r == -EBUSY)
		return hv_log_error_errno(r, "%s is busy: is another VSS daemon running?",
					  v->transport->device);
	if (r == -ENODEV && v->transport->kind == HV_TRANSPORT_NETLINK)
		return hv_log_error_errno(r, "No VSS driver behind the netlink connector (%s is not in /proc/net/connector): is this a Hyper-V guest with hv_utils loaded?",
					  v->transport->device);
	if (r < 0)
		return hv_log_error_errno(r, "Failed to open and register on %s: %m",
					  v->transport->device);

	handle_event(v, VSS_EVENT_CONNECTED);
	return 0;
}

static void vss_stop(void *self)
{
	handle_event(self, VSS_EVENT_STOP);
}

const hv_daemon_ops vss_daemon_ops = {
	.name = "hv_vss_daemon",
	.summary = "Hyper-V VSS daemon: freezes file systems for host-initiated backups.",
	.known_keys = vss_known_keys,
	.options = vss_options,
	.command = vss_command,
	.init = vss_init,
	.start = vss_start,
	.stop = vss_stop,
	.free = vss_free,
};
