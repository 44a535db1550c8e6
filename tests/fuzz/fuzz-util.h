/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the fuzz targets. Each target defines LLVMFuzzerTestOneInput()
 * (and may define LLVMFuzzerInitialize()); it is linked either with
 * libFuzzer (-fsanitize=fuzzer, clang, HV_FUZZ) or with replay-main.c, which
 * feeds it every file of the corpus and regression directories, so the
 * normal gcc build replays them as a unit test.
 *
 * A broken invariant calls HV_FUZZ_CHECK(), which aborts with the
 * expression: libFuzzer records the input as a crash, the replay test fails.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define HV_FUZZ_CHECK(expr)                                      \
	do {                                                     \
		if (!(expr))                                     \
			hv_fuzz_fail(__FILE__, __LINE__, #expr); \
	} while (0)

_Noreturn void hv_fuzz_fail(const char *file, int line, const char *expr);

/*
 * A private directory for this process (mkdtemp under $TMPDIR or /tmp),
 * created on first use and removed with its contents at exit.
 */
const char *hv_fuzz_tmpdir(void);

/* Writes @size bytes to @path (created or truncated, mode 0600); aborts on failure. */
void hv_fuzz_write_file(const char *path, const void *data, size_t size);

/* Makes GLib criticals and warnings fatal: a g_return_if_fail() hit is a bug. */
void hv_fuzz_glib_fatal_warnings(void);

/*
 * For targets whose code logs warnings on bad input by design: GLib log
 * lines are dropped, but a critical or an error still aborts.
 */
void hv_fuzz_glib_quiet(void);
