/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-auto.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvp-osinfo.h"

static const char *const key_names[_KVP_AUTO_KEY_COUNT] = {
    [KVP_AUTO_FQDN] = "FullyQualifiedDomainName",
    [KVP_AUTO_INTEGRATION_SERVICES_VERSION] = "IntegrationServicesVersion",
    [KVP_AUTO_NETWORK_ADDRESS_IPV4] = "NetworkAddressIPv4",
    [KVP_AUTO_NETWORK_ADDRESS_IPV6] = "NetworkAddressIPv6",
    [KVP_AUTO_OS_BUILD_NUMBER] = "OSBuildNumber",
    [KVP_AUTO_OS_NAME] = "OSName",
    [KVP_AUTO_OS_MAJOR_VERSION] = "OSMajorVersion",
    [KVP_AUTO_OS_MINOR_VERSION] = "OSMinorVersion",
    [KVP_AUTO_OS_VERSION] = "OSVersion",
    [KVP_AUTO_PROCESSOR_ARCHITECTURE] = "ProcessorArchitecture",
};

/*
 * Shared with the resolver thread, which holds a reference: freeing the
 * kvp_auto never waits for a slow DNS answer.
 */
typedef struct fqdn_state {
	gint ref;
	GMutex lock;
	GCond done;
	char *value;	    /* last answer, NULL before the first */
	char *resolved_for; /* the host name it answers for */
	bool running;
	bool stale;
} fqdn_state;

struct kvp_auto {
	kvp_os_info os;
	char *version;
	bool no_lookup;
	fqdn_state *fqdn;
	kvp_auto_addresses_fn addresses;
	void *userdata;
};

static fqdn_state *fqdn_ref(fqdn_state *s)
{
	g_atomic_int_inc(&s->ref);
	return s;
}

static void fqdn_unref(fqdn_state *s)
{
	if (!g_atomic_int_dec_and_test(&s->ref))
		return;
	g_free(s->value);
	g_free(s->resolved_for);
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->done);
	g_free(s);
}

static char *host_name(void)
{
	char buf[HOST_NAME_MAX + 1] = "";

	if (gethostname(buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	return g_strdup(buf);
}

typedef struct resolve_job {
	fqdn_state *state;
	char *host;
} resolve_job;

static gpointer resolve_thread(gpointer data)
{
	resolve_job *job = data;
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME};
	struct addrinfo *info = NULL;
	char *answer;
	int r;

	r = getaddrinfo(job->host, NULL, &hints, &info);
	if (r == 0 && info && info->ai_canonname && *info->ai_canonname) {
		answer = g_strdup(info->ai_canonname);
	} else {
		/* Upstream puts the error text here; the host name says more. */
		g_debug("Could not resolve the host name %s: %s", job->host,
			r ? gai_strerror(r) : "no canonical name");
		answer = g_strdup(job->host);
	}
	if (info)
		freeaddrinfo(info);

	g_mutex_lock(&job->state->lock);
	g_free(job->state->value);
	job->state->value = answer;
	g_free(job->state->resolved_for);
	job->state->resolved_for = g_steal_pointer(&job->host);
	job->state->running = false;
	g_cond_broadcast(&job->state->done);
	g_mutex_unlock(&job->state->lock);

	fqdn_unref(job->state);
	g_free(job);
	return NULL;
}

/* With the lock held. */
static void start_resolve(fqdn_state *s, const char *host)
{
	resolve_job *job = g_new0(resolve_job, 1);
	g_autoptr(GError) error = NULL;
	GThread *t;

	job->state = fqdn_ref(s);
	job->host = g_strdup(host);
	s->running = true;
	s->stale = false;
	t = g_thread_try_new("kvp-fqdn", resolve_thread, job, &error);
	if (!t) {
		g_warning("Could not start resolving the host name: %s", error->message);
		s->running = false;
		fqdn_unref(job->state);
		g_free(job->host);
		g_free(job);
		return;
	}
	g_thread_unref(t);
}

kvp_auto *kvp_auto_new(const kvp_auto_config *cfg, kvp_auto_addresses_fn addresses, void *userdata)
{
	kvp_auto *a = g_new0(kvp_auto, 1);

	kvp_os_info_load(cfg->os_release_paths, cfg->legacy_release_paths, cfg->uts, &a->os);
	a->version = g_strdup(cfg->integration_version ?: KVP_AUTO_UNKNOWN_VERSION);
	a->no_lookup = cfg->no_fqdn_lookup;
	a->addresses = addresses;
	a->userdata = userdata;
	a->fqdn = g_new0(fqdn_state, 1);
	a->fqdn->ref = 1;
	g_mutex_init(&a->fqdn->lock);
	g_cond_init(&a->fqdn->done);

	if (!a->no_lookup) {
		g_autofree char *host = host_name();

		/* Started now, so that the first request already finds an answer. */
		g_mutex_lock(&a->fqdn->lock);
		start_resolve(a->fqdn, host);
		g_mutex_unlock(&a->fqdn->lock);
	}
	return a;
}

void kvp_auto_free(kvp_auto *a)
{
	if (!a)
		return;
	kvp_os_info_clear(&a->os);
	g_free(a->version);
	fqdn_unref(a->fqdn);
	g_free(a);
}

void kvp_auto_set_integration_version(kvp_auto *a, const char *version)
{
	g_free(a->version);
	a->version = g_strdup(version && *version ? version : KVP_AUTO_UNKNOWN_VERSION);
}

void kvp_auto_network_changed(kvp_auto *a)
{
	g_mutex_lock(&a->fqdn->lock);
	a->fqdn->stale = true;
	g_mutex_unlock(&a->fqdn->lock);
}

bool kvp_auto_fqdn_settle(kvp_auto *a, unsigned int timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	bool settled;

	g_mutex_lock(&a->fqdn->lock);
	while (a->fqdn->running)
		if (!g_cond_wait_until(&a->fqdn->done, &a->fqdn->lock, end))
			break;
	settled = !a->fqdn->running;
	g_mutex_unlock(&a->fqdn->lock);
	return settled;
}

static char *fqdn_get(kvp_auto *a)
{
	g_autofree char *host = host_name();
	fqdn_state *s = a->fqdn;
	char *value;

	if (a->no_lookup)
		return g_steal_pointer(&host);

	g_mutex_lock(&s->lock);
	if (!s->running && (s->stale || g_strcmp0(s->resolved_for, host) != 0))
		start_resolve(s, host);
	/* The last answer while a new one is on its way; the host name before any. */
	value = g_strdup(s->value && g_strcmp0(s->resolved_for, host) == 0 ? s->value : host);
	g_mutex_unlock(&s->lock);
	return value;
}

const char *kvp_auto_key_name(uint32_t index)
{
	return index < _KVP_AUTO_KEY_COUNT ? key_names[index] : NULL;
}

void kvp_utf8_copy(char *dst, size_t size, const char *src)
{
	size_t len;
	const char *end;

	if (size == 0)
		return;
	len = strlen(src);
	if (len >= size) {
		len = size - 1;
		/* Back off to the start of a character. */
		while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--;
	}
	/* Whatever it was, the result is valid UTF-8. */
	if (!g_utf8_validate(src, (gssize)len, &end))
		len = (size_t)(end - src);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int kvp_auto_record(kvp_auto *a, uint32_t index, char *key, size_t key_size, char *value,
		    size_t value_size)
{
	g_autofree char *fqdn = NULL;
	const char *v = NULL;

	if (index >= _KVP_AUTO_KEY_COUNT)
		return -ENOENT;
	if (key_size == 0 || value_size == 0)
		return -EINVAL;

	kvp_utf8_copy(key, key_size, key_names[index]);
	switch ((enum kvp_auto_key)index) {
	case KVP_AUTO_FQDN:
		v = fqdn = fqdn_get(a);
		break;
	case KVP_AUTO_INTEGRATION_SERVICES_VERSION:
		v = a->version;
		break;
	case KVP_AUTO_NETWORK_ADDRESS_IPV4:
	case KVP_AUTO_NETWORK_ADDRESS_IPV6:
		value[0] = '\0';
		if (a->addresses)
			a->addresses(a->userdata,
				     index == KVP_AUTO_NETWORK_ADDRESS_IPV4 ? AF_INET : AF_INET6,
				     value, value_size);
		return 0;
	case KVP_AUTO_OS_BUILD_NUMBER:
		v = a->os.build;
		break;
	case KVP_AUTO_OS_NAME:
		v = a->os.name;
		break;
	case KVP_AUTO_OS_MAJOR_VERSION:
		v = a->os.major;
		break;
	case KVP_AUTO_OS_MINOR_VERSION:
		v = a->os.minor;
		break;
	case KVP_AUTO_OS_VERSION:
		v = a->os.version;
		break;
	case KVP_AUTO_PROCESSOR_ARCHITECTURE:
		v = a->os.arch;
		break;
	case _KVP_AUTO_KEY_COUNT:
		return -ENOENT;
	}
	kvp_utf8_copy(value, value_size, v ?: "");
	return 0;
}
