/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-emu-kvp: the emulated Hyper-V host and kernel KVP driver.
 *
 * Mounts the FUSE device directory (/dev/vmbus/hv_kvp), starts the daemon
 * under test, waits for its registration and runs a script of host
 * requests: explicit steps and a seeded random workload. Every request is
 * built the way drivers/hv/hv_kvp.c kvp_send_key() builds it (a zeroed
 * hv_kvp_msg, op and pool, then per op: SET key and value with sizes that
 * count the NUL, GET and DELETE only the key, ENUMERATE only the index,
 * GET_IP_INFO the adapter id), except the deliberately invalid requests of
 * the random workload, which a real driver never sends.
 *
 * Transcript: one "T| " line per request with what the host would see:
 * the status (first 4 bytes of the reply) and, for a successful GET or
 * ENUMERATE, the key and value read from body.kvp_enum_data like
 * kvp_respond_to_host(). No times in it: for a given script and seed it is
 * the same from run to run, so two daemons can be compared with diff.
 * Pool dumps ("T| pool ...") list every record and a hash of the whole file.
 *
 * Bench steps print "B| " lines: operations per second, p50/p99 latency and
 * the daemon's CPU time per operation (its threads' /proc schedstat).
 *
 * Exit: 0 when the script ran (whatever the statuses), 1 when the daemon
 * never registered, died without --restart or a request got no answer
 * from it, 2 on usage or setup errors. Run it inside hv-sandbox only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emu-chardev.h"
#include "emu-daemon.h"
#include "emu-netlink.h"
#include "emu-scratch.h"
#include "emu-util.h"
#include "hv-kvp.h"
#include "hv-status.h"

#define DEFAULT_DEVDIR	   "/dev/vmbus"
#define DEFAULT_POOL_DIR   "/var/lib/hyperv"
#define DEFAULT_TIMEOUT_MS (30ULL * 1000) /* HV_UTIL_TIMEOUT */
#define REGISTER_WAIT_MS   10000
#define STOP_TERM_MS	   5000
#define STOP_KILL_MS	   5000
#define SHOW_MAX	   48 /* longer strings are shown as a prefix, length and hash */

/* A key space small enough that SET, GET and DELETE meet each other. */
#define RANDOM_KEYS 48

struct options {
	const char *devdir;
	const char *pool_dir;
	char *daemon;
	char **daemon_args;
	size_t n_daemon_args;
	const char *pools_on; /* bind-mount DIR/hyperv on the pool directory */
	char **installs;      /* SRC:DEST copies made before the daemon starts */
	size_t n_installs;
	const char *daemon_log;
	uint64_t timeout_ms;
	uint64_t seed;
	bool restart;
	bool netlink; /* --transport netlink: the driver's connector side, no FUSE file */
	bool socket;  /* --transport socket: DEVDIR/hv_kvp a unix socket (emu-chardev.h) */
	bool quiet;
	unsigned int invalid_mask; /* 1 << enum invalid: the classes the random workload sends */
	bool legacy_reg; /* accept a daemon that registers with op 4 (nothing else changes) */
};

struct kvp_emu {
	struct options o;
	struct emu_devdir *dir;
	struct emu_chardev *kvp;
	struct emu_netlink *nl;
	struct emu_daemon daemon;
	char **daemon_argv;
	bool have_daemon;
	unsigned int n_req; /* transcript numbering */
	unsigned int restarts;
	bool broken; /* the daemon died (without --restart) or stopped answering */
	uint64_t rng;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static bool abort_on_signal_or_exit(void *userdata)
{
	struct kvp_emu *e = userdata;

	if (got_signal)
		return true;
	return e->have_daemon && !emu_daemon_running(&e->daemon);
}

/* netlink: only our daemon (or its process group) is the peer */
static bool is_our_daemon(pid_t pid, void *userdata)
{
	struct kvp_emu *e = userdata;
	pid_t ours;

	if (!e->have_daemon)
		return true;
	pthread_mutex_lock(&e->daemon.lock);
	ours = e->daemon.pid;
	pthread_mutex_unlock(&e->daemon.lock);
	return pid > 0 && ours > 0 && (pid == ours || getpgid(pid) == ours);
}

static void device_event(uint64_t t_ns, const char *dev, const char *text, void *userdata)
{
	emu_tl_at(t_ns, "%-11s %s", dev, text);
}

/* ---- small helpers ------------------------------------------------------ */

/* splitmix64: the same sequence for the same seed on every machine */
static uint64_t rnd(struct kvp_emu *e)
{
	uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd_below(struct kvp_emu *e, unsigned int n)
{
	return n ? (unsigned int)(rnd(e) % n) : 0;
}

static uint64_t fnv64(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * A byte string for the transcript: printable ASCII as is, everything else
 * as \xNN; longer than SHOW_MAX: a prefix, the length and a hash.
 */
static void show(char *out, size_t out_len, const uint8_t *s, size_t len)
{
	size_t o = 0, n = len > SHOW_MAX ? SHOW_MAX : len;

	if (out_len < 8) {
		if (out_len)
			out[0] = '\0';
		return;
	}
	out[o++] = '\'';
	for (size_t i = 0; i < n && o + 6 < out_len; i++) {
		uint8_t c = s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", c);
	}
	if (o + 2 < out_len)
		out[o++] = '\'';
	out[o] = '\0';
	if (len > n)
		snprintf(out + o, out_len - o, "...(%zu bytes, fnv %016" PRIx64 ")", len,
			 fnv64(s, len));
}

/* strnlen for a byte buffer */
static size_t blen(const uint8_t *s, size_t max)
{
	const uint8_t *z = memchr(s, 0, max);

	return z ? (size_t)(z - s) : max;
}

static const char *op_name(uint32_t op, char *buf, size_t len)
{
	switch (op) {
	case HV_KVP_OP_GET:
		return "GET";
	case HV_KVP_OP_SET:
		return "SET";
	case HV_KVP_OP_DELETE:
		return "DELETE";
	case HV_KVP_OP_ENUMERATE:
		return "ENUMERATE";
	case HV_KVP_OP_GET_IP_INFO:
		return "GET_IP_INFO";
	case HV_KVP_OP_SET_IP_INFO:
		return "SET_IP_INFO";
	default:
		snprintf(buf, len, "OP_%u", op);
		return buf;
	}
}

/* ---- the daemon --------------------------------------------------------- */

static int wait_registered(struct kvp_emu *e, unsigned int after, uint64_t ms)
{
	int rc = emu_chardev_wait_registered(e->kvp, after, ms, abort_on_signal_or_exit, e);

	if (rc == 0)
		emu_tl("host        daemon registered (registration #%u)",
		       emu_chardev_reg_seq(e->kvp));
	return rc;
}

/* The daemon is gone: note it, restart it with --restart. 0 when it runs again. */
static int daemon_gone(struct kvp_emu *e)
{
	char desc[160] = "never started";
	unsigned int seq;
	int status = 0;

	if (!e->have_daemon)
		return -ECHILD;
	if (emu_daemon_wait_exit(&e->daemon, 2000, &status) == 0)
		emu_daemon_describe(status, desc, sizeof(desc));
	emu_tl_raw(true, "T| daemon exited: %s", desc);
	if (!e->o.restart || got_signal) {
		e->broken = true;
		return -ECHILD;
	}

	seq = emu_chardev_reg_seq(e->kvp);
	if (emu_daemon_start(&e->daemon) < 0 || wait_registered(e, seq, REGISTER_WAIT_MS) < 0) {
		emu_tl_always(0, "FAIL        the restarted daemon did not register");
		e->broken = true;
		return -ECHILD;
	}
	e->restarts++;
	emu_tl_raw(true, "T| daemon restarted");
	return 0;
}

/*
 * A request failed because the daemon closed the device or had not
 * registered: wait until it has registered again (it reopens after an
 * error) or exited (restarted with --restart). -ECHILD when it is gone.
 */
static int daemon_settle(struct kvp_emu *e)
{
	uint64_t end = emu_now_ns() + REGISTER_WAIT_MS * EMU_NSEC_PER_MSEC;

	if (!e->have_daemon)
		return 0;
	while (emu_now_ns() < end && !got_signal) {
		if (!emu_daemon_running(&e->daemon))
			return daemon_gone(e);
		if (emu_chardev_wait_registered(e->kvp, 0, 50, NULL, NULL) == 0)
			return 0;
	}
	emu_tl_always(0, "FAIL        the daemon neither registered again nor exited");
	e->broken = true;
	return -ECHILD;
}

/* ---- requests ----------------------------------------------------------- */

/* What the random workload broke on purpose (printed, so filters can be narrow). */
enum invalid {
	INV_NONE,
	INV_BAD_POOL,	/* pool >= KVP_POOL_COUNT */
	INV_LONG_KEY,	/* key_size > 512 */
	INV_LONG_VALUE, /* value_size > 2048 */
	INV_NO_NUL,	/* key_size counts no NUL: the key fills the size exactly */
	INV_ZERO_KEY,	/* key_size 0 */
	INV_BAD_OP,	/* an op the driver does not know */
	INV_BAD_INDEX,	/* enumerate index far beyond any pool */
	_INV_MAX,
};

static const char *const invalid_names[_INV_MAX] = {
    [INV_NONE] = "",
    [INV_BAD_POOL] = "bad-pool",
    [INV_LONG_KEY] = "long-key",
    [INV_LONG_VALUE] = "long-value",
    [INV_NO_NUL] = "no-nul",
    [INV_ZERO_KEY] = "zero-key",
    [INV_BAD_OP] = "bad-op",
    [INV_BAD_INDEX] = "bad-index",
};

struct timing {
	uint64_t lat_ns; /* posted -> answered */
	bool ok;
};

/*
 * Post one message, wait for the answer, print the transcript line. With
 * @quiet_line nothing is printed (bench). Returns the status the host got,
 * or -errno when the emulator itself failed.
 */
static int64_t request(struct kvp_emu *e, struct hv_kvp_msg *m, const char *desc, bool quiet_line,
		       struct timing *t)
{
	static struct hv_kvp_msg reply;
	char name[16], key[SHOW_MAX * 4 + 64], val[SHOW_MAX * 4 + 400];
	const struct hv_kvp_exchg_msg_value *d = &reply.body.kvp_enum_data.data;
	struct emu_req r;
	unsigned int id;
	uint32_t op = m->kvp_hdr.operation;
	int rc;

	if (e->broken)
		return -ECHILD;

	rc = emu_chardev_post(e->kvp, m, sizeof(*m), e->o.timeout_ms, &id);
	if (rc < 0)
		return rc;
	rc = emu_chardev_wait(e->kvp, id, 0, NULL, NULL, &r);
	if (rc < 0)
		return rc;
	e->n_req++;
	if (t) {
		t->lat_ns = r.answered_ns - r.posted_ns;
		t->ok = r.result == EMU_REQ_OK;
	}

	key[0] = val[0] = '\0';
	if (r.result == EMU_REQ_OK &&
	    emu_chardev_reply(e->kvp, id, &reply, sizeof(reply)) >= (ssize_t)sizeof(reply)) {
		/* kvp_respond_to_host(): strlen() of the enumerate layout's strings */
		if (op == HV_KVP_OP_ENUMERATE) {
			char s[SHOW_MAX * 4 + 48];

			show(s, sizeof(s), d->key, blen(d->key, sizeof(d->key)));
			snprintf(key, sizeof(key), " rkey=%s", s);
		}
		if (op == HV_KVP_OP_ENUMERATE || op == HV_KVP_OP_GET) {
			char s[SHOW_MAX * 4 + 48];

			show(s, sizeof(s), d->value, blen(d->value, sizeof(d->value)));
			snprintf(val, sizeof(val), " rvalue=%s", s);
		}
		if (op == HV_KVP_OP_GET_IP_INFO) {
			const struct hv_kvp_ipaddr_value *ip = &reply.body.kvp_ip_val;

			snprintf(val, sizeof(val), " ip=%.64s sub=%.64s gw=%.64s dns=%.64s dhcp=%u",
				 (const char *)ip->ip_addr, (const char *)ip->sub_net,
				 (const char *)ip->gate_way, (const char *)ip->dns_addr,
				 ip->dhcp_enabled);
		}
	}

	if (!quiet_line)
		emu_tl_raw(true, "T| %u %s pool=%u%s%s status=0x%08x%s%s%s%s", e->n_req,
			   op_name(op, name, sizeof(name)), m->kvp_hdr.pool, desc[0] ? " " : "",
			   desc, r.status,
			   r.result == EMU_REQ_OK || r.result == EMU_REQ_FAILED ? "" : " result=",
			   r.result == EMU_REQ_OK || r.result == EMU_REQ_FAILED
			       ? ""
			       : emu_req_result_to_string(r.result),
			   key, val);
	switch (r.result) {
	case EMU_REQ_OK:
	case EMU_REQ_FAILED:
		return r.status;
	case EMU_REQ_TIMEOUT:
		emu_tl_always(0, "FAIL        request %u: no answer within %llu ms", e->n_req,
			      (unsigned long long)e->o.timeout_ms);
		e->broken = true;
		return -ETIMEDOUT;
	case EMU_REQ_RESET:
	case EMU_REQ_NOT_READY:
	case EMU_REQ_SEND_FAILED:
		if (daemon_settle(e) < 0)
			return -ECHILD;
		return r.status;
	case EMU_REQ_PENDING:
	case EMU_REQ_CANCELLED:
	case EMU_REQ_FAKE:
	case _EMU_REQ_RESULT_MAX:
		break;
	}
	return r.status;
}

static void msg_init(struct hv_kvp_msg *m, uint8_t op, uint8_t pool)
{
	memset(m, 0, sizeof(*m));
	m->kvp_hdr.operation = op;
	m->kvp_hdr.pool = pool;
}

/* kvp_send_key(): the key (converted, at most 511 bytes) and key_size counting the NUL */
static void put_key(struct hv_kvp_exchg_msg_value *d, const char *key, size_t len)
{
	if (len > HV_KVP_MAX_KEY_SIZE - 1)
		len = HV_KVP_MAX_KEY_SIZE - 1;
	memcpy(d->key, key, len);
	d->key_size = (uint32_t)len + 1;
}

static void put_value(struct hv_kvp_exchg_msg_value *d, const char *value, size_t len)
{
	if (len > HV_KVP_MAX_VALUE_SIZE - 1)
		len = HV_KVP_MAX_VALUE_SIZE - 1;
	memcpy(d->value, value, len);
	d->value_size = (uint32_t)len + 1;
}

static void desc_kv(char *out, size_t out_len, const char *key, size_t klen, const char *value,
		    size_t vlen)
{
	char k[SHOW_MAX * 4 + 48], v[SHOW_MAX * 4 + 48];

	show(k, sizeof(k), (const uint8_t *)key, klen);
	if (value) {
		show(v, sizeof(v), (const uint8_t *)value, vlen);
		snprintf(out, out_len, "key=%s value=%s", k, v);
	} else {
		snprintf(out, out_len, "key=%s", k);
	}
}

static int64_t do_set(struct kvp_emu *e, uint8_t pool, const char *key, const char *value,
		      bool quiet, struct timing *t)
{
	static struct hv_kvp_msg m;
	char desc[SHOW_MAX * 8 + 128];

	msg_init(&m, HV_KVP_OP_SET, pool);
	put_key(&m.body.kvp_set.data, key, strlen(key));
	put_value(&m.body.kvp_set.data, value, strlen(value));
	desc_kv(desc, sizeof(desc), key, strlen(key), value, strlen(value));
	return request(e, &m, desc, quiet, t);
}

static int64_t do_get(struct kvp_emu *e, uint8_t pool, const char *key, bool quiet,
		      struct timing *t)
{
	static struct hv_kvp_msg m;
	char desc[SHOW_MAX * 4 + 64];

	msg_init(&m, HV_KVP_OP_GET, pool);
	put_key(&m.body.kvp_get.data, key, strlen(key));
	desc_kv(desc, sizeof(desc), key, strlen(key), NULL, 0);
	return request(e, &m, desc, quiet, t);
}

static int64_t do_delete(struct kvp_emu *e, uint8_t pool, const char *key, bool quiet,
			 struct timing *t)
{
	static struct hv_kvp_msg m;
	char desc[SHOW_MAX * 4 + 64];
	size_t len = strlen(key);

	msg_init(&m, HV_KVP_OP_DELETE, pool);
	if (len > HV_KVP_MAX_KEY_SIZE - 1)
		len = HV_KVP_MAX_KEY_SIZE - 1;
	memcpy(m.body.kvp_delete.key, key, len);
	m.body.kvp_delete.key_size = (uint32_t)len + 1;
	desc_kv(desc, sizeof(desc), key, len, NULL, 0);
	return request(e, &m, desc, quiet, t);
}

static int64_t do_enum_index(struct kvp_emu *e, uint8_t pool, uint32_t index, bool quiet,
			     struct timing *t)
{
	static struct hv_kvp_msg m;
	char desc[32];

	msg_init(&m, HV_KVP_OP_ENUMERATE, pool);
	m.body.kvp_enum_data.index = index;
	snprintf(desc, sizeof(desc), "index=%u", index);
	return request(e, &m, desc, quiet, t);
}

/* The host's enumeration: index 0, 1, ... until an error status (at most max). */
static int do_enumerate(struct kvp_emu *e, uint8_t pool, uint32_t max)
{
	for (uint32_t i = 0; i < max; i++) {
		int64_t st = do_enum_index(e, pool, i, false, NULL);

		if (st < 0)
			return (int)st;
		if (st != HV_S_OK)
			return 0;
	}
	return 0;
}

/* process_ib_ipinfo(): for GET_IP_INFO only the adapter id and the family */
static int64_t do_get_ip_info(struct kvp_emu *e, const char *mac, uint8_t family)
{
	static struct hv_kvp_msg m;
	char desc[160];

	msg_init(&m, HV_KVP_OP_GET_IP_INFO, 0);
	snprintf((char *)m.body.kvp_ip_val.adapter_id, sizeof(m.body.kvp_ip_val.adapter_id), "%s",
		 mac);
	m.body.kvp_ip_val.addr_family = family;
	snprintf(desc, sizeof(desc), "mac=%s family=%u", mac, family);
	return request(e, &m, desc, false, NULL);
}

/*
 * process_ib_ipinfo() for SET_IP_INFO: the host's UTF-16 fields arrive as
 * UTF-8 in the same arrays, each cut to its array's size in bytes; the
 * adapter id is the VMBus device GUID ("{...}").
 */
static int64_t do_set_ip_info(struct kvp_emu *e, const char *adapter, uint8_t dhcp, uint8_t family,
			      const char *ips, const char *subnets, const char *gateways,
			      const char *dns)
{
	static struct hv_kvp_msg m;
	struct hv_kvp_ipaddr_value *v = &m.body.kvp_ip_val;
	char desc[SHOW_MAX * 4 * 6 + 200], sh[6][SHOW_MAX * 4 + 64];
	const char *f[6] = { adapter, ips, subnets, gateways, dns, NULL };

	msg_init(&m, HV_KVP_OP_SET_IP_INFO, 0);
	snprintf((char *)v->adapter_id, sizeof(v->adapter_id), "%s", adapter);
	snprintf((char *)v->ip_addr, sizeof(v->ip_addr), "%s", ips);
	snprintf((char *)v->sub_net, sizeof(v->sub_net), "%s", subnets);
	snprintf((char *)v->gate_way, sizeof(v->gate_way), "%s", gateways);
	snprintf((char *)v->dns_addr, sizeof(v->dns_addr), "%s", dns);
	v->dhcp_enabled = dhcp;
	v->addr_family = family;
	for (int i = 0; f[i]; i++)
		show(sh[i], sizeof(sh[i]), (const uint8_t *)f[i], strlen(f[i]));
	snprintf(desc, sizeof(desc), "adapter=%s dhcp=%u family=%u ip=%s subnet=%s gw=%s dns=%s",
		 sh[0], dhcp, family, sh[1], sh[2], sh[3], sh[4]);
	return request(e, &m, desc, false, NULL);
}

/* An op the script names by number: only op and pool set, like kvp_send_key()'s default. */
static int64_t do_raw_op(struct kvp_emu *e, uint8_t op, uint8_t pool)
{
	static struct hv_kvp_msg m;

	msg_init(&m, op, pool);
	return request(e, &m, "", false, NULL);
}

/* ---- the pool files ----------------------------------------------------- */

static void pool_path(const struct kvp_emu *e, unsigned int pool, char *buf, size_t len)
{
	snprintf(buf, len, "%s/.kvp_pool_%u", e->o.pool_dir, pool);
}

/* Replace pool @pool with n records "seedNNNNN" = "value-NNNNN-..." (daemon idle). */
static int seed_pool(struct kvp_emu *e, unsigned int pool, unsigned int n)
{
	static uint8_t rec[HV_KVP_POOL_RECORD_SIZE];
	char path[512];
	FILE *f;

	mkdir(e->o.pool_dir, 0755);
	pool_path(e, pool, path, sizeof(path));
	f = fopen(path, "we");
	if (!f)
		return -errno;
	for (unsigned int i = 0; i < n; i++) {
		memset(rec, 0, sizeof(rec));
		snprintf((char *)rec, HV_KVP_MAX_KEY_SIZE, "seed%05u", i);
		snprintf((char *)rec + HV_KVP_MAX_KEY_SIZE, HV_KVP_MAX_VALUE_SIZE,
			 "value-%05u-of-a-pre-seeded-pool", i);
		if (fwrite(rec, sizeof(rec), 1, f) != 1) {
			fclose(f);
			return -EIO;
		}
	}
	if (fclose(f) != 0)
		return -errno;
	emu_tl("host        pool %u seeded with %u records", pool, n);
	return 0;
}

/*
 * append:POOL:KEY=VALUE: one record appended to the pool file behind the
 * daemon's back, under flock() like cloud-init and azure-init do (which
 * does not interact with the daemon's fcntl() locks).
 */
static int append_record(struct kvp_emu *e, unsigned int pool, const char *key, size_t klen,
			 const char *value)
{
	static uint8_t rec[HV_KVP_POOL_RECORD_SIZE];
	char path[512];
	int fd, rc = 0;

	memset(rec, 0, sizeof(rec));
	memcpy(rec, key, klen < HV_KVP_MAX_KEY_SIZE - 1 ? klen : HV_KVP_MAX_KEY_SIZE - 1);
	snprintf((char *)rec + HV_KVP_MAX_KEY_SIZE, HV_KVP_MAX_VALUE_SIZE, "%s", value);
	pool_path(e, pool, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0 || write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		rc = -EIO;
	close(fd);
	emu_tl_raw(true, "T| appended to pool %u: key='%.*s' (%s)", pool, (int)klen, key,
		   rc ? strerror(-rc) : "ok");
	return rc;
}

/* Print every record of every pool file and a hash of each whole file. */
static int dump_pools(struct kvp_emu *e)
{
	static uint8_t rec[HV_KVP_POOL_RECORD_SIZE];

	for (unsigned int p = 0; p < _HV_KVP_POOL_COUNT; p++) {
		char path[512], k[SHOW_MAX * 4 + 48], v[SHOW_MAX * 4 + 48];
		uint64_t h = 0xcbf29ce484222325ULL, h0 = h;
		struct stat st;
		unsigned int i = 0;
		FILE *f;

		pool_path(e, p, path, sizeof(path));
		f = fopen(path, "re");
		if (!f) {
			emu_tl_raw(true, "T| pool %u: %s", p, strerror(errno));
			continue;
		}
		if (fstat(fileno(f), &st) < 0)
			st.st_size = -1;
		emu_tl_raw(true, "T| pool %u: %lld bytes, mode %04o", p, (long long)st.st_size,
			   (unsigned int)st.st_mode & 07777);
		for (;;) {
			size_t n = fread(rec, 1, sizeof(rec), f);
			size_t kl, vl;
			bool junk = false;

			for (size_t j = 0; j < n; j++) {
				h ^= rec[j];
				h *= 0x100000001b3ULL;
			}
			if (n < sizeof(rec)) {
				if (n)
					emu_tl_raw(true,
						   "T| pool %u [%u] partial record of %zu bytes", p,
						   i, n);
				break;
			}
			kl = blen(rec, HV_KVP_MAX_KEY_SIZE);
			vl = blen(rec + HV_KVP_MAX_KEY_SIZE, HV_KVP_MAX_VALUE_SIZE);
			/* h0: the record as if everything after each NUL were zero */
			for (size_t j = 0; j < sizeof(rec); j++) {
				bool after =
				    j < HV_KVP_MAX_KEY_SIZE ? j > kl : j > HV_KVP_MAX_KEY_SIZE + vl;

				if (after && rec[j])
					junk = true;
				h0 ^= after ? 0 : rec[j];
				h0 *= 0x100000001b3ULL;
			}
			show(k, sizeof(k), rec, kl);
			show(v, sizeof(v), rec + HV_KVP_MAX_KEY_SIZE, vl);
			emu_tl_raw(true, "T| pool %u [%u] key=%s value=%s%s", p, i, k, v,
				   junk ? " (bytes after the NUL)" : "");
			i++;
		}
		fclose(f);
		/* fnv: the whole file; fnv0: with the bytes after each NUL taken as zero */
		emu_tl_raw(true, "T| pool %u: %u records, fnv %016" PRIx64 ", fnv0 %016" PRIx64, p,
			   i, h, h0);
	}
	return 0;
}

/* ---- the random workload ------------------------------------------------ */

static const char *const utf8_words[] = {
    "ключ", "värde", "键", "κλειδί", "clé", "🔑",
};

/* A key of the small key space (so that SET, GET and DELETE meet), sometimes long or UTF-8. */
static void random_key(struct kvp_emu *e, char *buf, size_t len)
{
	unsigned int k = rnd_below(e, RANDOM_KEYS);

	if (k < RANDOM_KEYS - 4) {
		snprintf(buf, len, "key%02u", k);
	} else if (k == RANDOM_KEYS - 4) {
		snprintf(buf, len, "%s-%u", utf8_words[rnd_below(e, 6)], k);
	} else {
		/* up to the driver's 511 bytes */
		size_t n = k == RANDOM_KEYS - 1 ? HV_KVP_MAX_KEY_SIZE - 1 : 100 + 50 * (k % 4);

		if (n >= len)
			n = len - 1;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (i + k) % 26);
		buf[n] = '\0';
	}
}

static void random_value(struct kvp_emu *e, char *buf, size_t len)
{
	unsigned int shape = rnd_below(e, 10);
	size_t n;

	if (shape == 0) {
		buf[0] = '\0';
		return;
	}
	if (shape == 1) {
		snprintf(buf, len, "%s=%" PRIu64, utf8_words[rnd_below(e, 6)], rnd(e) % 100000);
		return;
	}
	n = shape == 2	 ? HV_KVP_MAX_VALUE_SIZE - 1
	    : shape == 3 ? 1000 + rnd_below(e, 1047)
			 : 1 + rnd_below(e, 40);
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('A' + rnd_below(e, 58));
	buf[n] = '\0';
	/* no quotes or backslashes in values: readable transcripts */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\\' || buf[i] == '\'' || buf[i] == '`')
			buf[i] = '_';
}

/* One deliberately invalid request (never from a real driver). */
static int64_t random_invalid(struct kvp_emu *e)
{
	static struct hv_kvp_msg m;
	enum invalid inv = (enum invalid)(1 + rnd_below(e, _INV_MAX - 1));
	uint8_t pool = (uint8_t)rnd_below(e, _HV_KVP_POOL_COUNT);

	/* the same random draws whatever the mask: a disabled class becomes a GET */
	if (!(e->o.invalid_mask & (1U << inv))) {
		char k[64];

		random_key(e, k, sizeof(k));
		return do_get(e, pool, k, false, NULL);
	}
	char desc[96], key[64];
	struct hv_kvp_exchg_msg_value *d = &m.body.kvp_set.data;

	random_key(e, key, sizeof(key));
	switch (inv) {
	case INV_BAD_POOL: {
		static const uint8_t bad[] = {5, 6, 42, 255};
		static const uint8_t ops[] = {HV_KVP_OP_GET, HV_KVP_OP_SET, HV_KVP_OP_DELETE,
					      HV_KVP_OP_ENUMERATE};
		uint8_t op = ops[rnd_below(e, 4)];

		msg_init(&m, op, bad[rnd_below(e, 4)]);
		if (op == HV_KVP_OP_DELETE) {
			memcpy(m.body.kvp_delete.key, key, strlen(key));
			m.body.kvp_delete.key_size = (uint32_t)strlen(key) + 1;
		} else if (op != HV_KVP_OP_ENUMERATE) {
			put_key(d, key, strlen(key));
			if (op == HV_KVP_OP_SET)
				put_value(d, "v", 1);
		}
		snprintf(desc, sizeof(desc), "key='%s'", op == HV_KVP_OP_ENUMERATE ? "" : key);
		break;
	}
	case INV_LONG_KEY:
		msg_init(&m, rnd_below(e, 2) ? HV_KVP_OP_SET : HV_KVP_OP_GET, pool);
		memset(d->key, 'K', sizeof(d->key));
		d->key_size = HV_KVP_MAX_KEY_SIZE + 1 + rnd_below(e, 1000);
		if (m.kvp_hdr.operation == HV_KVP_OP_SET)
			put_value(d, "v", 1);
		snprintf(desc, sizeof(desc), "key_size=%u", d->key_size);
		break;
	case INV_LONG_VALUE:
		msg_init(&m, HV_KVP_OP_SET, pool);
		put_key(d, key, strlen(key));
		memset(d->value, 'V', sizeof(d->value));
		d->value_size = HV_KVP_MAX_VALUE_SIZE + 1 + rnd_below(e, 1000);
		snprintf(desc, sizeof(desc), "key='%.40s' value_size=%u", key, d->value_size);
		break;
	case INV_NO_NUL:
		msg_init(&m, rnd_below(e, 2) ? HV_KVP_OP_SET : HV_KVP_OP_GET, pool);
		if (rnd_below(e, 2)) {
			/* the whole key field, no NUL anywhere */
			memset(d->key, 'N', sizeof(d->key));
			d->key_size = HV_KVP_MAX_KEY_SIZE;
		} else {
			memcpy(d->key, key, strlen(key));
			d->key_size = (uint32_t)strlen(key); /* the NUL not counted */
		}
		if (m.kvp_hdr.operation == HV_KVP_OP_SET) {
			memset(d->value, 'w', 8);
			d->value_size = 8; /* no NUL counted either */
		}
		snprintf(desc, sizeof(desc), "key_size=%u", d->key_size);
		break;
	case INV_ZERO_KEY:
		msg_init(&m, rnd_below(e, 2) ? HV_KVP_OP_SET : HV_KVP_OP_GET, pool);
		if (m.kvp_hdr.operation == HV_KVP_OP_SET)
			put_value(d, "zero", 4);
		snprintf(desc, sizeof(desc), "key_size=0");
		break;
	case INV_BAD_OP: {
		static const uint8_t ops[] = {6, 7, 42, 99, 100, 101, 200, 255};

		msg_init(&m, ops[rnd_below(e, 8)], pool);
		desc[0] = '\0';
		break;
	}
	case INV_BAD_INDEX:
		msg_init(&m, HV_KVP_OP_ENUMERATE, pool);
		m.body.kvp_enum_data.index = 0x7fffffffU + rnd_below(e, 1000);
		snprintf(desc, sizeof(desc), "index=%u", m.body.kvp_enum_data.index);
		break;
	case INV_NONE:
	case _INV_MAX:
		return 0;
	}

	{
		char full[160];

		snprintf(full, sizeof(full), "%s%sinv=%s", desc, desc[0] ? " " : "",
			 invalid_names[inv]);
		return request(e, &m, full, false, NULL);
	}
}

static int run_random(struct kvp_emu *e, unsigned int n)
{
	static char key[HV_KVP_MAX_KEY_SIZE], value[HV_KVP_MAX_VALUE_SIZE];

	emu_tl("host        random workload: %u requests, seed %" PRIu64 ", invalid classes 0x%x",
	       n, e->o.seed, e->o.invalid_mask);
	for (unsigned int i = 0; i < n && !e->broken && !got_signal; i++) {
		unsigned int kind = rnd_below(e, 100);
		uint8_t pool = (uint8_t)rnd_below(e, _HV_KVP_POOL_COUNT);
		int64_t st;

		/* pool 2 (auto) is generated by the daemon; writes to it are rarer */
		if (pool == 2 && kind < 45 && rnd_below(e, 4))
			pool = 1;
		random_key(e, key, sizeof(key));
		if (kind < 30) {
			random_value(e, value, sizeof(value));
			st = do_set(e, pool, key, value, false, NULL);
		} else if (kind < 55) {
			st = do_get(e, pool, key, false, NULL);
		} else if (kind < 70) {
			st = do_delete(e, pool, key, false, NULL);
		} else if (kind < 88) {
			st = do_enum_index(e, pool, rnd_below(e, RANDOM_KEYS + 4), false, NULL);
		} else if (kind < 90) {
			st = do_enumerate(e, pool, RANDOM_KEYS * 2);
		} else {
			st = random_invalid(e);
		}
		if (st < 0 && st != -ECHILD)
			return (int)st;
	}
	return e->broken ? -ECHILD : 0;
}

/* ---- bench -------------------------------------------------------------- */

/* CPU time of all the daemon's threads in ns: /proc/PID/task/TID/schedstat, else stat ticks. */
static uint64_t daemon_cpu_ns(pid_t pid)
{
	char path[64];
	uint64_t sum = 0;
	bool any = false;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char p[320];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		f = fopen(p, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			any = true;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	if (!any) {
		unsigned long long ut = 0, st = 0;
		char buf[1024], *p;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "re");
		if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			   &st) == 2)
			sum = (ut + st) * (EMU_NSEC_PER_SEC / (uint64_t)sysconf(_SC_CLK_TCK));
		if (f)
			fclose(f);
	}
	return sum;
}

/* Sum of a "Name: N" field of /proc/PID/task/TID/status over the daemon's threads (or VmRSS etc.). */
static uint64_t daemon_status_sum(pid_t pid, const char *field, bool all_threads)
{
	char path[64];
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d = NULL;
	size_t flen = strlen(field);

	if (all_threads) {
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		d = opendir(path);
	}
	for (;;) {
		char p[320], line[256];
		FILE *f;

		if (all_threads) {
			if (!d || !(de = readdir(d)))
				break;
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "/proc/%d/task/%s/status", (int)pid, de->d_name);
		} else
			snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
		f = fopen(p, "re");
		while (f && fgets(line, sizeof(line), f)) {
			if (strncmp(line, field, flen) == 0 && line[flen] == ':')
				sum += strtoull(line + flen + 1, NULL, 10);
		}
		if (f)
			fclose(f);
		if (!all_threads)
			break;
	}
	if (d)
		closedir(d);
	return sum;
}

static uint64_t daemon_switches(pid_t pid)
{
	return daemon_status_sum(pid, "voluntary_ctxt_switches", true) +
	       daemon_status_sum(pid, "nonvoluntary_ctxt_switches", true);
}

/*
 * Memory after the timed operations (resident set now and its peak), then
 * the daemon's wake-ups (context switches of all its threads) while the host
 * sends nothing for @idle_ms (after half a second to settle).
 */
static void bench_idle_report(pid_t pid, unsigned int records, unsigned int idle_ms)
{
	uint64_t rss = daemon_status_sum(pid, "VmRSS", false);
	uint64_t hwm = daemon_status_sum(pid, "VmHWM", false);
	struct timespec settle = {0, 500 * 1000000L};
	struct timespec ts = {idle_ms / 1000, (long)(idle_ms % 1000) * 1000000L};
	uint64_t s0, c0, t0, s1, c1, dt;

	/* The last reply's own switches (back to poll() through the FUSE device) are not idleness. */
	while (nanosleep(&settle, &settle) < 0 && errno == EINTR && !got_signal)
		;
	s0 = daemon_switches(pid);
	c0 = daemon_cpu_ns(pid);
	t0 = emu_now_ns();
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !got_signal)
		;
	s1 = daemon_switches(pid);
	c1 = daemon_cpu_ns(pid);
	dt = emu_now_ns() - t0;
	emu_tl_raw(true,
		   "B| op=IDLE records=%u rss_kb=%llu hwm_kb=%llu idle_s=%.2f "
		   "wakeups_per_s=%.2f idle_cpu_us_per_s=%.2f",
		   records, (unsigned long long)rss, (unsigned long long)hwm, (double)dt / 1e9,
		   (double)(s1 - s0) * 1e9 / (double)(dt ? dt : 1),
		   (double)(c1 - c0) / 1e3 * 1e9 / (double)(dt ? dt : 1));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bench_report(struct kvp_emu *e, const char *op, unsigned int records, uint64_t *lat,
			 unsigned int n, unsigned int n_ok, uint64_t wall_ns, uint64_t cpu_ns)
{
	if (!n)
		return;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	emu_tl_raw(true,
		   "B| op=%s records=%u count=%u ok=%u ops_per_s=%.1f p50_us=%.1f p99_us=%.1f "
		   "cpu_us_per_op=%.2f",
		   op, records, n, n_ok, (double)n * 1e9 / (double)(wall_ns ? wall_ns : 1),
		   (double)lat[n / 2] / 1e3,
		   (double)lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3,
		   (double)cpu_ns / 1e3 / n);
}

/*
 * bench:RECORDS:COUNT on pool 1: seed RECORDS records, then COUNT SETs of
 * existing keys, COUNT GETs, COUNT ENUMERATEs of random indexes and
 * min(COUNT, RECORDS) DELETEs of distinct keys. With IDLE_MS
 * (bench:RECORDS:COUNT:IDLE_MS), then the daemon's memory and its wake-ups
 * while nothing is asked for IDLE_MS.
 */
static int run_bench(struct kvp_emu *e, unsigned int records, unsigned int count,
		     unsigned int idle_ms)
{
	static const char *const names[] = {"SET", "GET", "ENUMERATE", "DELETE"};
	uint64_t *lat = calloc(count ? count : 1, sizeof(*lat));
	const uint8_t pool = 1;
	pid_t pid;
	int rc;

	if (!lat)
		return -ENOMEM;
	rc = seed_pool(e, pool, records);
	if (rc < 0) {
		free(lat);
		return rc;
	}
	pthread_mutex_lock(&e->daemon.lock);
	pid = e->daemon.pid;
	pthread_mutex_unlock(&e->daemon.lock);

	for (unsigned int phase = 0; phase < 4 && !e->broken && !got_signal; phase++) {
		unsigned int n = phase == 3 && count > records ? records : count, n_ok = 0;
		uint64_t t0 = emu_now_ns(), c0 = daemon_cpu_ns(pid);

		for (unsigned int i = 0; i < n && !e->broken; i++) {
			char key[32], value[64];
			unsigned int k = records ? rnd_below(e, records) : i;
			struct timing t = {0};

			snprintf(key, sizeof(key), "seed%05u", phase == 3 ? i : k);
			switch (phase) {
			case 0:
				snprintf(value, sizeof(value), "bench-value-%u", i);
				do_set(e, pool, key, value, true, &t);
				break;
			case 1:
				do_get(e, pool, key, true, &t);
				break;
			case 2:
				do_enum_index(e, pool, k, true, &t);
				break;
			default:
				do_delete(e, pool, key, true, &t);
				break;
			}
			lat[i] = t.lat_ns;
			n_ok += t.ok;
		}
		bench_report(e, names[phase], records, lat, n, n_ok, emu_now_ns() - t0,
			     daemon_cpu_ns(pid) - c0);
	}
	if (!e->broken && !got_signal && idle_ms)
		bench_idle_report(pid, records, idle_ms);
	free(lat);
	return e->broken ? -ECHILD : 0;
}

/* ---- steps -------------------------------------------------------------- */

static int parse_pool(const char *s, uint8_t *ret, const char **rest)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || v > 255 || (*end != ':' && *end != '\0'))
		return -EINVAL;
	*ret = (uint8_t)v;
	*rest = *end == ':' ? end + 1 : end;
	return 0;
}

static int parse_uint(const char *s, unsigned int *ret)
{
	uint64_t v;

	if (emu_parse_u64(s, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

/*
 * set-ip-info:ADAPTER|DHCP|IPS|SUBNETS|GATEWAYS|DNS[|FAMILY]: lists with ','
 * for the wire's ';' (a ';' would split a CMake list), "\n" for a newline
 * (hostile input); FAMILY defaults to 1 (IPv4).
 */
static int64_t set_ip_info_step(struct kvp_emu *e, const char *arg)
{
	static char buf[8192];
	char *f[7] = { NULL }, *cur = buf;
	unsigned int dhcp = 0, family = HV_KVP_ADDR_FAMILY_IPV4, n = 0;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	while (cur && n < 7)
		f[n++] = strsep(&cur, "|");
	if (n < 6 || cur || parse_uint(f[1], &dhcp) < 0 || dhcp > 255 ||
	    (f[6] && (parse_uint(f[6], &family) < 0 || family > 255)))
		return -EINVAL;
	for (int i = 2; i < 6; i++) {
		char *r = f[i], *w = f[i];

		/* ',' becomes ';', the two characters \n a newline; in place (never longer). */
		while (*r) {
			if (r[0] == '\\' && r[1] == 'n') {
				*w++ = '\n';
				r += 2;
			} else {
				*w++ = *r == ',' ? ';' : *r;
				r++;
			}
		}
		*w = '\0';
	}
	return do_set_ip_info(e, f[0], (uint8_t)dhcp, (uint8_t)family, f[2], f[3], f[4], f[5]);
}

/*
 * get-ip-info:auto: the first adapter in /sys/class/net (by name) with a
 * non-zero MAC, upper case like the host sends it.
 */
static int first_mac(char *buf, size_t len)
{
	struct dirent **names = NULL;
	int n = scandir("/sys/class/net", &names, NULL, alphasort);
	int rc = -ENODEV;

	for (int i = 0; i < n; i++) {
		char path[300], addr[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/net/%s/address", names[i]->d_name);
		f = rc < 0 && names[i]->d_name[0] != '.' ? fopen(path, "re") : NULL;
		if (f && fgets(addr, sizeof(addr), f) && strlen(addr) >= 17 &&
		    strncmp(addr, "00:00:00:00:00:00", 17) != 0) {
			for (size_t k = 0; k < 17; k++)
				addr[k] = (char)(addr[k] >= 'a' && addr[k] <= 'f' ? addr[k] - 32
										  : addr[k]);
			snprintf(buf, len, "%.17s", addr);
			rc = 0;
		}
		if (f)
			fclose(f);
		free(names[i]);
	}
	free(names);
	return rc;
}

#define FILL_NAME ".hv-emu-fill"

/* fill: write a file next to the pool directory until its file system is full. */
static int fill_fs(struct kvp_emu *e, bool fill)
{
	static char block[65536];
	char path[600];
	uint64_t total = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", e->o.pool_dir, FILL_NAME);
	if (!fill) {
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		emu_tl_raw(true, "T| unfilled");
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	memset(block, 0xa5, sizeof(block));
	for (size_t sz = sizeof(block); sz; sz /= 2) {
		ssize_t n;

		while ((n = write(fd, block, sz)) > 0)
			total += (uint64_t)n;
	}
	fsync(fd);
	close(fd);
	emu_tl("host        filled the pool file system (%llu KiB)",
	       (unsigned long long)(total / 1024));
	/* the size depends on the file system: not in the transcript */
	emu_tl_raw(true, "T| filled");
	return 0;
}

/* restart-daemon: SIGTERM, start again, wait for the registration. */
static int restart_daemon(struct kvp_emu *e)
{
	unsigned int seq = emu_chardev_reg_seq(e->kvp);

	if (!e->have_daemon)
		return -ECHILD;
	if (emu_daemon_stop(&e->daemon, STOP_TERM_MS, STOP_KILL_MS) < 0 ||
	    emu_daemon_start(&e->daemon) < 0 || wait_registered(e, seq, REGISTER_WAIT_MS) < 0) {
		emu_tl_always(0, "FAIL        restart-daemon: the daemon did not come back");
		e->broken = true;
		return -ECHILD;
	}
	emu_tl_raw(true, "T| daemon restarted by the script");
	return 0;
}

/*
 * kill-burst:POOL:N:EVERY: N SETs of "burst-NNNNN" on POOL; every EVERY-th
 * one is posted and the daemon is killed (SIGKILL) 0 to 3 ms later
 * (seeded), wherever it is: before reading the request, in the middle of
 * writing the pool, or after the reply. The daemon is started again and the
 * burst goes on. Afterwards the pool file must be well-formed (whole
 * records, each key and value NUL-terminated, nothing after the NUL) and
 * hold every record whose SET was acknowledged (status 0) with its value.
 * Leftover temporary files of an interrupted write are counted.
 */
static int kill_burst(struct kvp_emu *e, uint8_t pool, unsigned int n, unsigned int every)
{
	static struct hv_kvp_msg m;
	static uint8_t rec[HV_KVP_POOL_RECORD_SIZE];
	uint8_t *acked = calloc(n ? n : 1, 1), *found = calloc(n ? n : 1, 1);
	unsigned int kills = 0, n_acked = 0, n_unacked_present = 0, records = 0, temps = 0;
	unsigned int missing = 0, bad = 0;
	char path[512], key[32], value[64];
	struct dirent *de;
	DIR *dir;
	FILE *f;
	int rc = 0;

	if (!acked || !found || !e->have_daemon || e->o.netlink || !every) {
		free(acked);
		free(found);
		return -EINVAL;
	}

	for (unsigned int i = 0; i < n && !e->broken && !got_signal; i++) {
		snprintf(key, sizeof(key), "burst-%05u", i);
		snprintf(value, sizeof(value), "value-%05u-%016llx", i, (unsigned long long)rnd(e));
		if (i % every != every - 1) {
			int64_t st = do_set(e, pool, key, value, true, NULL);

			if (st < 0) {
				rc = (int)st;
				break;
			}
			acked[i] = st == HV_S_OK;
		} else {
			struct emu_req r;
			unsigned int id, seq = emu_chardev_reg_seq(e->kvp);
			int status;

			msg_init(&m, HV_KVP_OP_SET, pool);
			put_key(&m.body.kvp_set.data, key, strlen(key));
			put_value(&m.body.kvp_set.data, value, strlen(value));
			rc = emu_chardev_post(e->kvp, &m, sizeof(m), e->o.timeout_ms, &id);
			if (rc < 0)
				break;
			{
				unsigned int us = rnd_below(e, 3000);
				struct timespec ts = {0, (long)us * 1000L};

				nanosleep(&ts, NULL);
			}
			emu_daemon_signal(&e->daemon, SIGKILL);
			rc = emu_chardev_wait(e->kvp, id, 0, NULL, NULL, &r);
			if (rc < 0)
				break;
			e->n_req++;
			acked[i] = r.result == EMU_REQ_OK;
			if (emu_daemon_wait_exit(&e->daemon, 5000, &status) < 0 ||
			    emu_daemon_start(&e->daemon) < 0 ||
			    wait_registered(e, seq, REGISTER_WAIT_MS) < 0) {
				emu_tl_always(0, "FAIL        kill-burst: the daemon did not come "
						 "back after SIGKILL");
				e->broken = true;
				rc = -ECHILD;
				break;
			}
			kills++;
		}
		n_acked += acked[i];
	}

	/* the pool file as the next reader sees it */
	pool_path(e, pool, path, sizeof(path));
	f = fopen(path, "re");
	if (!f) {
		rc = rc ? rc : -errno;
		goto out;
	}
	for (;;) {
		size_t got = fread(rec, 1, sizeof(rec), f);
		size_t kl, vl;
		unsigned int idx;
		char tail;

		if (got == 0)
			break;
		if (got < sizeof(rec)) {
			emu_tl_always(0, "FAIL        kill-burst: partial record of %zu bytes",
				      got);
			bad++;
			break;
		}
		records++;
		kl = blen(rec, HV_KVP_MAX_KEY_SIZE);
		vl = blen(rec + HV_KVP_MAX_KEY_SIZE, HV_KVP_MAX_VALUE_SIZE);
		if (kl == HV_KVP_MAX_KEY_SIZE || vl == HV_KVP_MAX_VALUE_SIZE) {
			bad++;
			continue;
		}
		for (size_t j = 0; j < sizeof(rec); j++) {
			bool after =
			    j < HV_KVP_MAX_KEY_SIZE ? j > kl : j > HV_KVP_MAX_KEY_SIZE + vl;

			if (after && rec[j])
				bad++;
		}
		if (sscanf((const char *)rec, "burst-%5u%c", &idx, &tail) != 1 || idx >= n)
			continue;
		if (strncmp((const char *)rec + HV_KVP_MAX_KEY_SIZE, "value-", 6) != 0 ||
		    (unsigned int)atoi((const char *)rec + HV_KVP_MAX_KEY_SIZE + 6) != idx) {
			bad++;
			continue;
		}
		found[idx]++;
	}
	fclose(f);

	for (unsigned int i = 0; i < n; i++) {
		if (found[i] > 1)
			bad++;
		if (acked[i] && !found[i]) {
			emu_tl_always(0,
				      "FAIL        kill-burst: acknowledged record burst-%05u "
				      "is not in the pool file",
				      i);
			missing++;
		}
		if (!acked[i] && found[i])
			n_unacked_present++;
	}

	dir = opendir(e->o.pool_dir);
	while (dir && (de = readdir(dir)))
		if (strstr(de->d_name, ".tmp-"))
			temps++;
	if (dir)
		closedir(dir);

	emu_tl_raw(true,
		   "T| kill-burst pool %u: %u SETs, %u daemons killed, %u acknowledged, %u of "
		   "them missing, %u unacknowledged present, %u records, %u malformed",
		   pool, n, kills, n_acked, missing, n_unacked_present, records, bad);
	/* not in the transcript: how many depends on where the kills landed */
	emu_tl_always(0, "kill-burst: %u temporary files left in %s", temps, e->o.pool_dir);
	if (missing || bad)
		rc = rc ? rc : -EUCLEAN;
out:
	free(acked);
	free(found);
	return rc;
}

/* The pool directory's file system (--pools-on): its scratch entry. */
static int pools_scratch(struct kvp_emu *e, struct emu_scratch **ret_s, unsigned int *ret_i)
{
	struct emu_scratch *s = NULL;
	int rc;

	if (!e->o.pools_on)
		return -EINVAL;
	rc = emu_scratch_load(&s);
	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < s->n; i++) {
		if (strcmp(s->fs[i].mnt, e->o.pools_on) == 0 && s->fs[i].dev && s->fs[i].fstype) {
			*ret_s = s;
			*ret_i = i;
			return 0;
		}
	}
	emu_scratch_free(s);
	return -ENOENT;
}

/* FS_IOC_SHUTDOWN (ext4's EXT4_IOC_SHUTDOWN, xfs's XFS_IOC_GOINGDOWN): _IOR('X', 125, __u32) */
#define EMU_IOC_SHUTDOWN	_IOR('X', 125, uint32_t)
#define EMU_SHUTDOWN_NOLOGFLUSH 2U

/*
 * shutdown-pools-fs: the pool file system (--pools-on) fails like a dying
 * disk: every later write or read there gets EIO. Nothing is flushed
 * first (NOLOGFLUSH), so only what the daemon synced survives.
 */
static int shutdown_pools_fs(struct kvp_emu *e)
{
	uint32_t how = EMU_SHUTDOWN_NOLOGFLUSH;
	int fd, rc = 0;

	if (!e->o.pools_on)
		return -EINVAL;
	fd = open(e->o.pools_on, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, EMU_IOC_SHUTDOWN, &how) < 0)
		rc = -errno;
	close(fd);
	emu_tl_raw(true, "T| pool file system shut down (I/O errors from now on): %s",
		   rc ? strerror(-rc) : "ok");
	return rc;
}

/*
 * remount-pools: what a reboot after the I/O error does: stop the daemon,
 * unmount the pool file system, mount its device again (journal replay),
 * bind the pool directory again and start the daemon.
 */
static int remount_pools(struct kvp_emu *e)
{
	struct emu_scratch *s = NULL;
	unsigned int i, seq;
	char dir[512];
	int rc;

	if (!e->have_daemon)
		return -ECHILD;
	rc = pools_scratch(e, &s, &i);
	if (rc < 0)
		return rc == -EINVAL ? rc : -ENOENT;
	seq = emu_chardev_reg_seq(e->kvp);
	snprintf(dir, sizeof(dir), "%s/hyperv", e->o.pools_on);
	if (emu_daemon_stop(&e->daemon, STOP_TERM_MS, STOP_KILL_MS) < 0 ||
	    umount2(e->o.pool_dir, 0) < 0 || umount2(e->o.pools_on, 0) < 0 ||
	    mount(s->fs[i].dev, e->o.pools_on, s->fs[i].fstype, 0, NULL) < 0 ||
	    mount(dir, e->o.pool_dir, NULL, MS_BIND, NULL) < 0) {
		rc = -errno;
		emu_tl_always(0, "FAIL        remount-pools: %s", strerror(errno));
		emu_scratch_free(s);
		e->broken = true;
		return rc;
	}
	emu_scratch_free(s);
	emu_tl_raw(true, "T| pool file system mounted again");
	if (emu_daemon_start(&e->daemon) < 0 || wait_registered(e, seq, REGISTER_WAIT_MS) < 0) {
		emu_tl_always(0, "FAIL        remount-pools: the daemon did not come back");
		e->broken = true;
		return -ECHILD;
	}
	emu_tl_raw(true, "T| daemon restarted on the remounted pools");
	return 0;
}

/*
 * reset-during-set:POOL:KEY=VALUE: the driver is reset (the transport torn
 * down, as on a VMBus rescind) right after posting a SET. The host gets a
 * failure; the daemon must notice, reopen the device and register again.
 */
static int reset_during_set(struct kvp_emu *e, uint8_t pool, const char *key, const char *value)
{
	static struct hv_kvp_msg m;
	struct emu_req r;
	unsigned int id;
	int rc;

	if (e->o.netlink)
		return -EINVAL;
	msg_init(&m, HV_KVP_OP_SET, pool);
	put_key(&m.body.kvp_set.data, key, strlen(key));
	put_value(&m.body.kvp_set.data, value, strlen(value));
	rc = emu_chardev_post(e->kvp, &m, sizeof(m), e->o.timeout_ms, &id);
	if (rc < 0)
		return rc;
	emu_chardev_reset(e->kvp);
	rc = emu_chardev_wait(e->kvp, id, 0, NULL, NULL, &r);
	if (rc < 0)
		return rc;
	e->n_req++;
	/* whether the daemon had replied before the reset is a race: not in the transcript */
	emu_tl_always(0, "reset-during-set: request %s, status 0x%08x",
		      emu_req_result_to_string(r.result), r.status);
	emu_tl_raw(true, "T| %u SET pool=%u key='%s' driver reset right after posting", e->n_req,
		   pool, key);
	if (daemon_settle(e) < 0)
		return -ECHILD;
	emu_tl_raw(true, "T| daemon registered again after the reset");
	return 0;
}

/*
 * late-set:POOL:KEY=VALUE: the pool file is held locked (flock, as
 * cloud-init does) past the driver's timeout for this one SET (500 ms):
 * the host gets its failure, the daemon's reply comes later and is refused
 * by the driver. The daemon must go on serving.
 */
static int late_set(struct kvp_emu *e, uint8_t pool, const char *key, const char *value)
{
	static struct hv_kvp_msg m;
	struct emu_req r;
	char path[512];
	unsigned int id;
	uint64_t end;
	int fd, rc;

	if (pool >= _HV_KVP_POOL_COUNT || e->o.netlink)
		return -EINVAL;
	pool_path(e, pool, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	msg_init(&m, HV_KVP_OP_SET, pool);
	put_key(&m.body.kvp_set.data, key, strlen(key));
	put_value(&m.body.kvp_set.data, value, strlen(value));
	rc = emu_chardev_post(e->kvp, &m, sizeof(m), 500, &id);
	if (rc == 0)
		rc = emu_chardev_wait(e->kvp, id, 0, NULL, NULL, &r);
	/* hold the lock a while after the timeout, then let the daemon finish */
	emu_sleep_ms(1000);
	flock(fd, LOCK_UN);
	close(fd);
	if (rc < 0)
		return rc;
	e->n_req++;
	emu_tl_raw(true, "T| %u SET pool=%u key='%s' status=0x%08x result=%s (pool locked)",
		   e->n_req, pool, key, r.status, emu_req_result_to_string(r.result));

	end = emu_now_ns() + 12000 * EMU_NSEC_PER_MSEC;
	while (emu_now_ns() < end && emu_chardev_get(e->kvp, id, &r) == 0 && !r.late_ns)
		emu_sleep_ms(20);
	if (r.late_ns)
		emu_tl_raw(true, "T| the daemon's reply came after the timeout and was refused");
	else
		emu_tl_raw(true, "T| no late reply from the daemon");
	if (!emu_daemon_running(&e->daemon))
		return daemon_gone(e);
	return daemon_settle(e);
}

/* Run one step word; 0, -EINVAL on a bad word, other -errno on failure. */
static int run_step(struct kvp_emu *e, const char *word)
{
	const char *arg = strchr(word, ':');
	size_t nlen = arg ? (size_t)(arg - word) : strlen(word);
	const char *rest;
	uint8_t pool;
	int64_t st = 0;

	if (arg)
		arg++;
#define IS(name) (nlen == sizeof(name) - 1 && strncmp(word, name, nlen) == 0)
	if ((IS("set-u32") || IS("set-u64")) && arg && parse_pool(arg, &pool, &rest) == 0 &&
	    strchr(rest, '=')) {
		/* kvp_send_key(): REG_U32 printed with "%d" (so above 2^31 negative), REG_U64
		 * "%llu" */
		char *key = strndup(rest, (size_t)(strchr(rest, '=') - rest)), value[32];
		uint64_t v;

		if (!key)
			return -ENOMEM;
		if (emu_parse_u64(strchr(rest, '=') + 1, &v) < 0 ||
		    (IS("set-u32") && v > UINT32_MAX)) {
			free(key);
			return -EINVAL;
		}
		if (IS("set-u32"))
			snprintf(value, sizeof(value), "%d", (int32_t)(uint32_t)v);
		else
			snprintf(value, sizeof(value), "%llu", (unsigned long long)v);
		st = do_set(e, pool, key, value, false, NULL);
		free(key);
	} else if (IS("set") && arg && parse_pool(arg, &pool, &rest) == 0 && strchr(rest, '=')) {
		char *key = strndup(rest, (size_t)(strchr(rest, '=') - rest));

		if (!key)
			return -ENOMEM;
		st = do_set(e, pool, key, strchr(rest, '=') + 1, false, NULL);
		free(key);
	} else if (IS("get") && arg && parse_pool(arg, &pool, &rest) == 0) {
		st = do_get(e, pool, rest, false, NULL);
	} else if (IS("delete") && arg && parse_pool(arg, &pool, &rest) == 0) {
		st = do_delete(e, pool, rest, false, NULL);
	} else if (IS("enumerate") && arg && parse_pool(arg, &pool, &rest) == 0 && !*rest) {
		st = do_enumerate(e, pool, 100000);
	} else if (IS("enum") && arg && parse_pool(arg, &pool, &rest) == 0) {
		unsigned int idx;

		if (parse_uint(rest, &idx) < 0)
			return -EINVAL;
		st = do_enum_index(e, pool, idx, false, NULL);
	} else if (IS("get-ip-info") && arg) {
		char mac[32];

		if (strcmp(arg, "auto") == 0 && first_mac(mac, sizeof(mac)) < 0) {
			emu_tl_always(
			    0, "FAIL        get-ip-info:auto: no network adapter with a MAC");
			return -ENODEV;
		}
		st = do_get_ip_info(e, strcmp(arg, "auto") == 0 ? mac : arg,
				    HV_KVP_ADDR_FAMILY_IPV4);
	} else if (IS("set-ip-info") && arg) {
		st = set_ip_info_step(e, arg);
		if (st == -EINVAL)
			return -EINVAL;
	} else if (IS("op") && arg && parse_pool(arg, &pool, &rest) == 0) {
		/* op:OP:POOL */
		uint8_t pl = 0;
		const char *r2;

		if (*rest && parse_pool(rest, &pl, &r2) < 0)
			return -EINVAL;
		st = do_raw_op(e, pool, pl);
	} else if (IS("random") && arg) {
		unsigned int n;

		if (parse_uint(arg, &n) < 0)
			return -EINVAL;
		st = run_random(e, n);
	} else if (IS("seed") && arg && parse_pool(arg, &pool, &rest) == 0) {
		unsigned int n;

		if (pool >= _HV_KVP_POOL_COUNT || parse_uint(rest, &n) < 0)
			return -EINVAL;
		st = seed_pool(e, pool, n);
	} else if (IS("append") && arg && parse_pool(arg, &pool, &rest) == 0 && strchr(rest, '=')) {
		if (pool >= _HV_KVP_POOL_COUNT)
			return -EINVAL;
		st = append_record(e, pool, rest, (size_t)(strchr(rest, '=') - rest),
				   strchr(rest, '=') + 1);
	} else if (IS("dump-pools") && !arg) {
		st = dump_pools(e);
	} else if (IS("bench") && arg) {
		unsigned int records, count, idle_ms = 0;
		char tail;
		int n = sscanf(arg, "%u:%u:%u%c", &records, &count, &idle_ms, &tail);

		if (n != 2 && n != 3)
			return -EINVAL;
		st = run_bench(e, records, count, idle_ms);
	} else if (IS("fill") && !arg) {
		st = fill_fs(e, true);
	} else if (IS("unfill") && !arg) {
		st = fill_fs(e, false);
	} else if (IS("restart-daemon") && !arg) {
		st = restart_daemon(e);
	} else if (IS("kill-burst") && arg && parse_pool(arg, &pool, &rest) == 0) {
		unsigned int n, every;
		char tail;

		if (sscanf(rest, "%u:%u%c", &n, &every, &tail) != 2 || !every)
			return -EINVAL;
		st = kill_burst(e, pool, n, every);
	} else if ((IS("reset-during-set") || IS("late-set")) && arg &&
		   parse_pool(arg, &pool, &rest) == 0 && strchr(rest, '=')) {
		char *key = strndup(rest, (size_t)(strchr(rest, '=') - rest));

		if (!key)
			return -ENOMEM;
		st = IS("late-set") ? late_set(e, pool, key, strchr(rest, '=') + 1)
				    : reset_during_set(e, pool, key, strchr(rest, '=') + 1);
		free(key);
	} else if (IS("shutdown-pools-fs") && !arg) {
		st = shutdown_pools_fs(e);
	} else if (IS("remount-pools") && !arg) {
		st = remount_pools(e);
	} else if (IS("sleep") && arg) {
		unsigned int ms;

		if (parse_uint(arg, &ms) < 0)
			return -EINVAL;
		emu_sleep_ms(ms);
	} else {
		return -EINVAL;
	}
#undef IS
	return st < 0 ? (int)st : 0;
}

/* Checks the words before anything starts (names only; run_step() parses the rest). */
static bool step_known(const char *word)
{
	static const char *const with_arg[] = {
	    "set:",	 "set-u32:",   "set-u64:",    "get:",
	    "delete:",	 "enumerate:", "enum:",	      "get-ip-info:", "set-ip-info:",
	    "op:",	 "random:",    "seed:",	      "append:",
	    "bench:",	 "sleep:",     "kill-burst:", "reset-during-set:",
	    "late-set:",
	};
	static const char *const bare[] = {
	    "dump-pools", "fill", "unfill", "restart-daemon", "shutdown-pools-fs", "remount-pools"};

	for (size_t i = 0; i < sizeof(with_arg) / sizeof(with_arg[0]); i++)
		if (strncmp(word, with_arg[i], strlen(with_arg[i])) == 0)
			return true;
	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
		if (strcmp(word, bare[i]) == 0)
			return true;
	return false;
}

/* ---- main --------------------------------------------------------------- */

/* mkdir -p of the directories above path */
static int make_parents(const char *path)
{
	char buf[512];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* --install SRC:DEST: a plain copy keeping the mode (inside the sandbox only). */
static int install_file(const char *spec)
{
	static char buf[65536];
	char src[512];
	const char *dest = strchr(spec, ':') + 1;
	struct stat st;
	int in, out, rc = 0;
	ssize_t n;

	snprintf(src, sizeof(src), "%.*s", (int)(dest - spec - 1), spec);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		rc = -errno;
		if (in >= 0)
			close(in);
		return rc;
	}
	rc = make_parents(dest);
	if (rc < 0) {
		close(in);
		return rc;
	}
	unlink(dest);
	out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	}
	if (n < 0)
		rc = -errno;
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: hv-emu-kvp [OPTIONS] STEP...\n"
	    "The emulated Hyper-V host and KVP driver: FUSE DEVDIR/hv_kvp, the daemon under\n"
	    "test, a script of host requests and a deterministic transcript (\"T| \" lines).\n"
	    "\n"
	    "  --daemon PATH         start this daemon once the device is mounted\n"
	    "  --daemon-arg ARG      one argument for the daemon (repeat)\n"
	    "  --daemon-log FILE     append the daemon's output here (default: \"daemon| \" "
	    "lines)\n"
	    "  --devdir DIR          FUSE device directory (default /dev/vmbus)\n"
	    "  --pool-dir DIR        where seed/dump find the pools (default /var/lib/hyperv)\n"
	    "  --seed S              seed of the random workload (default 1)\n"
	    "  --invalid LIST        invalid request classes of the random workload: all "
	    "(default),\n"
	    "                        none, or a comma list of "
	    "bad-pool,long-key,long-value,no-nul,\n"
	    "                        zero-key,bad-op,bad-index\n"
	    "  --timeout MS          the driver's per-request timeout (default 30000)\n"
	    "  --restart             restart the daemon when it exits and go on\n"
	    "  --quiet               no timeline, only transcript, bench and failure lines\n"
	    "  --transport T         chardev (default: FUSE DEVDIR/hv_kvp), netlink (the "
	    "driver's\n"
	    "                        side of the connector, 0x9.1; the daemon needs\n"
	    "                        --allow-user-peer, see emu-netlink.h) or socket\n"
	    "                        (DEVDIR/hv_kvp a unix socket the daemon opens through\n"
	    "                        --preload sockdev-shim.so; for benchmarks, see "
	    "emu-chardev.h)\n"
	    "  --preload LIB         LD_PRELOAD for the daemon\n"

	    "  --pools-on DIR        keep the pools on DIR's file system (DIR/hyperv bind-mounted\n"
	    "                        on the pool directory), e.g. a small scratch fs for ENOSPC\n"
	    "  --install SRC:DEST    copy SRC to DEST (mode of SRC, directories made) before the\n"
	    "                        daemon starts, e.g. helper scripts to "
	    "/usr/libexec/hypervkvpd\n"
	    "\n"
	    "Steps (POOL 0..255; pools above 4 are invalid and sent as such):\n"
	    "  set:POOL:KEY=VALUE    get:POOL:KEY    delete:POOL:KEY\n"
	    "  set-u32:POOL:KEY=N    set-u64:POOL:KEY=N  a REG_U32/REG_U64 value as the driver\n"
	    "                        turns it into a string (\"%d\" / \"%llu\")\n"
	    "  enumerate:POOL        index 0, 1, ... until an error status\n"
	    "  enum:POOL:INDEX       one ENUMERATE\n"
	    "  get-ip-info:MAC       GET_IP_INFO for the adapter MAC (IPv4); auto: the first\n"
	    "                        adapter in /sys/class/net with a MAC\n"
	    "  set-ip-info:ADAPTER|DHCP|IPS|SUBNETS|GATEWAYS|DNS[|FAMILY]\n"
	    "                        SET_IP_INFO for the adapter GUID; lists with ',' for the\n"
	    "                        wire's ';', \"\\n\" for a newline; FAMILY 1 (IPv4) by default\n"
	    "  op:OP[:POOL]          a bare message with only op and pool\n"
	    "  random:N              N seeded mixed requests over pools 0..4 (+ invalid ones)\n"
	    "  seed:POOL:N           write N records into the pool file (daemon idle)\n"
	    "  fill / unfill         fill the pool directory's file system (ENOSPC) / free it\n"
	    "  restart-daemon        stop the daemon (SIGTERM) and start it again\n"
	    "  kill-burst:POOL:N:K   N SETs, the daemon SIGKILLed 0-3 ms after every K-th is\n"
	    "                        posted and restarted; then every acknowledged record must\n"
	    "                        be in the well-formed pool file\n"
	    "  shutdown-pools-fs     shut the --pools-on file system down (EIO from now on)\n"
	    "  reset-during-set:POOL:KEY=VALUE  a SET, then a driver reset before the reply\n"
	    "  late-set:POOL:KEY=VALUE  a SET with the pool file flock()ed past the driver's\n"
	    "                        timeout (500 ms): the reply comes late and is refused\n"
	    "  remount-pools         stop the daemon, mount the --pools-on device again, start it\n"
	    "  append:POOL:KEY=VALUE a record appended to the pool file (flock, like cloud-init)\n"
	    "  dump-pools            every record of every pool file and a hash of each file\n"
	    "  bench:RECORDS:COUNT[:IDLE_MS]  timed SET/GET/ENUMERATE/DELETE on pool 1 (\"B| \"\n"
	    "                        lines); then memory and wake-ups over IDLE_MS of idleness\n"
	    "  sleep:MS\n",
	    f);
}

static int parse_invalid(const char *arg, unsigned int *ret)
{
	char *copy, *tok, *save = NULL;
	unsigned int mask = 0;

	if (strcmp(arg, "all") == 0) {
		*ret = ((1U << _INV_MAX) - 1) & ~1U;
		return 0;
	}
	if (strcmp(arg, "none") == 0) {
		*ret = 0;
		return 0;
	}
	copy = strdup(arg);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned int i;

		for (i = 1; i < _INV_MAX && strcmp(tok, invalid_names[i]) != 0; i++)
			;
		if (i == _INV_MAX) {
			free(copy);
			return -EINVAL;
		}
		mask |= 1U << i;
	}
	free(copy);
	*ret = mask;
	return 0;
}

enum {
	OPT_DAEMON = 256,
	OPT_DAEMON_ARG,
	OPT_DAEMON_LOG,
	OPT_DEVDIR,
	OPT_POOL_DIR,
	OPT_SEED,
	OPT_INVALID,
	OPT_TIMEOUT,
	OPT_RESTART,
	OPT_QUIET,
	OPT_INSTALL,
	OPT_POOLS_ON,
	OPT_TRANSPORT,
	OPT_PRELOAD,
};

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"daemon", required_argument, NULL, OPT_DAEMON},
	    {"daemon-arg", required_argument, NULL, OPT_DAEMON_ARG},
	    {"daemon-log", required_argument, NULL, OPT_DAEMON_LOG},
	    {"devdir", required_argument, NULL, OPT_DEVDIR},
	    {"pool-dir", required_argument, NULL, OPT_POOL_DIR},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"invalid", required_argument, NULL, OPT_INVALID},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"restart", no_argument, NULL, OPT_RESTART},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"install", required_argument, NULL, OPT_INSTALL},
	    {"pools-on", required_argument, NULL, OPT_POOLS_ON},
	    {"transport", required_argument, NULL, OPT_TRANSPORT},
	    {"preload", required_argument, NULL, OPT_PRELOAD},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){
	    .devdir = DEFAULT_DEVDIR,
	    .pool_dir = DEFAULT_POOL_DIR,
	    .timeout_ms = DEFAULT_TIMEOUT_MS,
	    .seed = 1,
	    .invalid_mask = ((1U << _INV_MAX) - 1) & ~1U,
	};

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DAEMON:
			o->daemon = optarg;
			break;
		case OPT_DAEMON_ARG: {
			char **n = realloc(o->daemon_args, (o->n_daemon_args + 1) * sizeof(*n));

			if (!n)
				return -ENOMEM;
			o->daemon_args = n;
			o->daemon_args[o->n_daemon_args++] = optarg;
			break;
		}
		case OPT_DAEMON_LOG:
			o->daemon_log = optarg;
			break;
		case OPT_DEVDIR:
			o->devdir = optarg;
			break;
		case OPT_POOL_DIR:
			o->pool_dir = optarg;
			break;
		case OPT_SEED:
			if (emu_parse_u64(optarg, &o->seed) < 0) {
				fprintf(stderr, "hv-emu-kvp: bad --seed: %s\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_INVALID:
			if (parse_invalid(optarg, &o->invalid_mask) < 0) {
				fprintf(stderr, "hv-emu-kvp: bad --invalid: %s\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_TIMEOUT:
			if (emu_parse_u64(optarg, &o->timeout_ms) < 0 || !o->timeout_ms) {
				fprintf(stderr, "hv-emu-kvp: bad --timeout: %s\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_RESTART:
			o->restart = true;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_TRANSPORT:
			if (strcmp(optarg, "netlink") != 0 && strcmp(optarg, "chardev") != 0 &&
			    strcmp(optarg, "socket") != 0) {
				fprintf(stderr, "hv-emu-kvp: bad --transport: %s\n", optarg);
				return -EINVAL;
			}
			o->netlink = strcmp(optarg, "netlink") == 0;
			o->socket = strcmp(optarg, "socket") == 0;
			break;
		case OPT_PRELOAD:
			if (setenv("LD_PRELOAD", optarg, 1) < 0)
				return -errno;
			break;
		case OPT_POOLS_ON:
			o->pools_on = optarg;
			break;
		case OPT_INSTALL: {
			char **n = realloc(o->installs, (o->n_installs + 1) * sizeof(*n));

			if (n)
				o->installs = n;
			if (!n || !strchr(optarg, ':')) {
				fprintf(stderr, "hv-emu-kvp: bad --install: %s\n", optarg);
				return -EINVAL;
			}
			o->installs[o->n_installs++] = optarg;
			break;
		}
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (o->n_daemon_args && !o->daemon) {
		fprintf(stderr, "hv-emu-kvp: --daemon-arg without --daemon\n");
		return -EINVAL;
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct kvp_emu e = {.dir = NULL};
	struct sigaction sa = {.sa_handler = on_signal};
	struct emu_scratch *scratch = NULL;
	char why[2048];
	int first, rc, exit_code = EXIT_SUCCESS;

	first = parse_args(argc, argv, &e.o);
	if (first < 0)
		return 2;
	for (int i = first; i < argc; i++) {
		if (!step_known(argv[i])) {
			fprintf(stderr, "hv-emu-kvp: unknown step: %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	e.rng = e.o.seed;

	emu_timeline_init(e.o.quiet, stdout);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (e.o.daemon) {
		/* a daemon is only ever started inside hv-sandbox */
		rc = emu_scratch_load(&scratch);
		if (rc < 0 || emu_sandbox_check(scratch, why, sizeof(why)) < 0) {
			fprintf(stderr,
				"hv-emu-kvp: refusing to start a daemon outside hv-sandbox: %s\n",
				rc < 0 ? strerror(-rc) : why);
			emu_scratch_free(scratch);
			return 2;
		}
		scratch = emu_scratch_free(scratch);

		for (size_t i = 0; i < e.o.n_installs; i++) {
			rc = install_file(e.o.installs[i]);
			if (rc < 0) {
				fprintf(stderr, "hv-emu-kvp: --install %s: %s\n", e.o.installs[i],
					strerror(-rc));
				return 2;
			}
		}

		if (e.o.pools_on) {
			char dir[512];

			snprintf(dir, sizeof(dir), "%s/hyperv", e.o.pools_on);
			if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
			    (make_parents(e.o.pool_dir) < 0) ||
			    (mkdir(e.o.pool_dir, 0755) < 0 && errno != EEXIST) ||
			    mount(dir, e.o.pool_dir, NULL, MS_BIND, NULL) < 0) {
				fprintf(stderr, "hv-emu-kvp: --pools-on %s: %s\n", dir,
					strerror(errno));
				return 2;
			}
		}

		e.daemon_argv = calloc(e.o.n_daemon_args + 2, sizeof(char *));
		if (!e.daemon_argv)
			return 2;
		e.daemon_argv[0] = e.o.daemon;
		for (size_t i = 0; i < e.o.n_daemon_args; i++)
			e.daemon_argv[i + 1] = e.o.daemon_args[i];
		emu_daemon_init(&e.daemon, e.daemon_argv, e.o.daemon_log, NULL, NULL);
		e.have_daemon = true;
	}

	rc = emu_devdir_new(e.o.devdir, device_event, &e, &e.dir);
	if (rc == 0)
		rc = emu_devdir_add(e.dir, &emu_svc_kvp, &e.kvp);
	if (rc == 0)
		rc = e.o.netlink ? emu_netlink_start(e.kvp, HV_CN_KVP_IDX, HV_CN_KVP_VAL,
						     device_event, &e, &e.nl)
		     : e.o.socket ? emu_devdir_start_socket(e.dir)
				  : emu_devdir_start(e.dir);
	if (rc == 0 && e.nl)
		emu_netlink_set_filter(e.nl, is_our_daemon, &e);
	if (rc < 0) {
		fprintf(stderr, "hv-emu-kvp: cannot %s: %s\n",
			e.o.netlink  ? "open the netlink connector (group 0x9)"
			: e.o.socket ? "make the device socket"
				     : "mount the FUSE device directory",
			strerror(-rc));
		exit_code = 2;
		goto out;
	}
	emu_tl("host        %s%s%s ready (%s); request timeout %llu ms",
	       e.o.netlink ? "netlink connector 0x9.1" : e.o.devdir, e.o.netlink ? "" : "/",
	       e.o.netlink ? "" : emu_svc_kvp.name,
	       e.o.netlink ? "netlink" : e.o.socket ? "socket" : "FUSE",
	       (unsigned long long)e.o.timeout_ms);

	/* steps that only touch files may run before the daemon starts: seed before start */
	while (first < argc && strncmp(argv[first], "seed:", 5) == 0) {
		if (run_step(&e, argv[first]) < 0) {
			fprintf(stderr, "hv-emu-kvp: %s failed\n", argv[first]);
			exit_code = 2;
			goto out;
		}
		first++;
	}

	if (e.have_daemon) {
		rc = emu_daemon_start(&e.daemon);
		if (rc < 0) {
			fprintf(stderr, "hv-emu-kvp: cannot start %s: %s\n", e.o.daemon,
				strerror(-rc));
			exit_code = 2;
			goto out;
		}
	}
	rc = wait_registered(&e, 0, REGISTER_WAIT_MS);
	if (rc < 0) {
		emu_tl_always(0, "FAIL        the daemon did not register within %d ms (%s)",
			      REGISTER_WAIT_MS, strerror(-rc));
		exit_code = EXIT_FAILURE;
		goto stop;
	}

	for (int i = first; i < argc && !got_signal && !e.broken; i++) {
		emu_tl("step %-6d %s", i - first + 1, argv[i]);
		rc = run_step(&e, argv[i]);
		if (rc == -EINVAL) {
			emu_tl_always(0, "FAIL        bad step: %s", argv[i]);
			exit_code = 2;
			break;
		}
		if (rc < 0 && rc != -ECHILD) {
			emu_tl_always(0, "FAIL        step %s: %s", argv[i], strerror(-rc));
			exit_code = EXIT_FAILURE;
			break;
		}
	}
	if (e.broken || got_signal)
		exit_code = EXIT_FAILURE;

stop:
	if (e.have_daemon) {
		if (emu_daemon_stop(&e.daemon, STOP_TERM_MS, STOP_KILL_MS) < 0)
			emu_tl_always(0, "WARNING     the daemon did not exit even after SIGKILL");
	}
	emu_tl_raw(true, "hv-emu-kvp: %s (%u requests, %u restarts)",
		   exit_code == EXIT_SUCCESS ? "DONE" : "FAIL", e.n_req, e.restarts);
out:
	e.nl = emu_netlink_free(e.nl);
	e.dir = emu_devdir_free(e.dir);
	if (e.have_daemon)
		emu_daemon_done(&e.daemon);
	free(e.daemon_argv);
	free(e.o.daemon_args);
	free(e.o.installs);
	return exit_code;
}
