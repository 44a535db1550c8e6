/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-16LE <-> UTF-8 for FCOPY names: valid text, and every way it can be wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fcopy-utf16.h"

#define UNITS HV_FCOPY_W_MAX_PATH

/* Little-endian bytes of @n units, whatever the build host's order. */
static void put_units(uint8_t *dst, const uint16_t *units, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = (uint8_t)(units[i] & 0xff);
		dst[2 * i + 1] = (uint8_t)(units[i] >> 8);
	}
}

static int decode_units(const uint16_t *units, size_t n, char *out, size_t out_size,
			size_t *ret_bad)
{
	uint8_t wire[2 * UNITS] = {0};

	assert_true(n <= UNITS);
	put_units(wire, units, n);
	return fcopy_utf16le_to_utf8(wire, UNITS, out, out_size, NULL, ret_bad);
}

static void roundtrip(const char *utf8)
{
	uint8_t wire[2 * UNITS];
	char out[FCOPY_NAME_UTF8_MAX];
	size_t units = 0, len = 0;

	memset(wire, 0xee, sizeof(wire));
	assert_int_equal(fcopy_utf8_to_utf16le(utf8, wire, UNITS, &units), 0);
	assert_int_equal(fcopy_utf16le_to_utf8(wire, UNITS, out, sizeof(out), &len, NULL), 0);
	assert_string_equal(out, utf8);
	assert_int_equal(len, strlen(utf8));
	assert_int_equal(fcopy_utf8_check(out, sizeof(out), &len, NULL), 0);
}

static void test_ascii(void **state)
{
	const uint16_t name[] = {'a', '.', 't', 'x', 't', 0};
	char out[16];
	size_t len = 99;
	uint8_t wire[2 * 6];

	put_units(wire, name, 6);
	assert_int_equal(fcopy_utf16le_to_utf8(wire, 6, out, sizeof(out), &len, NULL), 0);
	assert_string_equal(out, "a.txt");
	assert_int_equal(len, 5);
}

static void test_bmp_and_astral(void **state)
{
	/* "Résumé": two 2-byte sequences */
	const uint16_t resume[] = {'R', 0xe9, 's', 'u', 'm', 0xe9, 0};
	/* "文件": 3-byte sequences */
	const uint16_t chinese[] = {0x6587, 0x4ef6, 0};
	/* U+1F600 as a surrogate pair, then U+10FFFF, the highest code point */
	const uint16_t emoji[] = {0xd83d, 0xde00, '.', 0xdbff, 0xdfff, 0};
	char out[FCOPY_NAME_UTF8_MAX];

	assert_int_equal(decode_units(resume, 7, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "R\xc3\xa9sum\xc3\xa9");
	assert_int_equal(decode_units(chinese, 3, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "\xe6\x96\x87\xe4\xbb\xb6");
	assert_int_equal(decode_units(emoji, 6, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "\xf0\x9f\x98\x80.\xf4\x8f\xbf\xbf");
}

static void test_roundtrips(void **state)
{
	roundtrip("R\xc3\xa9sum\xc3\xa9.docx");
	roundtrip("\xe6\x96\x87\xe4\xbb\xb6.txt");
	roundtrip("\xf0\x9f\x98\x80 smile \xf0\x9f\x8e\x89.png");
	roundtrip("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"); /* Привет */
	roundtrip("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d");		       /* שלום */
	roundtrip("\xef\xbf\xbd");				       /* U+FFFD itself is valid */
	roundtrip("");
}

static void test_unpaired_surrogates(void **state)
{
	const uint16_t lone_high[] = {'a', 0xd83d, 'b', 0};
	const uint16_t lone_high_end[] = {'a', 0xd83d, 0};
	const uint16_t lone_low[] = {'a', 'b', 0xde00, 0};
	const uint16_t reversed[] = {0xde00, 0xd83d, 0};
	const uint16_t two_high[] = {0xd83d, 0xd83d, 0xde00, 0};
	char out[64];
	size_t bad = 99;

	assert_int_equal(decode_units(lone_high, 4, out, sizeof(out), &bad), -EILSEQ);
	assert_int_equal(bad, 1);
	assert_int_equal(decode_units(lone_high_end, 3, out, sizeof(out), &bad), -EILSEQ);
	assert_int_equal(bad, 1);
	assert_int_equal(decode_units(lone_low, 4, out, sizeof(out), &bad), -EILSEQ);
	assert_int_equal(bad, 2);
	assert_int_equal(decode_units(reversed, 3, out, sizeof(out), &bad), -EILSEQ);
	assert_int_equal(bad, 0);
	assert_int_equal(decode_units(two_high, 4, out, sizeof(out), &bad), -EILSEQ);
	assert_int_equal(bad, 0);
}

static void test_high_surrogate_in_last_unit(void **state)
{
	/* the pair's second half would be outside the field: no terminator either */
	uint16_t units[3] = {'a', 'b', 0xd83d};
	uint8_t wire[6];
	char out[16];

	put_units(wire, units, 3);
	assert_int_equal(fcopy_utf16le_to_utf8(wire, 3, out, sizeof(out), NULL, NULL), -EBADMSG);
}

static void test_missing_terminator(void **state)
{
	uint16_t units[UNITS];
	uint8_t wire[2 * UNITS];
	char out[FCOPY_NAME_UTF8_MAX];

	/* ASCII, 3-byte units (which would also overflow a 778-byte buffer), and a lone surrogate */
	const uint16_t fill[] = {'x', 0x7878, 0xdc00};

	for (size_t k = 0; k < sizeof(fill) / sizeof(fill[0]); k++) {
		for (size_t i = 0; i < UNITS; i++)
			units[i] = fill[k];
		put_units(wire, units, UNITS);
		assert_int_equal(fcopy_utf16le_to_utf8(wire, UNITS, out, sizeof(out), NULL, NULL),
				 -EBADMSG);
	}
	assert_int_equal(fcopy_utf16le_to_utf8(wire, 0, out, sizeof(out), NULL, NULL), -EBADMSG);
}

static void test_259_units(void **state)
{
	uint16_t units[UNITS];
	uint8_t wire[2 * UNITS];
	char out[FCOPY_NAME_UTF8_MAX];
	size_t len = 0;

	/* the longest name: 259 units of the widest BMP form (3 bytes each) */
	for (size_t i = 0; i < UNITS - 1; i++)
		units[i] = 0x6587;
	units[UNITS - 1] = 0;
	put_units(wire, units, UNITS);
	assert_int_equal(fcopy_utf16le_to_utf8(wire, UNITS, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(len, 3 * (UNITS - 1));
	assert_int_equal(len + 1, FCOPY_NAME_UTF8_MAX);

	/* a byte less of room is too little, and is said so */
	assert_int_equal(fcopy_utf16le_to_utf8(wire, UNITS, out, sizeof(out) - 1, NULL, NULL),
			 -ENAMETOOLONG);

	/* 129 pairs fill 258 units + terminator: 4 bytes per pair */
	for (size_t i = 0; i + 1 < UNITS - 1; i += 2) {
		units[i] = 0xd83d;
		units[i + 1] = 0xde00;
	}
	units[UNITS - 2] = 0;
	put_units(wire, units, UNITS);
	assert_int_equal(fcopy_utf16le_to_utf8(wire, UNITS, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(len, 4 * 129);
}

static void test_small_buffer(void **state)
{
	const uint16_t name[] = {'a', 'b', 'c', 0};
	char small[3], exact[4];

	assert_int_equal(decode_units(name, 4, small, sizeof(small), NULL), -ENAMETOOLONG);
	assert_int_equal(decode_units(name, 4, exact, sizeof(exact), NULL), 0);
	assert_string_equal(exact, "abc");
}

static void test_utf8_check(void **state)
{
	static const struct {
		const char *s;
		size_t size;
		int r;
		size_t bad;
	} cases[] = {
	    {"plain", 6, 0, 0},
	    {"R\xc3\xa9sum\xc3\xa9", 9, 0, 0},
	    {"\xf0\x9f\x98\x80", 5, 0, 0},
	    {"ab\x80", 4, -EILSEQ, 2},		 /* stray continuation */
	    {"\xc0\xaf", 3, -EILSEQ, 0},	 /* overlong '/' */
	    {"\xe0\x80\xaf", 4, -EILSEQ, 0},	 /* overlong, 3 bytes */
	    {"\xf0\x80\x80\xaf", 5, -EILSEQ, 0}, /* overlong, 4 bytes */
	    {"a\xed\xa0\x80", 5, -EILSEQ, 1},	 /* CESU surrogate D800 */
	    {"\xf4\x90\x80\x80", 5, -EILSEQ, 0}, /* above U+10FFFF */
	    {"\xc3", 2, -EILSEQ, 0},		 /* truncated */
	    {"x\xe6\x96", 4, -EILSEQ, 1},	 /* truncated, 3 bytes */
	    {"\xff", 2, -EILSEQ, 0},
	    {"abc", 3, -EBADMSG, 0}, /* no NUL within size */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t bad = 99;
		int r = fcopy_utf8_check(cases[i].s, cases[i].size, NULL, &bad);

		assert_int_equal(r, cases[i].r);
		if (r == -EILSEQ)
			assert_int_equal(bad, cases[i].bad);
	}
}

static void test_encode_errors(void **state)
{
	uint8_t wire[8];
	size_t units;

	assert_int_equal(fcopy_utf8_to_utf16le("ab\xc3", wire, 4, &units), -EILSEQ);
	/* 3 units + terminator fit in 4, 4 do not */
	assert_int_equal(fcopy_utf8_to_utf16le("abc", wire, 4, &units), 0);
	assert_int_equal(units, 3);
	assert_int_equal(wire[6], 0);
	assert_int_equal(wire[7], 0);
	assert_int_equal(fcopy_utf8_to_utf16le("abcd", wire, 4, &units), -ENAMETOOLONG);
	/* a pair needs two units plus the terminator */
	assert_int_equal(fcopy_utf8_to_utf16le("\xf0\x9f\x98\x80", wire, 2, &units), -ENAMETOOLONG);
	assert_int_equal(fcopy_utf8_to_utf16le("\xf0\x9f\x98\x80", wire, 3, &units), 0);
	assert_int_equal(wire[0], 0x3d);
	assert_int_equal(wire[1], 0xd8);
	assert_int_equal(wire[2], 0x00);
	assert_int_equal(wire[3], 0xde);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ascii),
	    cmocka_unit_test(test_bmp_and_astral),
	    cmocka_unit_test(test_roundtrips),
	    cmocka_unit_test(test_unpaired_surrogates),
	    cmocka_unit_test(test_high_surrogate_in_last_unit),
	    cmocka_unit_test(test_missing_terminator),
	    cmocka_unit_test(test_259_units),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test(test_utf8_check),
	    cmocka_unit_test(test_encode_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
