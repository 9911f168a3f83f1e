/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of egw-flowlog's parsers: the
 * NFLOG prefix and the logged packet's L3/L4 headers.
 *
 * Every input is given to both parsers (libFuzzer's buffer is exactly
 * @size bytes, so ASan reports any read past the copied packet).
 * Properties checked besides memory safety:
 *  - an accepted prefix is "egw:<a|d|w>:<m or the decimal id>:<reason>"
 *    with the parsed action and reason, reason [a-z_]{1,24};
 *  - an accepted packet has the version its first nibble says, the
 *    addresses at their header offsets, ports only for port-carrying
 *    protocols and ICMP type/code only for ICMP.
 * With FUZZ_PKTPARSE_CONTRACT=1 the start-up also checks that every
 * prefix the applier renders (contracts.md: "egw:<v>:m:<reason>") parses;
 * tests/e2e/fuzz_smoke.sh runs that as its own check.
 */
#include "fuzz.h"

#include "err.h"
#include "pktparse.h"

#include <netinet/in.h>
#include <sys/socket.h>

static const char *const reasons[] = {
	"allowlist", "default", "dns", "metadata", "linklocal", "gateway",
	"baseline", "disabled", "failed", "spoofed", NULL
};

static void
contract_check(void)
{
	static const char verdicts[] = "adw";
	struct pktparse_prefix pp;
	char text[64];
	int bad = 0;

	for (int v = 0; v < 3; v++) {
		for (int r = 0; reasons[r]; r++) {
			snprintf(text, sizeof(text), "egw:%c:m:%s", verdicts[v],
			    reasons[r]);
			if (pktparse_prefix(text, strlen(text), &pp) != 0 ||
			    pp.action != (enum pktparse_action)v ||
			    strcmp(pp.reason, reasons[r]) != 0) {
				fprintf(stderr, "contract prefix refused: %s\n", text);
				bad++;
			}
		}
	}
	if (bad) {
		fprintf(stderr, "%d of 27 applier prefixes refused\n", bad);
		exit(1);
	}
	fprintf(stderr, "all 27 applier prefixes parse\n");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *c = getenv("FUZZ_PKTPARSE_CONTRACT");

	if (c != NULL && strcmp(c, "1") == 0)
		contract_check();
	return 0;
}

static void
check_prefix(const uint8_t *data, size_t size)
{
	struct pktparse_prefix pp;
	const char *s = (const char *)data;
	const char *nul = memchr(s, '\0', size);
	size_t len = nul ? (size_t)(nul - s) : size;
	const char *last;
	char id[16];

	if (pktparse_prefix(s, size, &pp) != 0)
		return;
	FUZZ_CHECK(len >= 9 && memcmp(s, "egw:", 4) == 0 && s[5] == ':');
	FUZZ_CHECK("adw"[pp.action] == s[4]);
	FUZZ_CHECK(pp.action <= PKTPARSE_WOULD_DENY);
	for (last = s + len; last > s && last[-1] != ':'; last--)
		;
	FUZZ_CHECK(last > s + 6);
	FUZZ_CHECK(strlen(pp.reason) == (size_t)(s + len - last));
	FUZZ_CHECK(memcmp(pp.reason, last, strlen(pp.reason)) == 0);
	FUZZ_CHECK(strlen(pp.reason) >= 1 && strlen(pp.reason) <= PKTPARSE_REASON_MAX);
	for (const char *r = pp.reason; *r; r++)
		FUZZ_CHECK((*r >= 'a' && *r <= 'z') || *r == '_');
	/* The middle field: "m" or the canonical decimal policy id. */
	snprintf(id, sizeof(id), "%u", pp.policy_id);
	FUZZ_CHECK(pp.policy_id <= INT32_MAX);
	FUZZ_CHECK((size_t)(last - 1 - (s + 6)) < sizeof(id));
	FUZZ_CHECK((last - 1 - (s + 6) == 1 && s[6] == 'm') ||
	    ((size_t)(last - 1 - (s + 6)) == strlen(id) &&
	    memcmp(s + 6, id, strlen(id)) == 0));
}

static void
check_packet(const uint8_t *data, size_t size)
{
	struct pktparse_packet pk;
	char a[PKTPARSE_ADDRSTRLEN], pn[4];

	if (pktparse_packet(data, size, &pk) != 0)
		return;
	FUZZ_CHECK(size >= 1);
	if (pk.family == AF_INET) {
		FUZZ_CHECK(data[0] >> 4 == 4 && size >= 20);
		FUZZ_CHECK(memcmp(pk.src, data + 12, 4) == 0);
		FUZZ_CHECK(memcmp(pk.dst, data + 16, 4) == 0);
	} else {
		FUZZ_CHECK(pk.family == AF_INET6);
		FUZZ_CHECK(data[0] >> 4 == 6 && size >= 40);
		FUZZ_CHECK(memcmp(pk.src, data + 8, 16) == 0);
		FUZZ_CHECK(memcmp(pk.dst, data + 24, 16) == 0);
	}
	if (pk.flags & PKTPARSE_F_PORTS)
		FUZZ_CHECK(pk.proto == IPPROTO_TCP || pk.proto == IPPROTO_UDP ||
		    pk.proto == 136 || pk.proto == 132 || pk.proto == 33);
	if (pk.flags & PKTPARSE_F_ICMP)
		FUZZ_CHECK(pk.proto == IPPROTO_ICMP || pk.proto == IPPROTO_ICMPV6);
	FUZZ_CHECK(!((pk.flags & PKTPARSE_F_PORTS) && (pk.flags & PKTPARSE_F_ICMP)));
	FUZZ_CHECK(pktparse_format_addr(pk.family, pk.src, a)[0] != '\0');
	FUZZ_CHECK(pktparse_proto_name(pk.proto, pn) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_prefix(data, size);
	check_packet(data, size);
	return 0;
}
