/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fcopy-daemon.h"

#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcopy-adapter.h"
#include "fcopy-path.h"
#include "fcopy-session.h"
#include "hv-log.h"
#include "hv-macro.h"
#include "hv-notify.h"
#include "hv-status.h"
#include "hv-transport.h"

#define FCOPY_GROUP	    "fcopy"
#define FCOPY_STATE_NAME    "fcopy-partial"
#define FCOPY_REOPEN_MIN_MS 250
#define FCOPY_REOPEN_MAX_MS 10000
/*
 * The host sends the next fragment as soon as it has our answer, and gives
 * up on a request after the driver's 30 s (HV_UTIL_TIMEOUT). A copy that
 * hears nothing for this long was abandoned without a CANCEL (host reset,
 * channel rescinded): its temporary file is removed.
 */
#define FCOPY_DEFAULT_IDLE_TIMEOUT_S 120
/*
 * During a copy the host sends the next request as soon as it has our
 * answer, one 6,144-byte fragment at a time: a main loop iteration per
 * fragment costs more than the fragment. So while a copy is open the next
 * request is waited for here (poll on the one descriptor), up to
 * FCOPY_BURST_REQUESTS requests or FCOPY_BURST_WAIT_MS without one; then
 * the main loop runs again (signals, timers), at the latest every few ms.
 */
#define FCOPY_BURST_REQUESTS 256
#define FCOPY_BURST_WAIT_MS  10

typedef struct fcopy_config {
	hv_transport_kind transport;
	char *device;
	mode_t file_mode;
	mode_t dir_mode;
	char **allowed_dirs; /* normalised */
	bool tmpfile;
	unsigned int idle_timeout_s; /* 0: never */
} fcopy_config;

typedef struct fcopy_daemon {
	hv_daemon *daemon;
	fcopy_config cfg;
	char *state_path;

	const fcopy_adapter *adapter;
	hv_transport *transport;
	uint8_t *buf;
	guint io_source;
	guint reopen_source;
	guint idle_source;
	unsigned int idle_ticks;   /* idle timer ticks in a row without a request */
	uint64_t n_requests;	   /* requests received; the idle timer compares */
	uint64_t n_requests_seen;  /* n_requests at the idle timer's last tick */
	unsigned int reopen_delay_ms;
	bool reopen_error_logged;

	fcopy_session *session;
	gint64 copy_started_us;
	unsigned int n_copies;
	unsigned int n_failed;
} fcopy_daemon;

static char *sysfs_root;
static GOptionEntry fcopy_options_entries[] = {
	{ "sysfs-root", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &sysfs_root,
	  "For tests only: where to look for the VMBus devices instead of /sys", "DIR" },
	{ NULL },
};

static const char *const fcopy_known_keys[] = {
	"fcopy.transport", "fcopy.device",  "fcopy.file-mode",    "fcopy.dir-mode",
	"fcopy.allowed-dirs", "fcopy.tmpfile", "fcopy.idle-timeout", NULL,
};

static void fcopy_config_clear(fcopy_config *c)
{
	g_clear_pointer(&c->device, g_free);
	g_clear_pointer(&c->allowed_dirs, g_strfreev);
}

static int parse_mode(const hv_config *cfg, const char *key, mode_t def, mode_t *ret)
{
	g_autofree char *error = NULL;
	g_autofree char *s = NULL;
	char *end = NULL;
	unsigned long v;
	int r;

	r = hv_config_get_string(cfg, FCOPY_GROUP, key, NULL, &s, &error);
	if (r < 0) {
		g_critical("%s", error);
		return r;
	}
	if (!s) {
		*ret = def;
		return 0;
	}

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 07777) {
		g_critical(
		    "%s: [fcopy] %s = '%s' is not valid: expected an octal mode such as 0644",
		    hv_config_origin(cfg, FCOPY_GROUP, key), key, s);
		return -EINVAL;
	}

	*ret = (mode_t)v;
	return 0;
}

static int fcopy_config_load(hv_daemon *d, fcopy_config *c)
{
	static const char *const transport_names[] = {"auto", "chardev", "uio", NULL};
	const hv_config *cfg = hv_daemon_get_config(d);
	g_autofree char *error = NULL;
	g_auto(GStrv) dirs = NULL;
	int transport = HV_TRANSPORT_AUTO;
	int r;

	if (hv_daemon_get_transport(d)) {
		const char *t = hv_daemon_get_transport(d);

		if (strcmp(t, "auto") == 0)
			c->transport = HV_TRANSPORT_AUTO;
		else if (strcmp(t, "chardev") == 0)
			c->transport = HV_TRANSPORT_CHARDEV;
		else if (strcmp(t, "uio") == 0)
			c->transport = HV_TRANSPORT_UIO;
		else {
			g_critical("--transport: '%s' is not one of auto, chardev, uio", t);
			return -EINVAL;
		}
	} else {
		r = hv_config_get_enum(cfg, FCOPY_GROUP, "transport", transport_names,
				       HV_TRANSPORT_AUTO, &transport, &error);
		if (r < 0)
			goto bad;
		c->transport = transport == 1   ? HV_TRANSPORT_CHARDEV
				 : transport == 2 ? HV_TRANSPORT_UIO
						  : HV_TRANSPORT_AUTO;
	}

	if (hv_daemon_get_device(d))
		c->device = g_strdup(hv_daemon_get_device(d));
	else {
		r = hv_config_get_string(cfg, FCOPY_GROUP, "device", NULL, &c->device, &error);
		if (r < 0)
			goto bad;
	}

	r = parse_mode(cfg, "file-mode", FCOPY_DEFAULT_FILE_MODE, &c->file_mode);
	if (r < 0)
		return r;
	r = parse_mode(cfg, "dir-mode", FCOPY_DEFAULT_DIR_MODE, &c->dir_mode);
	if (r < 0)
		return r;

	r = hv_config_get_bool(cfg, FCOPY_GROUP, "tmpfile", true, &c->tmpfile, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_uint(cfg, FCOPY_GROUP, "idle-timeout", FCOPY_DEFAULT_IDLE_TIMEOUT_S, 0,
			       24 * 3600, &c->idle_timeout_s, &error);
	if (r < 0)
		goto bad;

	r = hv_config_get_strv(cfg, FCOPY_GROUP, "allowed-dirs", &dirs, &error);
	if (r < 0)
		goto bad;

	c->allowed_dirs = g_new0(char *, g_strv_length(dirs) + 1);
	for (guint i = 0; dirs[i]; i++) {
		r = fcopy_normalize_dir(dirs[i], &c->allowed_dirs[i]);
		if (r < 0) {
			g_critical("%s: [fcopy] allowed-dirs: '%s' is not valid: expected absolute "
				   "directories without '..'",
				   hv_config_origin(cfg, FCOPY_GROUP, "allowed-dirs"), dirs[i]);
			return -EINVAL;
		}
	}

	return 0;
bad:
	g_critical("%s", error);
	return r;
}

static const char *flags_to_string(uint32_t flags)
{
	switch (flags & (HV_FCOPY_OVER_WRITE | HV_FCOPY_CREATE_PATH)) {
	case 0:
		return "none";
	case HV_FCOPY_OVER_WRITE:
		return "overwrite";
	case HV_FCOPY_CREATE_PATH:
		return "create-path";
	default:
		return "overwrite, create-path";
	}
}

/* Runs one decoded request and logs what happened; returns the host status. */
static uint32_t run_request(fcopy_daemon *f, const fcopy_request *req)
{
	fcopy_session *s = f->session;
	uint64_t written = fcopy_session_written(s);
	int r = fcopy_session_handle(s, req);
	uint32_t status = fcopy_status_from_errno(r);

	switch (req->op) {
	case HV_FCOPY_START_FILE_COPY:
		if (fcopy_session_cancelled_previous(s) && fcopy_session_temp_left(s) < 0)
			hv_log_errno(
			    fcopy_session_temp_left(s),
			    "START while a copy was open: the previous copy was cancelled, "
			    "its temporary file could not be removed (%m), the next start "
			    "removes it");
		else if (fcopy_session_cancelled_previous(s))
			g_warning("START while a copy was open: the previous copy was cancelled, "
				  "its temporary file removed");
		if (r < 0) {
			f->n_failed++;
			hv_log_errno(
			    r, "Copy to %s refused (flags %s): failed to %s: %m; answering 0x%08x",
			    fcopy_session_target(s), flags_to_string(req->copy_flags),
			    fcopy_session_failed_step(s), status);
			return status;
		}
		f->copy_started_us = g_get_monotonic_time();
		g_info("Copy to %s started (%" G_GUINT64_FORMAT
		       " bytes announced, flags %s, %s temporary file)",
		       fcopy_session_target(s), req->file_size, flags_to_string(req->copy_flags),
		       fcopy_session_temp_is_named(s) ? "named" : "unnamed");
		hv_notify_status("Copying to %s", fcopy_session_target(s));
		break;
	case HV_FCOPY_WRITE_TO_FILE:
		if (r < 0) {
			f->n_failed++;
			hv_log_errno(
			    r,
			    "Copy to %s: failed to %s (%u bytes at offset %" G_GUINT64_FORMAT
			    "): %m; answering 0x%08x",
			    r == -EBADFD ? "(none)" : fcopy_session_target(s),
			    fcopy_session_failed_step(s), req->size, req->offset, status);
		}
		break;
	case HV_FCOPY_COMPLETE_FCOPY:
		if (r < 0) {
			f->n_failed++;
			hv_log_errno(r,
				     "Copy to %s not completed: failed to %s: %m; answering 0x%08x",
				     r == -EBADFD ? "(none)" : fcopy_session_target(s),
				     fcopy_session_failed_step(s), status);
			break;
		}
		f->n_copies++;
		g_info("Copy to %s complete: %" G_GUINT64_FORMAT " bytes in %.1f ms",
		       fcopy_session_target(s), written,
		       (double)(g_get_monotonic_time() - f->copy_started_us) / 1000.0);
		if (written != fcopy_session_announced_size(s))
			g_warning("Copy to %s: %" G_GUINT64_FORMAT
				  " bytes written, the host announced %" G_GUINT64_FORMAT,
				  fcopy_session_target(s), written,
				  fcopy_session_announced_size(s));
		hv_notify_status("Idle; %u cop%s done", f->n_copies,
				 f->n_copies == 1 ? "y" : "ies");
		break;
	case HV_FCOPY_CANCEL_FCOPY:
		if (fcopy_session_temp_left(s) < 0)
			hv_log_errno(fcopy_session_temp_left(s),
				     "Copy to %s cancelled by the host after %" G_GUINT64_FORMAT
				     " bytes; its temporary file could not be removed (%m), the "
				     "next start removes it",
				     fcopy_session_target(s), written);
		else
			g_info("Copy to %s cancelled by the host after %" G_GUINT64_FORMAT
			       " bytes; the temporary file was removed",
			       fcopy_session_target(s), written);
		hv_notify_status("Idle; %u cop%s done", f->n_copies,
				 f->n_copies == 1 ? "y" : "ies");
		break;
	default:
		g_warning("Unknown FCOPY operation %u from the host; answering 0x%08x", req->op,
			  status);
		break;
	}

	return status;
}

static void send_reply(fcopy_daemon *f, size_t len)
{
	int r = hv_transport_send(f->transport, f->buf, len);

	/*
	 * The driver gave up on this request already (its timeout), or was
	 * reset: the host has its failure; the next message tells us more.
	 */
	if (r < 0)
		hv_log_errno(r, "Failed to send the reply to %s: %m", f->transport->device);
}

/* The idle timer ticks this often: a quarter of the idle timeout, at least 1 s. */
static unsigned int idle_tick_s(const fcopy_daemon *f)
{
	return MAX(1u, f->cfg.idle_timeout_s / 4);
}

static gboolean on_idle_tick(gpointer user_data)
{
	fcopy_daemon *f = user_data;

	if (fcopy_session_get_state(f->session) != FCOPY_STATE_COPYING) {
		f->idle_source = 0;
		return G_SOURCE_REMOVE;
	}

	if (f->n_requests != f->n_requests_seen) {
		f->n_requests_seen = f->n_requests;
		f->idle_ticks = 0;
		return G_SOURCE_CONTINUE;
	}

	/* Abandoned after idle-timeout to idle-timeout + one tick without a request. */
	if (++f->idle_ticks * idle_tick_s(f) < f->cfg.idle_timeout_s)
		return G_SOURCE_CONTINUE;

	f->idle_source = 0;
	g_warning("Copy to %s abandoned: no request from the host for %u s after %" G_GUINT64_FORMAT
		  " bytes; temporary file removed",
		  fcopy_session_target(f->session), f->cfg.idle_timeout_s,
		  fcopy_session_written(f->session));
	fcopy_session_cancel(f->session);
	hv_notify_status("Idle; %u cop%s done", f->n_copies, f->n_copies == 1 ? "y" : "ies");
	return G_SOURCE_REMOVE;
}

/*
 * While a copy is open, each request restarts the idle period. Requests
 * come every few microseconds then, so they only count: one timer ticks
 * (idle_tick_s()) and abandons the copy after enough ticks in a row saw no
 * request. No timer source and no clock read per request.
 */
static void arm_idle_timer(fcopy_daemon *f)
{
	f->n_requests++;
	if (!f->cfg.idle_timeout_s || fcopy_session_get_state(f->session) != FCOPY_STATE_COPYING) {
		g_clear_handle_id(&f->idle_source, g_source_remove);
		return;
	}
	if (!f->idle_source) {
		f->idle_ticks = 0;
		f->n_requests_seen = f->n_requests;
		f->idle_source = g_timeout_add_seconds(idle_tick_s(f), on_idle_tick, f);
	}
}

static void handle_message(fcopy_daemon *f, size_t len)
{
	fcopy_request req;
	const char *why = "";
	size_t reply_len = 0;
	uint32_t status;
	ssize_t n;
	int r;

	r = f->adapter->decode(f->buf, len, &req, &reply_len, &why);
	if (r == FCOPY_DECODED_IGNORE)
		return;
	if (r == FCOPY_DECODED_REPLY) {
		g_info("%s", why);
		send_reply(f, reply_len);
		return;
	}

	if (r < 0) {
		status = fcopy_status_from_errno(r);
		if (req.op == UINT32_MAX)
			g_warning(
			    "Malformed request from the host (%zu bytes): %s; answering 0x%08x",
			    len, why, status);
		else
			g_warning("Malformed %s request from the host (%zu bytes, op %u): %s; "
				  "answering 0x%08x",
				  fcopy_op_to_string(req.op), len, req.op, why, status);
		/* A broken START must not leave the previous copy half open. */
		if (req.op == HV_FCOPY_START_FILE_COPY &&
		    fcopy_session_get_state(f->session) == FCOPY_STATE_COPYING) {
			g_warning("Cancelling the copy to %s", fcopy_session_target(f->session));
			fcopy_session_cancel(f->session);
		}
	} else {
		/* formatting costs even when debug is off, and WRITEs are many */
		if (hv_log_debug_enabled())
			g_debug("Request %s (%zu bytes)", fcopy_op_to_string(req.op), len);
		status = run_request(f, &req);
	}
	arm_idle_timer(f);

	n = f->adapter->encode_reply(f->buf, len, f->adapter->max_msg, status);
	if (n < 0) {
		hv_log_errno((int)n, "Cannot build a reply to the %s request: %m",
			     fcopy_op_to_string(req.op));
		return;
	}
	send_reply(f, (size_t)n);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user_data);
static bool receive(fcopy_daemon *f);

static void close_transport(fcopy_daemon *f)
{
	g_clear_handle_id(&f->io_source, g_source_remove);
	hv_transport_close(f->transport);
}

static int open_transport(fcopy_daemon *f)
{
	int r = hv_transport_open(f->transport);

	if (r < 0)
		return r;

	/* on_readable() never runs the main loop itself. */
	f->io_source = hv_unix_fd_add_direct(f->transport->fd, G_IO_IN | G_IO_ERR | G_IO_HUP,
					     on_readable, f);
	g_info("Registered with the FCOPY driver on %s (transport %s, driver version %u)",
	       f->transport->device, f->adapter->name, f->transport->version);
	hv_notify_status("Idle; registered on %s", f->transport->device);
	/*
	 * A ring may already hold packets the host posted while its
	 * interrupts were still masked (before open): look once now.
	 */
	if (f->adapter->drain)
		(void)receive(f);
	return 0;
}

static gboolean on_reopen(gpointer user_data)
{
	fcopy_daemon *f = user_data;
	int r;

	f->reopen_source = 0;
	r = open_transport(f);
	if (r < 0) {
		if (!f->reopen_error_logged)
			hv_log_errno(r, "Failed to reopen %s, retrying: %m", f->transport->device);
		f->reopen_error_logged = true;
		f->reopen_delay_ms = MIN(f->reopen_delay_ms * 2, FCOPY_REOPEN_MAX_MS);
		f->reopen_source = g_timeout_add(f->reopen_delay_ms, on_reopen, f);
		return G_SOURCE_REMOVE;
	}

	f->reopen_error_logged = false;
	return G_SOURCE_REMOVE;
}

static void transport_lost(fcopy_daemon *f)
{
	/* The driver answers the host's pending request with a failure; the copy is over. */
	if (fcopy_session_get_state(f->session) == FCOPY_STATE_COPYING) {
		g_warning(
		    "Copy to %s abandoned: the driver closed or reset %s; temporary file removed",
		    fcopy_session_target(f->session), f->transport->device);
		fcopy_session_cancel(f->session);
	}

	g_warning("The FCOPY driver closed or reset %s; reopening", f->transport->device);
	close_transport(f);
	f->reopen_delay_ms = FCOPY_REOPEN_MIN_MS;
	g_clear_handle_id(&f->reopen_source, g_source_remove);
	f->reopen_source = g_timeout_add(f->reopen_delay_ms, on_reopen, f);
}

/* Receives and handles what is queued; false when the transport was lost. */
static bool receive(fcopy_daemon *f)
{
	ssize_t n;

	/* The ring may hold several packets per interrupt: drain it (see fcopy-adapter.h). */
	for (unsigned int i = 0; i == 0 || f->adapter->drain; i++) {
		n = hv_transport_recv(f->transport, f->buf, f->adapter->max_msg);
		if (n == -EAGAIN)
			return true;

		if (n == -EMSGSIZE) {
			g_warning("Dropped a packet larger than %zu bytes from %s",
				  f->adapter->max_msg, f->transport->device);
			continue;
		}

		if (n < 0) {
			hv_log_errno((int)n, "Failed to read from %s: %m", f->transport->device);
			g_clear_handle_id(&f->io_source, g_source_remove);
			transport_lost(f);
			return false;
		}

		handle_message(f, (size_t)n);
	}
	return true;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user_data)
{
	fcopy_daemon *f = user_data;

	if (!(cond & G_IO_IN)) {
		f->io_source = 0;
		transport_lost(f);
		return G_SOURCE_REMOVE;
	}

	for (unsigned int i = 0;; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (!receive(f)) {
			/* receive() removed this source already */
			return G_SOURCE_REMOVE;
		}

		/* Between copies, and now and then during one, the main loop runs. */
		if (i + 1 >= FCOPY_BURST_REQUESTS ||
		    fcopy_session_get_state(f->session) != FCOPY_STATE_COPYING)
			break;
		/* Nothing in time, a signal, or an error or hang-up (the source handles those). */
		if (poll(&p, 1, FCOPY_BURST_WAIT_MS) <= 0 || p.revents != POLLIN)
			break;
	}
	return G_SOURCE_CONTINUE;
}

static void fcopy_free(void *self)
{
	fcopy_daemon *f = self;

	if (!f)
		return;

	g_clear_handle_id(&f->reopen_source, g_source_remove);
	g_clear_handle_id(&f->idle_source, g_source_remove);
	close_transport(f);
	/* Stopping mid-copy: the temporary file goes, nothing is left under the final name. */
	if (f->session && fcopy_session_get_state(f->session) == FCOPY_STATE_COPYING)
		g_warning("Stopping during the copy to %s: temporary file removed",
			  fcopy_session_target(f->session));
	fcopy_session_free(f->session);
	hv_transport_free(f->transport);
	fcopy_config_clear(&f->cfg);
	g_free(f->buf);
	g_free(f->state_path);
	g_free(f);
}

/*
 * The transports this build has. With transport=auto, the one whose kernel
 * interface the probe found is used; a configured transport picks its entry
 * whatever the probe says (UIO: the configured device, e.g. "emu:<dir>" for
 * the emulated host, or the uio_hv_generic device found in sysfs). Another
 * transport is one more line here plus its name in the [fcopy] transport
 * names (fcopy_config_load()).
 */
struct fcopy_adapter_entry {
	fcopy_kernel_iface iface;
	hv_transport_kind kind;
	const fcopy_adapter *adapter;
};

static const struct fcopy_adapter_entry fcopy_adapters[] = {
	{ FCOPY_IFACE_CHARDEV, HV_TRANSPORT_CHARDEV, &fcopy_adapter_chardev },
	{ FCOPY_IFACE_UIO, HV_TRANSPORT_UIO, &fcopy_adapter_uio },
};

static const struct fcopy_adapter_entry *pick_adapter(hv_transport_kind kind,
						      fcopy_kernel_iface iface)
{
	for (size_t i = 0; i < G_N_ELEMENTS(fcopy_adapters); i++) {
		const struct fcopy_adapter_entry *e = &fcopy_adapters[i];

		if (kind == HV_TRANSPORT_AUTO ? e->iface == iface : e->kind == kind)
			return e;
	}

	return NULL;
}

static int no_interface_error(const fcopy_config *c, fcopy_kernel_iface iface, const char *uio_dev)
{
	const char *dev = c->device ? c->device : FCOPY_CHARDEV_DEFAULT;

	switch (iface) {
	case FCOPY_IFACE_UIO:
		/* never reached while fcopy_adapters[] has the UIO entry */
		g_critical("No %s, and this build cannot use the uio_hv_generic device %s", dev,
			   uio_dev ? uio_dev : "/dev/uio*");
		break;
	case FCOPY_IFACE_UNBOUND:
		g_critical("No %s, and the FCOPY VMBus device " FCOPY_VMBUS_DEVICE_ID
			   " is not bound to uio_hv_generic: on Linux >= 6.10 install the udev "
			   "rule of hyperv-daemons, or run "
			   "'modprobe uio_hv_generic; echo " FCOPY_VMBUS_CLASS_ID
			   " > /sys/bus/vmbus/drivers/uio_hv_generic/new_id'",
			   dev);
		break;
	case FCOPY_IFACE_NONE:
		g_critical(
		    "No FCOPY interface: %s does not exist (Linux <= 6.9: load hv_utils) and there "
		    "is no FCOPY VMBus device (Linux >= 6.10: enable the 'Guest Service Interface' "
		    "integration service on the host, then bind it with 'echo " FCOPY_VMBUS_CLASS_ID
		    " > /sys/bus/vmbus/drivers/uio_hv_generic/new_id' or the udev rule of "
		    "hyperv-daemons)",
		    dev);
		break;
	case FCOPY_IFACE_CHARDEV:
	case _FCOPY_IFACE_MAX:
		break;
	}

	return -ENODEV;
}

static int fcopy_init(hv_daemon *d, void **ret_self)
{
	fcopy_daemon *f = g_new0(fcopy_daemon, 1);
	g_autofree char *removed = NULL;
	g_autofree char *uio_dev = NULL;
	const struct fcopy_adapter_entry *entry;
	fcopy_kernel_iface iface;
	fcopy_options opts;
	const char *why = NULL;
	int r;

	f->daemon = d;

	r = fcopy_config_load(d, &f->cfg);
	if (r < 0)
		goto fail;

	f->state_path = g_build_filename(hv_daemon_get_runtime_dir(d), FCOPY_STATE_NAME, NULL);

	/* A daemon that stopped mid-copy may have left a named temporary file. */
	r = fcopy_cleanup_leftover(f->state_path, &removed);
	if (r > 0)
		g_warning(
		    "Removed %s, the temporary file of a copy a previous daemon did not finish",
		    removed);
	else if (r < 0)
		hv_log_errno(r, "Failed to clean up after %s, continuing: %m", f->state_path);

	opts = (fcopy_options){
	    .file_mode = f->cfg.file_mode,
	    .dir_mode = f->cfg.dir_mode,
	    .allowed = (const char *const *)f->cfg.allowed_dirs,
	    .state_path = f->state_path,
	    .use_tmpfile = f->cfg.tmpfile,
	};
	r = fcopy_session_new(&opts, &f->session);
	if (r < 0)
		goto fail;

	iface = fcopy_probe_kernel(f->cfg.device ? f->cfg.device : FCOPY_CHARDEV_DEFAULT,
				   sysfs_root ? sysfs_root : "/sys", &uio_dev);
	entry = pick_adapter(f->cfg.transport, iface);
	if (!entry) {
		r = no_interface_error(&f->cfg, iface, uio_dev);
		goto fail;
	}

	f->adapter = entry->adapter;
	r = hv_transport_new(f->adapter->service, entry->kind,
			     entry->kind == HV_TRANSPORT_UIO && f->cfg.transport == HV_TRANSPORT_AUTO
				 ? uio_dev
				 : f->cfg.device,
			     &f->transport, &why);
	if (r < 0) {
		hv_log_error_errno(r, "Cannot use %s: %s",
				   f->cfg.device ? f->cfg.device : FCOPY_CHARDEV_DEFAULT,
				   why ? why : "unsupported transport");
		goto fail;
	}
	if (entry->kind == HV_TRANSPORT_UIO && f->cfg.transport == HV_TRANSPORT_AUTO) {
		/*
		 * The device the probe found: after a rescind (the host reset
		 * the channel) the offer that follows may bring another uioN,
		 * so a reopen looks it up again.
		 */
		f->transport->sysfs_root = sysfs_root;
		f->transport->uio_rediscover = true;
	}
	f->buf = g_malloc0(f->adapter->max_msg);

	g_info("Using the %s transport on %s (%s); files mode %04o, directories %04o, %s",
	       f->adapter->name, f->transport->device,
	       f->cfg.transport == HV_TRANSPORT_AUTO ? "auto: found by the kernel interface probe"
						     : why,
	       (unsigned int)f->cfg.file_mode, (unsigned int)f->cfg.dir_mode,
	       f->cfg.allowed_dirs[0] ? "only into the allowed directories" : "into any directory");
	for (char **a = f->cfg.allowed_dirs; *a; a++)
		g_info("Allowed target directory: %s", *a);

	*ret_self = f;
	return 0;
fail:
	fcopy_free(f);
	return r;
}

static int fcopy_start(void *self)
{
	fcopy_daemon *f = self;
	int r = open_transport(f);

	if (r == -EBUSY)
		return hv_log_error_errno(r, "%s is busy: is another FCOPY daemon running?",
					  f->transport->device);
	if (r < 0)
		return hv_log_error_errno(r, "Failed to open and register on %s: %m",
					  f->transport->device);

	return 0;
}

static void fcopy_stop(void *self)
{
	fcopy_daemon *f = self;

	hv_daemon_quit(f->daemon, HV_EXIT_OK);
}

const hv_daemon_ops fcopy_daemon_ops = {
	.name = "hv_fcopy_daemon",
	.summary = "Hyper-V FCOPY daemon: copies files from the host into the guest.",
	.known_keys = fcopy_known_keys,
	.options = fcopy_options_entries,
	.init = fcopy_init,
	.start = fcopy_start,
	.stop = fcopy_stop,
	.free = fcopy_free,
};
