/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IC framing: VMBus descriptors, pipe/IC headers, the negotiation choice of
 * vmbus_prep_negotiate_resp() and the replies it builds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-ic-msg.h"
#include "hv-status.h"

#define V(a, b) HV_IC_VERSION(a, b)

static void test_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct hv_vmpacket_descriptor), 16);
	assert_int_equal(offsetof(struct hv_vmpacket_descriptor, offset8), 2);
	assert_int_equal(offsetof(struct hv_vmpacket_descriptor, len8), 4);
	assert_int_equal(offsetof(struct hv_vmpacket_descriptor, flags), 6);
	assert_int_equal(HV_ICMSG_HDR_LEN, 28);
	assert_int_equal(offsetof(struct hv_icmsg_hdr, ictransaction_id), 16);
	assert_int_equal(HV_ICMSG_NEGOTIATE_PKT_SIZE(1, 1), 44);
	assert_int_equal(HV_IC_VERSION(3, 0), HV_UTIL_FW_VERSION);
	assert_int_equal(HV_IC_VERSION_MAJOR(V(7, 9)), 7);
	assert_int_equal(HV_IC_VERSION_MINOR(V(7, 9)), 9);
}

static void test_desc_check(void **state)
{
	struct hv_vmpacket_descriptor d = {.type = 6, .offset8 = 2, .len8 = 4};

	(void)state;
	assert_int_equal(hv_vmbus_desc_check(&d, 32), 32);
	assert_int_equal(hv_vmbus_desc_check(&d, 31), -EBADMSG);
	d.offset8 = 1;
	assert_int_equal(hv_vmbus_desc_check(&d, 32), -EBADMSG);
	d.offset8 = 5;
	assert_int_equal(hv_vmbus_desc_check(&d, 64), -EBADMSG);
	/* A header-only packet (no payload) is valid. */
	d.offset8 = 4;
	assert_int_equal(hv_vmbus_desc_check(&d, 32), 32);
	d.offset8 = 2;
	d.len8 = 0xffff;
	assert_int_equal(hv_vmbus_desc_check(&d, 0xffff * 8 - 1), -EBADMSG);
	assert_int_equal(hv_vmbus_desc_check(NULL, 32), -EINVAL);
}

static void test_packet_build_parse(void **state)
{
	uint8_t buf[64], payload[13];
	hv_vmbus_packet p;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(0xa0 + i);
	memset(buf, 0xee, sizeof(buf));

	n = hv_vmbus_packet_build(buf, sizeof(buf), HV_VM_PKT_DATA_INBAND, 1, 0x1122334455667788ULL,
				  payload, sizeof(payload));
	assert_int_equal(n, 16 + 16);
	assert_int_equal(hv_vmbus_packet_size(13), 32);
	/* Padding is zeroed, bytes after the packet untouched. */
	for (int i = 16 + 13; i < 32; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(buf[32], 0xee);

	assert_int_equal(hv_vmbus_packet_parse(buf, (size_t)n, &p), 0);
	assert_int_equal(p.type, HV_VM_PKT_DATA_INBAND);
	assert_int_equal(p.flags, 1);
	assert_int_equal(p.hdr_len, 16);
	assert_int_equal(p.total_len, 32);
	assert_true(p.trans_id == 0x1122334455667788ULL);
	assert_ptr_equal(p.payload, buf + 16);
	assert_int_equal(p.payload_len, 16);
	assert_memory_equal(p.payload, payload, sizeof(payload));

	/* Truncated: fewer bytes than the descriptor or than len8 says. */
	assert_int_equal(hv_vmbus_packet_parse(buf, 15, &p), -EBADMSG);
	assert_int_equal(hv_vmbus_packet_parse(buf, 31, &p), -EBADMSG);
	assert_int_equal(hv_vmbus_packet_build(buf, 31, 6, 0, 0, payload, sizeof(payload)),
			 -EMSGSIZE);
	assert_int_equal(hv_vmbus_packet_build(buf, sizeof(buf), 6, 0, 0, NULL, 3), -EINVAL);
	/* Empty payload: descriptor only. */
	assert_int_equal(hv_vmbus_packet_build(buf, sizeof(buf), 6, 0, 0, NULL, 0), 16);
	assert_int_equal(hv_vmbus_packet_parse(buf, 16, &p), 0);
	assert_int_equal(p.payload_len, 0);
}

static void test_msg_parse_and_response(void **state)
{
	uint8_t buf[64], body[5] = {1, 2, 3, 4, 5};
	hv_ic_msg m;
	int n;

	(void)state;
	n = hv_ic_build_request(buf, sizeof(buf), HV_ICMSGTYPE_FCOPY, V(3, 0), V(1, 1), 42, body,
				sizeof(body));
	assert_int_equal(n, 28 + 5);
	assert_int_equal(hv_ic_msg_parse(buf, (size_t)n, &m), 0);
	assert_int_equal(m.pipe.msgsize, 20 + 5);
	assert_int_equal(m.hdr.icmsgtype, HV_ICMSGTYPE_FCOPY);
	assert_int_equal(m.hdr.icverframe.major, 3);
	assert_int_equal(m.hdr.icvermsg.minor, 1);
	assert_int_equal(m.hdr.icmsgsize, 5);
	assert_int_equal(m.hdr.ictransaction_id, 42);
	assert_int_equal(m.hdr.icflags, HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_REQUEST);
	assert_int_equal(m.body_offset, 28);
	assert_int_equal(m.body_len, 5);
	assert_memory_equal(buf + 28, body, 5);

	assert_int_equal(hv_ic_set_response(buf, (size_t)n, HV_E_FAIL), 0);
	assert_int_equal(hv_ic_msg_parse(buf, (size_t)n, &m), 0);
	assert_int_equal(m.hdr.status, HV_E_FAIL);
	assert_int_equal(m.hdr.icflags, HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE);
	assert_int_equal(m.hdr.ictransaction_id, 42);
	assert_int_equal(m.hdr.icmsgtype, HV_ICMSGTYPE_FCOPY);
	assert_memory_equal(buf + 28, body, 5);

	assert_int_equal(hv_ic_msg_parse(buf, 27, &m), -EBADMSG);
	assert_int_equal(hv_ic_set_response(buf, 27, 0), -EBADMSG);
	assert_int_equal(hv_ic_build_request(buf, 30, 7, 0, 0, 0, body, 5), -EMSGSIZE);
}

static const uint32_t our_fw[] = {V(3, 0)};
static const uint32_t our_srv[] = {V(1, 1)};

static void expect_reply(const uint8_t *buf, size_t len, int ok, uint32_t fw, uint32_t srv)
{
	uint32_t got_fw = 0, got_srv = 0, status = 0;
	hv_ic_msg m;

	assert_int_equal(hv_ic_msg_parse(buf, len, &m), 0);
	assert_int_equal(m.hdr.icmsgsize, HV_ICMSG_NEGOTIATE_REPLY_SIZE);
	assert_int_equal(m.hdr.icflags, HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE);
	if (ok) {
		assert_int_equal(hv_ic_parse_negotiate_reply(buf, len, &got_fw, &got_srv, &status),
				 0);
		assert_int_equal(got_fw, fw);
		assert_int_equal(got_srv, srv);
		assert_int_equal(status, HV_S_OK);
	} else {
		assert_int_equal(hv_ic_parse_negotiate_reply(buf, len, NULL, NULL, &status),
				 -EPROTO);
		assert_int_equal(status, HV_E_FAIL);
	}
}

static void test_negotiate_fcopy(void **state)
{
	const uint32_t host_fw[] = {V(1, 0), V(3, 0)};
	const uint32_t host_srv[] = {V(1, 0), V(1, 1)};
	uint8_t buf[128];
	uint32_t fw = 0, srv = 0;
	int n;

	(void)state;
	n = hv_ic_build_offer(buf, sizeof(buf), host_fw, 2, host_srv, 2, 9);
	assert_int_equal(n, (int)HV_ICMSG_NEGOTIATE_PKT_SIZE(2, 2));
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, &fw, &srv), 0);
	assert_int_equal(fw, V(3, 0));
	assert_int_equal(srv, V(1, 1));
	expect_reply(buf, (size_t)n, 1, V(3, 0), V(1, 1));
	/* The transaction id is echoed. */
	assert_int_equal(buf[8 + 16], 9);
}

static void test_negotiate_our_order_wins(void **state)
{
	const uint32_t host_fw[] = {V(1, 0), V(3, 0)};
	const uint32_t host_srv[] = {V(1, 0), V(1, 1), V(2, 0)};
	const uint32_t desc_fw[] = {V(3, 0), V(1, 0)};
	const uint32_t asc_fw[] = {V(1, 0), V(3, 0)};
	const uint32_t srv[] = {V(2, 0), V(1, 1), V(1, 0)};
	uint8_t buf[128];
	uint32_t f, s;
	int n;

	(void)state;
	n = hv_ic_build_offer(buf, sizeof(buf), host_fw, 2, host_srv, 3, 1);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, desc_fw, 2, srv, 3, &f, &s), 0);
	assert_int_equal(f, V(3, 0));
	assert_int_equal(s, V(2, 0));

	/* As in the kernel, the first of *our* list that the host offers wins. */
	n = hv_ic_build_offer(buf, sizeof(buf), host_fw, 2, host_srv, 3, 1);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, asc_fw, 2, srv, 3, &f, &s), 0);
	assert_int_equal(f, V(1, 0));

	/* A framework version listed only among the service versions does not count. */
	{
		const uint32_t hf[] = {V(1, 0)};
		const uint32_t hs[] = {V(3, 0), V(1, 1)};

		n = hv_ic_build_offer(buf, sizeof(buf), hf, 1, hs, 2, 1);
		assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, &f, &s),
				 -EPROTO);
		expect_reply(buf, (size_t)n, 0, 0, 0);
	}
}

static void test_negotiate_no_common_version(void **state)
{
	const uint32_t host_fw[] = {V(3, 0)};
	const uint32_t host_srv[] = {V(1, 0), V(5, 2)};
	uint8_t buf[128];
	uint32_t f = 0xdead, s = 0xbeef;
	int n;

	(void)state;
	n = hv_ic_build_offer(buf, sizeof(buf), host_fw, 1, host_srv, 2, 3);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, &f, &s), -EPROTO);
	assert_int_equal(f, 0xdead);
	assert_int_equal(s, 0xbeef);
	expect_reply(buf, (size_t)n, 0, 0, 0);

	/* No framework version in common either. */
	{
		const uint32_t hf[] = {V(1, 0), V(2, 0)};

		n = hv_ic_build_offer(buf, sizeof(buf), hf, 2, our_srv, 1, 3);
		assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, NULL, NULL),
				 -EPROTO);
		expect_reply(buf, (size_t)n, 0, 0, 0);
	}
}

static void test_negotiate_many_versions(void **state)
{
	uint32_t host_fw[100], host_srv[100];
	uint8_t buf[1024];
	uint32_t f, s;
	int n;

	(void)state;
	for (int i = 0; i < 100; i++) {
		host_fw[i] = V(10 + i, 0);
		host_srv[i] = V(20 + i, 7);
	}
	host_fw[99] = V(3, 0);
	host_srv[99] = V(1, 1);
	n = hv_ic_build_offer(buf, sizeof(buf), host_fw, 100, host_srv, 100, 1);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, &f, &s), 0);
	assert_int_equal(f, V(3, 0));
	assert_int_equal(s, V(1, 1));

	/* 101 entries: more than IC_VERSION_NEGOTIATION_MAX_VER_COUNT. */
	{
		uint32_t fw101[101];

		memcpy(fw101, host_fw, sizeof(host_fw));
		fw101[100] = V(3, 0);
		n = hv_ic_build_offer(buf, sizeof(buf), fw101, 101, host_srv, 100, 1);
		assert_true(n > 0);
		assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, &f, &s),
				 -EPROTO);
		expect_reply(buf, (size_t)n, 0, 0, 0);
	}
}

static void test_negotiate_malformed(void **state)
{
	uint8_t buf[128];
	uint8_t copy[128];
	int n;

	(void)state;
	/* Zero counts. */
	n = hv_ic_build_offer(buf, sizeof(buf), NULL, 0, our_srv, 1, 1);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, NULL, NULL),
			 -EPROTO);
	expect_reply(buf, (size_t)n, 0, 0, 0);
	n = hv_ic_build_offer(buf, sizeof(buf), our_fw, 1, NULL, 0, 1);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, NULL, NULL),
			 -EPROTO);

	/* Too short for the two counts: untouched. */
	n = hv_ic_build_offer(buf, sizeof(buf), our_fw, 1, our_srv, 1, 1);
	memcpy(copy, buf, sizeof(buf));
	assert_int_equal(hv_ic_negotiate(buf, 31, our_fw, 1, our_srv, 1, NULL, NULL), -EBADMSG);
	assert_memory_equal(buf, copy, sizeof(buf));

	/* Not a negotiation. */
	n = hv_ic_build_request(buf, sizeof(buf), HV_ICMSGTYPE_FCOPY, 0, 0, 0, copy, 16);
	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, our_fw, 1, our_srv, 1, NULL, NULL),
			 -EBADMSG);

	assert_int_equal(hv_ic_negotiate(NULL, 44, our_fw, 1, our_srv, 1, NULL, NULL), -EINVAL);
	assert_int_equal(hv_ic_negotiate(buf, 44, NULL, 1, our_srv, 1, NULL, NULL), -EINVAL);
}

/*
 * Every count combination, cut at every length: the reply never writes past
 * the packet, and success needs the whole offer and a match.
 */
static void test_negotiate_truncations(void **state)
{
	(void)state;
	for (size_t nf = 0; nf <= 3; nf++)
		for (size_t ns = 0; ns <= 3; ns++) {
			uint32_t hf[3] = {V(2, 0), V(3, 0), V(4, 0)};
			uint32_t hs[3] = {V(1, 1), V(1, 0), V(9, 9)};
			uint8_t tmpl[128];
			int full = hv_ic_build_offer(tmpl, sizeof(tmpl), hf, nf, hs, ns, 1);

			assert_int_equal(full, (int)HV_ICMSG_NEGOTIATE_PKT_SIZE(nf, ns));
			for (int len = 28; len <= full; len++) {
				uint8_t buf[160];
				int r;

				memset(buf, 0x5a, sizeof(buf));
				memcpy(buf, tmpl, (size_t)len);
				r = hv_ic_negotiate(buf, (size_t)len, our_fw, 1, our_srv, 1, NULL,
						    NULL);
				for (size_t i = (size_t)len; i < sizeof(buf); i++)
					assert_int_equal(buf[i], 0x5a);

				if (len < 32) {
					assert_int_equal(r, -EBADMSG);
					assert_memory_equal(buf, tmpl, (size_t)len);
				} else if (len == full && nf >= 2 && ns >= 1) {
					assert_int_equal(r, 0);
				} else {
					assert_int_equal(r, -EPROTO);
				}
			}
		}
}

static void test_parse_reply_errors(void **state)
{
	uint8_t buf[64];
	int n;

	(void)state;
	n = hv_ic_build_offer(buf, sizeof(buf), our_fw, 1, our_srv, 1, 1);
	/* A request is not a reply. */
	assert_int_equal(hv_ic_parse_negotiate_reply(buf, (size_t)n, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(hv_ic_parse_negotiate_reply(buf, 20, NULL, NULL, NULL), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_desc_check),
		cmocka_unit_test(test_packet_build_parse),
		cmocka_unit_test(test_msg_parse_and_response),
		cmocka_unit_test(test_negotiate_fcopy),
		cmocka_unit_test(test_negotiate_our_order_wins),
		cmocka_unit_test(test_negotiate_no_common_version),
		cmocka_unit_test(test_negotiate_many_versions),
		cmocka_unit_test(test_negotiate_malformed),
		cmocka_unit_test(test_negotiate_truncations),
		cmocka_unit_test(test_parse_reply_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
