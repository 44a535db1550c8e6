/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-kvp: read and change the KVP pool files from the command line, with
 * the daemon's own pool code (same format, same locking, same atomic
 * replacement).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hv-config.h"
#include "hv-daemon.h"
#include "hv-log.h"
#include "kvp-pool.h"

static const char *const pool_names[_HV_KVP_POOL_COUNT] = {
	"external", "guest", "auto", "auto-external", "auto-internal",
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: hv-kvp [OPTION]... list POOL\n"
		"       hv-kvp [OPTION]... get POOL KEY\n"
		"       hv-kvp [OPTION]... set POOL KEY VALUE\n"
		"       hv-kvp [OPTION]... delete POOL KEY\n"
		"\n"
		"Read and change the Hyper-V key/value pair (KVP) pools that hv_kvp_daemon\n"
		"exchanges with the host. The pool files are read and written exactly as the\n"
		"daemon does it: the same 2,560-byte record format as the upstream daemon,\n"
		"an fcntl() lock and a flock() held while writing (so cloud-init, azure-init\n"
		"and the daemon are not interrupted half-way), and every change written to a\n"
		"new file that replaces the pool in one rename().\n"
		"\n"
		"Commands:\n"
		"  list POOL             Print every record of POOL in file order, which is\n"
		"                        the order in which the host enumerates it: the key,\n"
		"                        a tab, the value, a newline. Backslash, tab, newline\n"
		"                        and carriage return in keys and values are printed\n"
		"                        as \\\\, \\t, \\n and \\r so that a record is one line.\n"
		"  get POOL KEY          Print the value of KEY as stored, and a newline.\n"
		"  set POOL KEY VALUE    Change the value of KEY, or add KEY at the end.\n"
		"  delete POOL KEY       Remove KEY; the records after it move up by one.\n"
		"\n"
		"POOL is a number or a name:\n"
		"  0  external        host to guest: data set by the host's administrator\n"
		"  1  guest           guest to host: data the guest publishes\n"
		"  2  auto            guest intrinsics; the daemon generates what the host\n"
		"                     sees, the file is not shown to the host\n"
		"  3  auto-external   host to guest: facts about the host, e.g.\n"
		"                     PhysicalHostName\n"
		"  4  auto-internal   undocumented\n"
		"\n"
		"Options:\n"
		"  -p, --pool-dir=DIR    Directory of the pool files .kvp_pool_0 to _4\n"
		"                        (default: [kvp] pool-dir in the configuration,\n"
		"                        else " KVP_POOL_DEFAULT_DIR ")\n"
		"  -c, --config=PATH     Configuration file (default " HV_CONFIG_DEFAULT_PATH ");\n"
		"                        [kvp] pool-dir and pool-mode are read from it\n"
		"  -d, --debug           Log what is done on standard error\n"
		"  -h, --help            Show this help and exit\n"
		"  -V, --version         Show the version and exit\n"
		"\n"
		"Limits: a key holds 1 to 511 bytes and a value up to 2,047 bytes (the\n"
		"record format). The host sees at most 254 bytes of a key and 1,022 bytes\n"
		"of a value, and only valid UTF-8: longer or invalid strings are stored with\n"
		"a warning. A new pool file gets the mode [kvp] pool-mode (default 0644).\n"
		"\n"
		"A writer that opened the pool just before our rename and then waited for\n"
		"the lock appends to the replaced file; the daemon merges such records, a\n"
		"command that has already exited cannot.\n"
		"\n"
		"Exit status:\n"
		"  0  success\n"
		"  1  KEY not found (get, delete), or the pool could not be read or written\n"
		"  2  usage error: unknown command, option or pool, wrong number of\n"
		"     arguments, empty or too long key or value, bad configuration\n"
		"\n"
		"Examples:\n"
		"  hv-kvp list auto-external\n"
		"  hv-kvp get 3 PhysicalHostName\n"
		"  hv-kvp set guest ProvisioningState Ready\n"
		"  hv-kvp --pool-dir=/tmp/pools delete 1 ProvisioningState\n");
}

static int parse_pool(const char *s)
{
	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++) {
		char num[4];

		snprintf(num, sizeof(num), "%d", i);
		if (strcmp(s, num) == 0 || g_ascii_strcasecmp(s, pool_names[i]) == 0)
			return i;
	}

	return -1;
}

/* Prints @s with \\, \t, \n and \r escaped. */
static void print_escaped(const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		default:
			putchar(*s);
		}
}

static int load_settings(const char *config_path, char **pool_dir, mode_t *mode)
{
	g_autoptr(hv_config) cfg = NULL;
	g_autofree char *error = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *m = NULL;
	char *end = NULL;
	unsigned long v;
	int r;

	r = hv_config_load(config_path, &cfg, &error);
	if (r < 0) {
		fprintf(stderr, "hv-kvp: failed to read the configuration: %s\n",
			error ? error : g_strerror(-r));
		return -EINVAL;
	}

	if (!*pool_dir) {
		r = hv_config_get_string(cfg, "kvp", "pool-dir", KVP_POOL_DEFAULT_DIR, &dir,
					 &error);
		if (r < 0) {
			fprintf(stderr, "hv-kvp: %s\n", error);
			return -EINVAL;
		}
		*pool_dir = g_steal_pointer(&dir);
	}

	r = hv_config_get_string(cfg, "kvp", "pool-mode", "0644", &m, &error);
	if (r < 0) {
		fprintf(stderr, "hv-kvp: %s\n", error);
		return -EINVAL;
	}

	errno = 0;
	v = strtoul(m, &end, 8);
	if (errno || !*m || *end || v > 0777 || (v & 0600) != 0600) {
		fprintf(stderr, "hv-kvp: %s: [kvp] pool-mode = '%s' is not valid: expected an octal mode such as 0644 or 0600\n",
			hv_config_origin(cfg, "kvp", "pool-mode"), m);
		return -EINVAL;
	}

	*mode = (mode_t)v;
	return 0;
}

static void warn_host_limits(const char *what, const char *s, size_t host_max)
{
	if (strlen(s) > host_max)
		fprintf(stderr, "hv-kvp: warning: the %s is %zu bytes; the host sees only the first %zu\n",
			what, strlen(s), host_max);

	if (!g_utf8_validate(s, -1, NULL))
		fprintf(stderr, "hv-kvp: warning: the %s is not valid UTF-8; the host cannot read it\n",
			what);
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "pool-dir", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	g_autofree char *pool_dir = NULL;
	g_autofree char *config_path = NULL;
	g_autofree char *path = NULL;
	g_autofree char *name = NULL;
	g_autoptr(kvp_pool) pool = NULL;
	const char *cmd, *key = NULL, *value = NULL;
	bool debug = false;
	mode_t mode = KVP_POOL_DEFAULT_MODE;
	int n_args, pool_nr, c, r;

	while ((c = getopt_long(argc, argv, "+p:c:dhV", long_options, NULL)) != -1)
		switch (c) {
		case 'p':
			g_free(pool_dir);
			pool_dir = g_strdup(optarg);
			break;
		case 'c':
			g_free(config_path);
			config_path = g_strdup(optarg);
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return HV_EXIT_OK;
		case 'V':
			printf("hv-kvp (hyperv-daemons) %s\n", HV_VERSION);
			return HV_EXIT_OK;
		default:
			fprintf(stderr, "Try 'hv-kvp --help'.\n");
			return HV_EXIT_USAGE;
		}

	if (argc - optind < 2) {
		fprintf(stderr, "hv-kvp: %s\nTry 'hv-kvp --help'.\n",
			argc == optind ? "a command is needed" : "a pool is needed");
		return HV_EXIT_USAGE;
	}

	cmd = argv[optind];
	pool_nr = parse_pool(argv[optind + 1]);
	n_args = argc - optind - 2;
	if (strcmp(cmd, "list") == 0)
		r = n_args == 0;
	else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "delete") == 0)
		r = n_args == 1;
	else if (strcmp(cmd, "set") == 0)
		r = n_args == 2;
	else {
		fprintf(stderr, "hv-kvp: unknown command '%s' (list, get, set or delete)\nTry 'hv-kvp --help'.\n",
			cmd);
		return HV_EXIT_USAGE;
	}

	if (!r) {
		fprintf(stderr, "hv-kvp: wrong number of arguments for '%s'\nTry 'hv-kvp --help'.\n",
			cmd);
		return HV_EXIT_USAGE;
	}

	if (pool_nr < 0) {
		fprintf(stderr, "hv-kvp: unknown pool '%s' (0 to 4, or external, guest, auto, auto-external, auto-internal)\n",
			argv[optind + 1]);
		return HV_EXIT_USAGE;
	}

	if (n_args >= 1)
		key = argv[optind + 2];
	if (n_args >= 2)
		value = argv[optind + 3];

	if (key && (!*key || strlen(key) > KVP_POOL_MAX_KEY_LEN)) {
		fprintf(stderr, "hv-kvp: the key must hold 1 to %u bytes (it has %zu)\n",
			KVP_POOL_MAX_KEY_LEN, strlen(key));
		return HV_EXIT_USAGE;
	}

	if (value && strlen(value) > KVP_POOL_MAX_VALUE_LEN) {
		fprintf(stderr, "hv-kvp: the value must hold at most %u bytes (it has %zu)\n",
			KVP_POOL_MAX_VALUE_LEN, strlen(value));
		return HV_EXIT_USAGE;
	}

	hv_log_setup("hv-kvp", HV_LOG_TARGET_STDERR, debug);

	if (load_settings(config_path, &pool_dir, &mode) < 0)
		return HV_EXIT_USAGE;

	name = g_strdup_printf(".kvp_pool_%d", pool_nr);
	path = g_build_filename(pool_dir, name, NULL);
	pool = kvp_pool_new(path, mode);

	if (strcmp(cmd, "set") == 0) {
		warn_host_limits("key", key, HV_KVP_HOST_MAX_KEY_BYTES);
		warn_host_limits("value", value, HV_KVP_HOST_MAX_VALUE_BYTES);
		if (!g_file_test(pool_dir, G_FILE_TEST_IS_DIR) &&
		    g_mkdir_with_parents(pool_dir, 0755) < 0) {
			fprintf(stderr, "hv-kvp: failed to create %s: %s\n", pool_dir,
				g_strerror(errno));
			return HV_EXIT_FAILURE;
		}

		r = kvp_pool_set(pool, key, value);
		if (r < 0) {
			fprintf(stderr, "hv-kvp: failed to set %s in %s: %s\n", key, path,
				g_strerror(-r));
			return HV_EXIT_FAILURE;
		}
		return HV_EXIT_OK;
	}

	if (strcmp(cmd, "delete") == 0) {
		r = kvp_pool_delete(pool, key);
		if (r == -ENOENT) {
			fprintf(stderr, "hv-kvp: %s: no key '%s'\n", path, key);
			return HV_EXIT_FAILURE;
		}
		if (r < 0) {
			fprintf(stderr, "hv-kvp: failed to delete %s from %s: %s\n", key, path,
				g_strerror(-r));
			return HV_EXIT_FAILURE;
		}
		return HV_EXIT_OK;
	}

	r = kvp_pool_refresh(pool);
	if (r < 0) {
		fprintf(stderr, "hv-kvp: failed to read %s: %s\n", path, g_strerror(-r));
		return HV_EXIT_FAILURE;
	}

	if (strcmp(cmd, "get") == 0) {
		const char *v = kvp_pool_lookup(pool, key);

		if (!v) {
			fprintf(stderr, "hv-kvp: %s: no key '%s'\n", path, key);
			return HV_EXIT_FAILURE;
		}
		printf("%s\n", v);
		return fflush(stdout) == 0 ? HV_EXIT_OK : HV_EXIT_FAILURE;
	}

	for (guint i = 0; i < kvp_pool_count(pool); i++) {
		const kvp_record *rec = kvp_pool_get_at(pool, i);

		print_escaped(rec->key);
		putchar('\t');
		print_escaped(rec->value);
		putchar('\n');
	}

	return fflush(stdout) == 0 ? HV_EXIT_OK : HV_EXIT_FAILURE;
}
