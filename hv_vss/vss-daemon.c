/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vss-daemon.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>

#include "hv-freeze.h"
#include "hv-log.h"
#include "hv-mount.h"
#include "hv-notify.h"
#include "hv-status.h"
#include "hv-transport.h"
#include "vss-state.h"

#define VSS_GROUP "vss"
#define VSS_DEFAULT_DEVICE "/dev/vmbus/hv_vss"
#define VSS_DEFAULT_FREEZE_TIMEOUT_S 120
#define VSS_MARKER_NAME "vss-frozen"
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
	vss_foreign_policy foreign;
} vss_config;

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
	unsigned int n_backups;
} vss_daemon;

static const hv_service vss_service = {
	.name = "vss",
	.device = VSS_DEFAULT_DEVICE,
	.max_msg = 2 * 4096, /* the driver's largest VSS packet */
	.register_msg = &(const struct hv_vss_msg){ .vss_hdr.operation = HV_VSS_OP_REGISTER1 },
	.register_len = sizeof(struct hv_vss_msg),
	.register_reply_len = sizeof(hv_vss_version),
	.parse_register_reply = vss_parse_register_reply,
};

static bool thaw_all;
static GOptionEntry vss_options[] = {
	{ "thaw-all", 0, 0, G_OPTION_ARG_NONE, &thaw_all,
	  "Thaw every file system that a stopped daemon's marker says is frozen, then exit",
	  NULL },
	{ NULL },
};

static const char *const vss_known_keys[] = {
	"vss.transport",	 "vss.device",	       "vss.freeze-timeout", "vss.exclude-mountpoints",
	"vss.exclude-fstypes", "vss.preflush",	       "vss.foreign-frozen", NULL,
};

static void handle_event(vss_daemon *v, vss_event event);

static void vss_config_clear(vss_config *c)
{
	g_clear_pointer(&c->device, g_free);
	g_clear_pointer(&c->exclude_mountpoints, g_strfreev);
	g_clear_pointer(&c->exclude_fstypes, g_strfreev);
}

static int vss_config_load(hv_daemon *d, vss_config *c)
{
	static const char *const transport_names[] = { "auto", "chardev", NULL };
	const hv_config *cfg = hv_daemon_get_config(d);
	g_autofree char *error = NULL;
	int transport = HV_TRANSPORT_AUTO;
	int foreign = VSS_FOREIGN_FAIL;
	int r;

	if (hv_daemon_get_transport(d)) {
		c->transport = hv_transport_kind_from_string(hv_daemon_get_transport(d));
		if (c->transport == _HV_TRANSPORT_KIND_INVALID) {
			g_critical("--transport: '%s' is not one of auto, chardev",
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

static void set_state(vss_daemon *v, vss_state next)
{
	if (next == v->state)
		return;

	g_debug("State %s -> %s", vss_state_to_string(v->state), vss_state_to_string(next));
	v->state = next;
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

static int do_freeze(vss_daemon *v)
{
	g_autoptr(hv_freeze_plan) plan = NULL;
	g_autoptr(hv_freeze) freeze = NULL;
	hv_freeze_options options = {
		.preflush = v->cfg.preflush,
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

	g_info("Freezing %u file system%s in %u wave%s", plan->targets->len,
	       plan->targets->len == 1 ? "" : "s", plan->n_waves, plan->n_waves == 1 ? "" : "s");

	/* From here until the last thaw, nothing may be written to a disk: hold the log. */
	hv_log_hold();
	r = hv_freeze_execute(plan, &options, &freeze);
	if (r < 0) {
		hv_log_release();
		if (freeze)
			log_freeze_entries(freeze, false);
		return hv_log_errno(r, "Freeze failed, everything frozen so far was thawed again: %m");
	}

	v->freeze = g_steal_pointer(&freeze);
	v->frozen_since_us = g_get_monotonic_time();
	g_info("Frozen in %.2f ms", (double)(v->frozen_since_us - start) / 1000.0);
	v->auto_thaw_source = g_timeout_add_seconds(v->cfg.freeze_timeout_s, on_auto_thaw, v);
	return 0;
}

static int do_thaw(vss_daemon *v, const char *why)
{
	gint64 start = g_get_monotonic_time();
	int r = 0;

	g_clear_handle_id(&v->auto_thaw_source, g_source_remove);

	if (v->freeze) {
		r = hv_freeze_thaw(v->freeze);
		hv_log_release();
		g_info("Thawed (%s) after %.1f ms frozen; thaw took %.2f ms", why,
		       (double)(start - v->frozen_since_us) / 1000.0,
		       (double)(g_get_monotonic_time() - start) / 1000.0);
		log_freeze_entries(v->freeze, hv_log_debug_enabled());
		if (r < 0)
			hv_log_errno(r, "Thaw failed on at least one file system (all were tried): %m");
		g_clear_pointer(&v->freeze, hv_freeze_free);
		v->n_backups++;
	}

	hv_notify_status("Idle; %u backup%s served", v->n_backups, v->n_backups == 1 ? "" : "s");
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

	v->io_source = g_unix_fd_add(v->transport->fd, G_IO_IN | G_IO_ERR | G_IO_HUP, on_readable,
				     v);
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
		r = do_thaw(v, "THAW from the host");
		send_reply(v, r < 0 ? HV_E_FAIL : HV_S_OK);
		break;
	case VSS_ACTION_THAW:
		if (event == VSS_EVENT_AUTO_THAW)
			g_warning("No THAW within %u s of the freeze: thawing now; the next THAW will report failure",
				  v->cfg.freeze_timeout_s);
		do_thaw(v, vss_event_to_string(event));
		break;
	case VSS_ACTION_REOPEN:
		g_warning("The VSS driver closed or reset %s; reopening", v->transport->device);
		schedule_reopen(v);
		break;
	case VSS_ACTION_THAW_REOPEN:
		do_thaw(v, "driver reset");
		g_warning("The VSS driver closed or reset %s while frozen; thawed, reopening",
			  v->transport->device);
		schedule_reopen(v);
		break;
	case VSS_ACTION_THAW_QUIT:
		do_thaw(v, "stop requested");
		hv_daemon_quit(v->daemon, HV_EXIT_OK);
		break;
	case VSS_ACTION_QUIT:
		hv_daemon_quit(v->daemon, HV_EXIT_OK);
		break;
	case _VSS_ACTION_MAX:
		break;
	}
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
	if (n == -EAGAIN)
		return G_SOURCE_CONTINUE;

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

static int vss_command(hv_daemon *d)
{
	g_autofree char *marker = NULL;
	int r;

	if (!thaw_all)
		return -1;

	marker = g_build_filename(hv_daemon_get_runtime_dir(d), VSS_MARKER_NAME, NULL);
	r = hv_freeze_marker_recover(marker);
	if (r < 0) {
		hv_log_errno(r, "Failed to thaw what %s lists: %m", marker);
		return HV_EXIT_FAILURE;
	}

	g_info("Thawed %d file system%s listed in %s", r, r == 1 ? "" : "s", marker);
	return HV_EXIT_OK;
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
	g_info("Using the %s transport on %s (%s)", v->transport->ops->name, v->transport->device,
	       why);

	*ret_self = v;
	return 0;
fail:
	vss_free(v);
	return r;
}

static int vss_start(void *self)
{
	vss_daemon *v = self;
	int r = open_transport(v);

	if (r == -EBUSY)
		return hv_log_error_errno(r, "%s is busy: is another VSS daemon running?",
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
