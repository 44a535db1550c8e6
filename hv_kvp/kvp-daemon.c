/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-daemon.h"

#include <errno.h>
#include <glib-unix.h>
#include <stdlib.h>
#include <string.h>

#include "hv-connector.h"
#include "hv-kvp.h"
#include "hv-log.h"
#include "hv-notify.h"
#include "hv-transport.h"
#include "kvp-ops.h"
#include "kvp-pool.h"

#define KVP_GROUP "kvp"
#define KVP_DEFAULT_DEVICE "/dev/vmbus/hv_kvp"
#define KVP_REOPEN_MIN_MS 250
#define KVP_REOPEN_MAX_MS 10000

typedef struct kvp_daemon {
	hv_daemon *daemon;
	hv_transport_kind transport_kind;
	char *device;
	char *pool_dir;
	mode_t pool_mode;

	kvp_pools *pools;
	hv_transport *transport;
	guint io_source;
	guint reopen_source;
	unsigned int reopen_delay_ms;
	bool reopen_error_logged;
	unsigned long n_requests;
	const kvp_provider *provider; /* the one requests are answered with */
	kvp_provider owned_provider;  /* filled by provider_init */
	bool provider_initialized;
} kvp_daemon;

/* One daemon per process: what the driver answered at registration. */
static char driver_version[HV_KVP_MAX_KEY_SIZE];
static const kvp_provider *provider;
static kvp_provider_init_fn provider_init;
static kvp_provider_fini_fn provider_fini;

void kvp_daemon_set_provider(const kvp_provider *p)
{
	provider = p;
}

void kvp_daemon_set_provider_init(kvp_provider_init_fn init, kvp_provider_fini_fn fini)
{
	provider_init = init;
	provider_fini = fini;
}

const char *kvp_daemon_get_driver_version(void)
{
	return driver_version;
}

int kvp_parse_register_reply(const void *buf, size_t len, uint32_t *ret_version)
{
	const struct hv_kvp_msg *msg = buf;
	const char *version;

	if (!buf || len != sizeof(struct hv_kvp_msg))
		return -EBADMSG;

	if (msg->kvp_hdr.operation != HV_KVP_OP_REGISTER1)
		return -EPROTO;

	version = (const char *)msg->body.kvp_register.version;
	memset(driver_version, 0, sizeof(driver_version));
	memcpy(driver_version, version, strnlen(version, sizeof(driver_version) - 1));
	if (ret_version)
		*ret_version = HV_KVP_OP_REGISTER1;
	return 0;
}

/*
 * Registration (Linux drivers/hv/hv_kvp.c, kvp_on_msg() and
 * kvp_handle_handshake()): the driver takes a whole hv_kvp_msg (shorter
 * writes get -EINVAL) whose op is KVP_OP_REGISTER1 and answers with a whole
 * hv_kvp_msg, op 100 and its version string. Op 4 (KVP_OP_REGISTER) would
 * register a daemon without IP injection; we never send it.
 */
static const hv_service kvp_service = {
	.name = "kvp",
	.device = KVP_DEFAULT_DEVICE,
	.max_msg = sizeof(struct hv_kvp_msg),
	.register_msg = &(const struct hv_kvp_msg){ .kvp_hdr.operation = HV_KVP_OP_REGISTER1 },
	.register_len = sizeof(struct hv_kvp_msg),
	.register_reply_len = sizeof(struct hv_kvp_msg),
	.parse_register_reply = kvp_parse_register_reply,
	.cn_idx = HV_CN_KVP_IDX,
	.cn_val = HV_CN_KVP_VAL,
};

static char *opt_pool_dir;
static gboolean allow_user_peer;
static GOptionEntry kvp_options[] = {
	{ "pool-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_pool_dir,
	  "Directory of the pool files .kvp_pool_0 to _4 (default " KVP_POOL_DEFAULT_DIR ")",
	  "DIR" },
	{ "allow-user-peer", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &allow_user_peer,
	  "For tests only: over the netlink connector, talk to a user-space process (the emulated driver) instead of the kernel",
	  NULL },
	{ NULL },
};

static const char *const kvp_known_keys[] = {
	"kvp.transport", "kvp.device", "kvp.pool-dir", "kvp.pool-mode",
	/* read by the provider set up in main.c (kvp-net) */
	"kvp.scripts-dir", "kvp.ifcfg-dir", "kvp.fqdn-lookup", NULL,
};

static int config_load(kvp_daemon *k)
{
	static const char *const transport_names[] = { "auto", "chardev", "netlink", NULL };
	const hv_config *cfg = hv_daemon_get_config(k->daemon);
	g_autofree char *error = NULL;
	g_autofree char *mode = NULL;
	int transport = HV_TRANSPORT_AUTO;
	char *end = NULL;
	unsigned long m;
	int r;

	if (hv_daemon_get_transport(k->daemon)) {
		k->transport_kind = hv_transport_kind_from_string(hv_daemon_get_transport(k->daemon));
		if (k->transport_kind == _HV_TRANSPORT_KIND_INVALID) {
			g_critical("--transport: '%s' is not one of auto, chardev, netlink",
				   hv_daemon_get_transport(k->daemon));
			return -EINVAL;
		}
	} else {
		r = hv_config_get_enum(cfg, KVP_GROUP, "transport", transport_names,
				       HV_TRANSPORT_AUTO, &transport, &error);
		if (r < 0)
			goto bad;
		k->transport_kind = (hv_transport_kind)transport;
	}

	if (hv_daemon_get_device(k->daemon))
		k->device = g_strdup(hv_daemon_get_device(k->daemon));
	else {
		r = hv_config_get_string(cfg, KVP_GROUP, "device", NULL, &k->device, &error);
		if (r < 0)
			goto bad;
	}

	if (opt_pool_dir)
		k->pool_dir = g_strdup(opt_pool_dir);
	else {
		r = hv_config_get_string(cfg, KVP_GROUP, "pool-dir", KVP_POOL_DEFAULT_DIR,
					 &k->pool_dir, &error);
		if (r < 0)
			goto bad;
	}
	if (!g_path_is_absolute(k->pool_dir)) {
		g_critical("%s: [kvp] pool-dir = '%s' is not valid: expected an absolute path",
			   opt_pool_dir ? "--pool-dir" : hv_config_origin(cfg, KVP_GROUP, "pool-dir"),
			   k->pool_dir);
		return -EINVAL;
	}

	r = hv_config_get_string(cfg, KVP_GROUP, "pool-mode", "0644", &mode, &error);
	if (r < 0)
		goto bad;
	errno = 0;
	m = strtoul(mode, &end, 8);
	if (errno || !*mode || *end || m > 0777 || !(m & 0600)) {
		g_critical("%s: [kvp] pool-mode = '%s' is not valid: expected an octal file mode such as 0644 or 0600 (readable and writable by the owner, no special bits)",
			   hv_config_origin(cfg, KVP_GROUP, "pool-mode"), mode);
		return -EINVAL;
	}
	if ((m & 0600) != 0600) {
		g_critical("%s: [kvp] pool-mode = '%s' is not valid: the owner must be able to read and write the pool files",
			   hv_config_origin(cfg, KVP_GROUP, "pool-mode"), mode);
		return -EINVAL;
	}
	k->pool_mode = (mode_t)m;
	return 0;
bad:
	g_critical("%s", error);
	return r;
}

static void schedule_reopen(kvp_daemon *k);

static void close_transport(kvp_daemon *k)
{
	g_clear_handle_id(&k->io_source, g_source_remove);
	hv_transport_close(k->transport);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user_data)
{
	kvp_daemon *k = user_data;
	struct hv_kvp_msg msg;
	ssize_t n;
	int r;

	if (!(cond & G_IO_IN)) {
		g_warning("The KVP driver closed or reset %s; reopening", k->transport->device);
		k->io_source = 0;
		schedule_reopen(k);
		return G_SOURCE_REMOVE;
	}

	n = hv_transport_recv(k->transport, &msg, sizeof(msg));
	if (n == -EAGAIN)
		return G_SOURCE_CONTINUE;

	if (n < 0) {
		hv_log_errno((int)n, "Failed to read from %s, reopening: %m", k->transport->device);
		k->io_source = 0;
		schedule_reopen(k);
		return G_SOURCE_REMOVE;
	}

	k->n_requests++;
	if (!kvp_ops_handle(k->pools, k->provider, &msg, (size_t)n, &msg))
		return G_SOURCE_CONTINUE;

	r = hv_transport_send(k->transport, &msg, sizeof(msg));
	if (r == -EINVAL || r == -EFAULT) {
		/* The driver gave up on this request (its timeout); the device still works. */
		hv_log_errno(r, "The driver refused our reply (did the request time out?): %m");
		return G_SOURCE_CONTINUE;
	}

	if (r < 0) {
		hv_log_errno(r, "Failed to send the reply on %s, reopening: %m",
			     k->transport->device);
		k->io_source = 0;
		schedule_reopen(k);
		return G_SOURCE_REMOVE;
	}

	return G_SOURCE_CONTINUE;
}

static int open_transport(kvp_daemon *k)
{
	int r = hv_transport_open(k->transport);

	if (r < 0)
		return r;

	/* on_readable() never runs the main loop itself. */
	k->io_source = hv_unix_fd_add_direct(k->transport->fd, G_IO_IN | G_IO_ERR | G_IO_HUP,
					     on_readable, k);
	g_info("Registered with the KVP driver on %s (transport %s, driver version '%s')",
	       k->transport->device, k->transport->ops->name, driver_version);
	if (k->provider && k->provider->driver_version)
		k->provider->driver_version(k->provider->userdata, driver_version);
	hv_notify_status("Serving pools in %s; registered on %s", k->pool_dir,
			 k->transport->device);
	return 0;
}

static gboolean on_reopen(gpointer user_data)
{
	kvp_daemon *k = user_data;
	int r;

	k->reopen_source = 0;
	r = open_transport(k);
	if (r < 0) {
		if (!k->reopen_error_logged)
			hv_log_errno(r, "Failed to reopen %s, retrying: %m", k->transport->device);
		k->reopen_error_logged = true;
		k->reopen_delay_ms = MIN(k->reopen_delay_ms * 2, KVP_REOPEN_MAX_MS);
		k->reopen_source = g_timeout_add(k->reopen_delay_ms, on_reopen, k);
		return G_SOURCE_REMOVE;
	}

	k->reopen_error_logged = false;
	return G_SOURCE_REMOVE;
}

static void schedule_reopen(kvp_daemon *k)
{
	close_transport(k);
	k->reopen_delay_ms = KVP_REOPEN_MIN_MS;
	g_clear_handle_id(&k->reopen_source, g_source_remove);
	k->reopen_source = g_timeout_add(k->reopen_delay_ms, on_reopen, k);
}

static void kvp_free(void *self)
{
	kvp_daemon *k = self;

	if (!k)
		return;

	g_clear_handle_id(&k->reopen_source, g_source_remove);
	if (k->transport) {
		close_transport(k);
		hv_transport_free(k->transport);
	}
	if (k->provider_initialized && provider_fini)
		provider_fini(&k->owned_provider);
	kvp_pools_free(k->pools);
	/* Set by option parsing; copied into k->pool_dir. */
	g_clear_pointer(&opt_pool_dir, g_free);
	g_free(k->device);
	g_free(k->pool_dir);
	g_free(k);
}

static int kvp_init(hv_daemon *d, void **ret_self)
{
	kvp_daemon *k = g_new0(kvp_daemon, 1);
	const char *why = NULL;
	int r;

	k->daemon = d;
	r = config_load(k);
	if (r < 0)
		goto fail;

	/* The pools exist before the host connects: readers such as cloud-init expect them. */
	r = kvp_pools_open(k->pool_dir, k->pool_mode, true, &k->pools);
	if (r < 0) {
		hv_log_error_errno(r, "Failed to create the KVP pools in %s: %m", k->pool_dir);
		r = r == -EINVAL ? -EIO : r;
		goto fail;
	}
	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++)
		g_debug("Pool %d: %s, %u records", i, kvp_pool_get_path(k->pools->pool[i]),
			kvp_pool_count(k->pools->pool[i]));

	k->provider = provider;
	if (provider_init) {
		r = provider_init(hv_daemon_get_config(d), &k->owned_provider);
		if (r < 0) {
			hv_log_error_errno(r, "Failed to set up the auto pool and IP providers: %m");
			goto fail;
		}
		k->provider_initialized = true;
		k->provider = &k->owned_provider;
	}

	{
		const kvp_provider *pv = k->provider;
		g_autoptr(GString) missing = g_string_new(NULL);

		if (!pv || !pv->auto_record)
			g_string_append(missing, ", ENUMERATE of the auto pool (2)");
		if (!pv || !pv->get_ip_info)
			g_string_append(missing, ", GET_IP_INFO");
		if (!pv || !pv->set_ip_info)
			g_string_append(missing, ", SET_IP_INFO");
		if (missing->len)
			g_info("No provider for %s in this build: answered with a failure",
			       missing->str + 2);
	}

	r = hv_transport_new(&kvp_service, k->transport_kind, k->device, &k->transport, &why);
	if (r < 0) {
		hv_log_error_errno(r, "No way to reach the KVP driver (%s: %s): is this a Hyper-V guest with hv_utils loaded?",
				   k->device ? k->device : KVP_DEFAULT_DEVICE,
				   why ? why : "unsupported transport");
		r = r == -EINVAL ? -EIO : r;
		goto fail;
	}
	hv_transport_set_allow_user_peer(k->transport, allow_user_peer);
	g_info("Using the %s transport on %s (%s)%s", k->transport->ops->name,
	       k->transport->device, why, allow_user_peer ? "; user-space peers allowed (testing)" : "");

	*ret_self = k;
	return 0;
fail:
	kvp_free(k);
	return r;
}

static int kvp_start(void *self)
{
	kvp_daemon *k = self;
	int r = open_transport(k);

	if (r == -ENOENT)
		return hv_log_error_errno(r, "%s does not exist: is this a Hyper-V guest with hv_utils loaded?",
					  k->transport->device);
	if (r == -EBUSY)
		return hv_log_error_errno(r, "%s is busy: is another KVP daemon running?",
					  k->transport->device);
	if (r == -ENODEV && k->transport->kind == HV_TRANSPORT_NETLINK)
		return hv_log_error_errno(r, "No KVP driver behind the netlink connector (%s is not in /proc/net/connector): is this a Hyper-V guest with hv_utils loaded?",
					  k->transport->device);
	if (r < 0)
		return hv_log_error_errno(r, "Failed to open and register on %s: %m",
					  k->transport->device);

	return 0;
}

static void kvp_stop(void *self)
{
	kvp_daemon *k = self;

	g_info("Stopping after %lu requests", k->n_requests);
	hv_daemon_quit(k->daemon, HV_EXIT_OK);
}

const hv_daemon_ops kvp_daemon_ops = {
	.name = "hv_kvp_daemon",
	.summary = "Hyper-V KVP daemon: key/value pairs exchanged with the host (pools 0 to 4), the guest's IP configuration.",
	.known_keys = kvp_known_keys,
	.options = kvp_options,
	.init = kvp_init,
	.start = kvp_start,
	.stop = kvp_stop,
	.free = kvp_free,
};
