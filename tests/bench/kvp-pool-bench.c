/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvp-pool-bench [--dir DIR] [--records "10 1000 10000"] [--ops N] [--reps N]
 *
 * In-process cost of kvp_pool writes (no daemon, no device): for each size,
 * a pool of RECORDS records in a new directory under DIR (default /dev/shm,
 * a tmpfs), then, REPS times over a fresh pool: N DELETEs of the first
 * record (min(N, RECORDS), each one moves every other record up) and N SETs
 * of existing keys (a new value for a record in the middle, then the next).
 * Prints the median over the REPS of the wall and CPU (process) time per
 * operation, in µs, and the wall times of the single reps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "hv-log.h"
#include "kvp-pool.h"

#define REC HV_KVP_POOL_RECORD_SIZE

static double now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A pool file of @n records written directly (keys seedNNNNN, values of 40 bytes). */
static void seed_file(const char *path, guint n)
{
	g_autofree uint8_t *buf = g_malloc0((size_t)n * REC);
	int fd;

	for (guint i = 0; i < n; i++) {
		uint8_t *rec = buf + (size_t)i * REC;

		snprintf((char *)rec, HV_KVP_MAX_KEY_SIZE, "seed%05u", i);
		snprintf((char *)rec + HV_KVP_MAX_KEY_SIZE, HV_KVP_MAX_VALUE_SIZE,
			 "value-of-record-%05u-xxxxxxxxxxxxxxxxxxx", i);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n * REC) != (ssize_t)((size_t)n * REC)) {
		fprintf(stderr, "%s: %s\n", path, g_strerror(errno));
		exit(1);
	}
	close(fd);
}

/* A pool of @n records, read, with two writes done: the next ones go through the spare. */
static kvp_pool *fresh_pool(const char *dir, guint n)
{
	g_autofree char *path = g_build_filename(dir, ".kvp_pool_1", NULL);
	g_autofree char *spare = g_strconcat(path, ".spare", NULL);
	kvp_pool *p;

	unlink(spare);
	seed_file(path, n);
	p = kvp_pool_new(path, 0644);
	if (kvp_pool_refresh(p) < 0 || kvp_pool_count(p) != n ||
	    kvp_pool_set(p, "seed00000", "warm-up") < 0 ||
	    kvp_pool_set(p, "seed00000", "warm-up-2") < 0) {
		fprintf(stderr, "%s: failed to set up the pool\n", path);
		exit(1);
	}
	return p;
}

typedef enum { OP_DELETE, OP_SET } op_kind;

/* µs per operation (wall, CPU) of @ops operations on a fresh pool of @n records. */
static void run_once(const char *dir, guint n, op_kind kind, guint ops, double *wall,
		     double *cpu)
{
	kvp_pool *p = fresh_pool(dir, n);
	double w0, c0;

	w0 = now_us(CLOCK_MONOTONIC);
	c0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	for (guint i = 0; i < ops; i++) {
		char key[32], value[64];
		int r;

		if (kind == OP_DELETE) {
			snprintf(key, sizeof(key), "seed%05u", i);
			r = kvp_pool_delete(p, key);
		} else {
			snprintf(key, sizeof(key), "seed%05u", (n / 2 + i) % n);
			snprintf(value, sizeof(value), "new-value-%u", i);
			r = kvp_pool_set(p, key, value);
		}
		if (r < 0) {
			fprintf(stderr, "%s of %s failed: %s\n", kind == OP_DELETE ? "DELETE" : "SET",
				key, g_strerror(-r));
			exit(1);
		}
	}
	*cpu = (now_us(CLOCK_PROCESS_CPUTIME_ID) - c0) / ops;
	*wall = (now_us(CLOCK_MONOTONIC) - w0) / ops;
	kvp_pool_free(p);
}

int main(int argc, char **argv)
{
	const char *base = "/dev/shm";
	const char *records = "10 1000 10000";
	guint max_ops = 200;
	int reps = 7;
	g_autofree char *dir = NULL;
	g_auto(GStrv) sizes = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			base = argv[++i];
		else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			records = argv[++i];
		else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc)
			max_ops = (guint)atoi(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr,
				"usage: %s [--dir DIR] [--records \"10 1000 10000\"] [--ops N] [--reps N]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1 || max_ops < 1)
		return 2;

	hv_log_setup("kvp-pool-bench", HV_LOG_TARGET_STDERR, false);
	dir = g_build_filename(base, "kvp-pool-bench-XXXXXX", NULL);
	if (!g_mkdtemp(dir)) {
		fprintf(stderr, "%s: %s\n", dir, g_strerror(errno));
		return 1;
	}

	printf("# pools in %s, %d reps, µs per operation (median; single reps after)\n", base,
	       reps);
	printf("%-7s %8s %5s %10s %10s  %s\n", "op", "records", "ops", "wall", "cpu",
	       "wall of each rep");
	sizes = g_strsplit(records, " ", -1);
	for (int s = 0; sizes[s]; s++) {
		guint n = (guint)atoi(sizes[s]);

		if (n == 0)
			continue;
		for (int k = 0; k < 2; k++) {
			op_kind kind = k == 0 ? OP_DELETE : OP_SET;
			guint ops = kind == OP_DELETE ? MIN(max_ops, n) : max_ops;
			g_autofree double *wall = g_new(double, reps);
			g_autofree double *cpu = g_new(double, reps);
			g_autoptr(GString) each = g_string_new(NULL);

			for (int r = 0; r < reps; r++) {
				run_once(dir, n, kind, ops, &wall[r], &cpu[r]);
				g_string_append_printf(each, " %.1f", wall[r]);
			}
			printf("%-7s %8u %5u %10.1f %10.1f %s\n", kind == OP_DELETE ? "DELETE" : "SET",
			       n, ops, median(wall, reps), median(cpu, reps), each->str);
			fflush(stdout);
		}
	}

	{
		g_autofree char *pool = g_build_filename(dir, ".kvp_pool_1", NULL);
		g_autofree char *spare = g_strconcat(pool, ".spare", NULL);

		unlink(pool);
		unlink(spare);
		rmdir(dir);
	}
	return 0;
}
