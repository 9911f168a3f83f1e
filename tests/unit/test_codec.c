/* SPDX-License-Identifier: MIT */
/*
 * This file contains the table-driven tests of codec.c: good bodies must
 * parse and survive JSON -> policy -> JSON -> policy unchanged; bad bodies
 * must fail with the right code and carry a problem at the right JSON path
 * with a reason a client can act on.
 */
#include "codec.h"
#include "err.h"
#include "policy.h"
#include "tap.h"
#include "utf8.h"

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct good_case {
	const char *name;
	const char *body;
};

static const struct good_case good[] = {
	{ "minimal", "{\"scenario_id\":\"s1\"}" },
	{ "a single quote inside a string", "{\"scenario_id\":\"s1\",\"created_at\":\"it's\"}" },
	{ "all fields", "{\"scenario_id\":\"scn-1\",\"network_id\":\"net_1\","
	  "\"profile\":\"custom\",\"custom_rules\":[{\"proto\":\"tcp\","
	  "\"dest\":\"192.0.2.0/24\",\"ports\":[443,\"8000-8100\"]}],"
	  "\"allowed_hosts\":[\"198.51.100.7\",\"203.0.113.0/24\"],"
	  "\"allowed_ports\":[22,\"6000-6010\"],\"enabled\":true,"
	  "\"sources\":[\"100.64.1.0/24\"],\"interfaces\":[\"br-0123456789ab\"],"
	  "\"dns_servers\":[\"100.64.1.1\"],\"mode\":\"enforce\",\"revision\":0}" },
	{ "custom hosts only", "{\"scenario_id\":\"a\",\"profile\":\"custom\","
	  "\"allowed_hosts\":[\"192.0.2.10\"]}" },
	{ "custom ports only", "{\"scenario_id\":\"a\",\"profile\":\"custom\","
	  "\"allowed_ports\":[80,443,\"8443\"]}" },
	{ "icmp rule without ports", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"icmp\",\"dest\":\"192.0.2.1\"}]}" },
	{ "any rule without dest", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"any\"}]}" },
	{ "udp rule with range", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"udp\",\"ports\":[\"5000-5100\",53]}]}" },
	{ "rule with null dest and empty ports", "{\"scenario_id\":\"a\","
	  "\"custom_rules\":[{\"proto\":\"tcp\",\"dest\":null,\"ports\":[]}]}" },
	{ "ipv6 entries", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"2001:db8::1\",\"2001:db8:1::/48\"],\"sources\":[\"fd00:1::/64\"],"
	  "\"dns_servers\":[\"2001:db8::53\"]}" },
	{ "empty dns list", "{\"scenario_id\":\"a\",\"dns_servers\":[]}" },
	{ "null dns list", "{\"scenario_id\":\"a\",\"dns_servers\":null}" },
	{ "audit mode", "{\"scenario_id\":\"a\",\"mode\":\"audit\"}" },
	{ "disabled", "{\"scenario_id\":\"a\",\"enabled\":false}" },
	{ "revision", "{\"scenario_id\":\"a\",\"revision\":3}" },
	{ "response-only fields ignored", "{\"scenario_id\":\"a\","
	  "\"created_at\":\"2026-01-01T00:00:00.000Z\",\"updated_at\":1,"
	  "\"status\":{\"apply\":\"applied\"},\"apply_status\":\"failed\","
	  "\"apply_error\":null,\"generation\":9,\"applied_generation\":8,"
	  "\"id\":4,\"mark\":4,\"completed_at\":null}" },
	{ "null optional fields", "{\"scenario_id\":\"a\",\"network_id\":null,"
	  "\"profile\":null,\"custom_rules\":null,\"allowed_hosts\":null,"
	  "\"allowed_ports\":null,\"sources\":null,\"interfaces\":null,"
	  "\"mode\":null,\"enabled\":null,\"revision\":null}" },
	{ "whitespace around body", " \n\t{\"scenario_id\":\"a\"}\r\n " },
	{ "operator profile", "{\"scenario_id\":\"a\",\"profile\":\"lab_2-x\"}" },
	{ "interfaces", "{\"scenario_id\":\"a\",\"interfaces\":[\"veth0.1\","
	  "\"br-abc\",\"eth_9\"]}" },
	{ "id characters", "{\"scenario_id\":\"Scn.1:a_b-c\"}" },
	{ "adjacent ports", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[\"1-79\",80,\"81-65535\"]}" },
	{ "disjoint hosts", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"192.0.2.0/25\",\"192.0.2.128/25\",\"2001:db8::/32\"]}" },
	{ "long ids", "{\"scenario_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaa\"}" },
	{ "rules differing only in ports", "{\"scenario_id\":\"a\","
	  "\"custom_rules\":[{\"proto\":\"tcp\",\"ports\":[80]},"
	  "{\"proto\":\"tcp\",\"ports\":[81]}]}" },
	/* RFC 8259 text the strictness checks must let through. */
	{ "escaped control characters in an ignored field",
	  "{\"scenario_id\":\"a\",\"created_at\":\"\\t\\n\\r\\u0001\\u001f\"}" },
	{ "escaped quotes and backslashes, DEL and UTF-8 in a string",
	  "{\"scenario_id\":\"a\",\"status\":\"\\\\\\\"\x7f\xc3\xa9\\\\\"}" },
	{ "every number form in an ignored field", "{\"scenario_id\":\"a\","
	  "\"created_at\":[0,-0,10,-10,0.5,-0.0,1e3,1E+3,1.5e-3,-2E-0,"
	  "1e-400,1.7976931348623157e308]}" },
	{ "whitespace between tokens", "{ \"scenario_id\" :\t\"a\" ,\r\n"
	  "\"allowed_ports\" : [ 443 , \"8000-8100\" ] }" },
};

struct bad_case {
	const char *name;
	const char *body;
	int rc;
	const char *path;
	const char *reason;	/* substring */
};

#define BR EGW_E_BADREQUEST
#define IV EGW_E_INVALID

/* A key of 63 bytes: the longest check_text() copies without decoding. */
#define K63 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
_Static_assert(sizeof(K63) == 64, "K63 is 63 bytes");

static const struct bad_case bad[] = {
	{ "empty body", "", BR, "", "empty" },
	{ "array body", "[]", BR, "", "must be a JSON object" },
	{ "string body", "\"x\"", BR, "", "must be a JSON object" },
	{ "truncated", "{\"scenario_id\":\"a\"", BR, "", "incomplete" },
	{ "truncated inside a string", "{\"scenario_id\":\"a", BR, "", "incomplete" },
	{ "truncated in a number", "{\"revision\":12", BR, "", "incomplete" },
	{ "null body", "null", BR, "", "must be a JSON object, not null" },
	{ "true body", "true", BR, "", "must be a JSON object, not a boolean" },
	{ "number body", "5", BR, "", "must be a JSON object, not an integer" },
	{ "number body, space after", "5 ", BR, "", "must be a JSON object, not an integer" },
	{ "broken literal at the end", "nul", BR, "", "malformed JSON at byte 3" },
	{ "trailing data", "{\"scenario_id\":\"a\"} x", BR, "", "malformed" },
	{ "two objects", "{\"scenario_id\":\"a\"}{}", BR, "", "malformed" },
	{ "single quotes", "{'scenario_id':'a'}", BR, "", "malformed" },
	{ "trailing comma", "{\"scenario_id\":\"a\",}", BR, "", "malformed" },
	{ "bad utf-8", "{\"scenario_id\":\"\xff\xfe\"}", BR, "", "not valid UTF-8 at byte 16" },
	{ "duplicate key", "{\"scenario_id\":\"a\",\"scenario_id\":\"b\"}", BR, "",
	  "duplicate key \"scenario_id\"" },
	{ "duplicate key, escaped spelling", "{\"scenario_id\":\"a\",\"\\u0073cenario_id\":\"b\"}",
	  BR, "", "duplicate key" },
	{ "duplicate key, escaped spelling first", "{\"\\u0073cenario_id\":\"a\",\"scenario_id\":\"b\"}",
	  BR, "", "duplicate key \"scenario_id\"" },
	/* 63 bytes are copied as they are, 64 and more decoded by json-c:
	 * each length twice, plainly and escaped. */
	{ "duplicate key of 63 bytes", "{\"scenario_id\":\"a\",\"" K63 "\":1,\"" K63 "\":2}",
	  BR, "", "duplicate key \"k" },
	{ "duplicate key of 64 bytes", "{\"scenario_id\":\"a\",\"" K63 "x\":1,\"" K63 "x\":2}",
	  BR, "", "duplicate key \"k" },
	{ "duplicate key of 64 bytes, escaped second", "{\"scenario_id\":\"a\",\"" K63 "x\":1,"
	  "\"" K63 "\\u0078\":2}", BR, "", "duplicate key \"k" },
	{ "duplicate key in a rule", "{\"scenario_id\":\"a\",\"custom_rules\":[{\"proto\":\"tcp\"},"
	  "{\"proto\":\"tcp\",\"proto\":\"udp\"}]}", BR, "/custom_rules/1", "duplicate key \"proto\"" },
	{ "NaN", "{\"scenario_id\":\"a\",\"revision\":NaN}", BR, "", "NaN" },
	{ "Infinity", "{\"scenario_id\":\"a\",\"allowed_ports\":[-Infinity]}", BR, "", "NaN" },
	{ "Infinity in an ignored field", "{\"scenario_id\":\"a\",\"status\":Infinity}",
	  BR, "", "NaN and Infinity are not JSON numbers" },
	/* json-c 0.16 accepts these even with JSON_TOKENER_STRICT. */
	{ "single-quoted key", "{\"scenario_id\":\"a\",'1 2':1}", BR, "",
	  "malformed JSON at byte 19: strings take double quotes" },
	{ "single-quoted duplicate key", "{\"scenario_id\":\"a\",\"created_at\":1,'created_at':2}",
	  BR, "", "strings take double quotes" },
	{ "single-quoted value", "{\"scenario_id\":'a'}", BR, "",
	  "malformed JSON at byte 15" },
	{ "raw tab in a string", "{\"scenario_id\":\"a\",\"created_at\":\"2026\t1\"}",
	  BR, "", "malformed JSON at byte 37: a raw control character (0x09)" },
	{ "raw newline in a string", "{\"scenario_id\":\"a\",\"created_at\":\"x\ny\"}",
	  BR, "", "raw control character (0x0a)" },
	{ "raw 0x01 in a string", "{\"scenario_id\":\"a\",\"created_at\":\"\x01\"}",
	  BR, "", "raw control character (0x01)" },
	{ "raw 0x1f after an escape", "{\"scenario_id\":\"a\",\"created_at\":\"\\\"\x1f\"}",
	  BR, "", "raw control character (0x1f)" },
	{ "raw control character in a key", "{\"scenario_id\":\"a\",\"x\x02\":1}",
	  BR, "", "raw control character (0x02)" },
	{ "raw control character in scenario_id", "{\"scenario_id\":\"a\tb\"}",
	  BR, "", "raw control character (0x09)" },
	{ "number 5.", "{\"scenario_id\":\"a\",\"created_at\":5.}", BR, "",
	  "malformed JSON at byte 32: 5. is not a JSON number (a digit must follow" },
	{ "number 1.e3", "{\"scenario_id\":\"a\",\"created_at\":1.e3}", BR, "",
	  "1.e3 is not a JSON number (a digit must follow the decimal point)" },
	{ "number -0.", "{\"scenario_id\":\"a\",\"created_at\":[1,-0.]}", BR, "",
	  "-0. is not a JSON number" },
	{ "number -.5", "{\"scenario_id\":\"a\",\"created_at\":-.5}", BR, "",
	  "-.5 is not a JSON number (a digit must come before the decimal point)" },
	{ "number 00", "{\"scenario_id\":\"a\",\"created_at\":00}", BR, "",
	  "00 is not a JSON number (leading zeros are not allowed)" },
	{ "number -01", "{\"scenario_id\":\"a\",\"created_at\":-01}", BR, "",
	  "-01 is not a JSON number (leading zeros" },
	{ "number 443. in a typed field", "{\"scenario_id\":\"a\",\"allowed_ports\":[443.]}",
	  BR, "", "443. is not a JSON number" },
	{ "revision -007", "{\"scenario_id\":\"a\",\"revision\":-007}", BR, "",
	  "leading zeros" },
	{ "number 1e400", "{\"scenario_id\":\"a\",\"created_at\":1e400}", BR, "",
	  "a number is out of range" },
	{ "number -1e400 in a typed field", "{\"scenario_id\":\"a\",\"allowed_ports\":[-1e400]}",
	  BR, "", "a number is out of range" },
	{ "number 1.8e308", "{\"scenario_id\":\"a\",\"revision\":1.8e308}", BR, "",
	  "out of range" },
	{ "no fields", "{}", IV, "/scenario_id", "required" },
	{ "scenario_id number", "{\"scenario_id\":5}", IV, "/scenario_id",
	  "must be a string" },
	{ "scenario_id empty", "{\"scenario_id\":\"\"}", IV, "/scenario_id",
	  "required" },
	{ "scenario_id null", "{\"scenario_id\":null}", IV, "/scenario_id",
	  "required" },
	{ "scenario_id leading dash", "{\"scenario_id\":\"-a\"}", IV,
	  "/scenario_id", "starting with a letter or digit" },
	{ "scenario_id space", "{\"scenario_id\":\"a b\"}", IV, "/scenario_id",
	  "characters" },
	{ "scenario_id too long", "{\"scenario_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", IV, "/scenario_id",
	  "longer than 64" },
	{ "scenario_id NUL escape", "{\"scenario_id\":\"a\\u0000b\"}", IV,
	  "/scenario_id", "NUL" },
	{ "unknown field", "{\"scenario_id\":\"a\",\"foo\":1}", IV, "/foo",
	  "unknown field" },
	{ "unknown field escaped", "{\"scenario_id\":\"a\",\"a/b~c\":1}", IV,
	  "/a~1b~0c", "unknown field" },
	{ "network_id number", "{\"scenario_id\":\"a\",\"network_id\":5}", IV,
	  "/network_id", "must be a string" },
	{ "network_id bad chars", "{\"scenario_id\":\"a\",\"network_id\":\"n!\"}",
	  IV, "/network_id", "characters" },
	{ "profile number", "{\"scenario_id\":\"a\",\"profile\":1}", IV,
	  "/profile", "must be a string" },
	{ "profile bad name", "{\"scenario_id\":\"a\",\"profile\":\"Bad Name\"}",
	  IV, "/profile", "profile name" },
	{ "enabled string", "{\"scenario_id\":\"a\",\"enabled\":\"true\"}", IV,
	  "/enabled", "true or false" },
	{ "enabled integer", "{\"scenario_id\":\"a\",\"enabled\":1}", IV,
	  "/enabled", "true or false" },
	{ "mode unknown", "{\"scenario_id\":\"a\",\"mode\":\"strict\"}", IV,
	  "/mode", "\"enforce\" or \"audit\"" },
	{ "mode number", "{\"scenario_id\":\"a\",\"mode\":1}", IV, "/mode",
	  "\"enforce\" or \"audit\"" },
	{ "revision float", "{\"scenario_id\":\"a\",\"revision\":1.0}", IV,
	  "/revision", "must be an integer" },
	{ "revision string", "{\"scenario_id\":\"a\",\"revision\":\"3\"}", IV,
	  "/revision", "must be an integer" },
	{ "revision negative", "{\"scenario_id\":\"a\",\"revision\":-1}", IV,
	  "/revision", ">= 0" },
	{ "revision 2^63", "{\"scenario_id\":\"a\","
	  "\"revision\":9223372036854775808}", IV, "/revision", "out of range" },
	{ "revision 10^30", "{\"scenario_id\":\"a\","
	  "\"revision\":1000000000000000000000000000000}", IV, "/revision",
	  "out of range" },
	{ "hosts not array", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "\"10.0.0.1\"}", IV, "/allowed_hosts", "must be an array" },
	{ "hosts hostname", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"example.com\"]}", IV, "/allowed_hosts/0",
	  "hostnames are not supported yet; give an address or prefix" },
	{ "hosts bad length", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"10.0.0.1/33\"]}", IV, "/allowed_hosts/0", "prefix length" },
	{ "hosts host bits", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"10.0.0.1/8\"]}", IV, "/allowed_hosts/0", "bits set" },
	{ "hosts IPv4-mapped address", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"::ffff:10.9.0.1\"]}", IV, "/allowed_hosts/0",
	  "an IPv6 form of an IPv4 address never matches IPv4 traffic; write 10.9.0.1" },
	{ "hosts IPv4-compatible address", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"::10.0.0.1\"]}", IV, "/allowed_hosts/0", "write 10.0.0.1" },
	{ "sources IPv4-mapped prefix", "{\"scenario_id\":\"a\",\"sources\":"
	  "[\"::ffff:10.8.0.0/120\"]}", IV, "/sources/0", "write 10.8.0.0/24" },
	{ "dns IPv4-mapped", "{\"scenario_id\":\"a\",\"dns_servers\":"
	  "[\"::ffff:192.0.2.53\"]}", IV, "/dns_servers/0", "write 192.0.2.53" },
	{ "rule dest IPv4-mapped", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"dest\":\"::ffff:0:0/96\"}]}", IV,
	  "/custom_rules/0/dest", "write 0.0.0.0/0" },
	{ "hosts leading zero", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"010.0.0.1\"]}", IV, "/allowed_hosts/0", "IPv4" },
	{ "hosts number", "{\"scenario_id\":\"a\",\"allowed_hosts\":[5]}", IV,
	  "/allowed_hosts/0", "must be a string" },
	{ "hosts duplicate", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"192.0.2.1\",\"192.0.2.1/32\"]}", IV, "/allowed_hosts/1",
	  "duplicate of /allowed_hosts/0" },
	{ "hosts overlap", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"192.0.2.0/24\",\"192.0.2.7\"]}", IV, "/allowed_hosts/1",
	  "overlaps /allowed_hosts/0" },
	{ "ports float", "{\"scenario_id\":\"a\",\"allowed_ports\":[443.0]}",
	  IV, "/allowed_ports/0", "non-integer" },
	{ "ports zero", "{\"scenario_id\":\"a\",\"allowed_ports\":[0]}", IV,
	  "/allowed_ports/0", "1-65535" },
	{ "ports too big", "{\"scenario_id\":\"a\",\"allowed_ports\":[65536]}",
	  IV, "/allowed_ports/0", "1-65535" },
	{ "ports reversed", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[\"100-50\"]}", IV, "/allowed_ports/0", "above its end" },
	{ "ports open range", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[\"80-\"]}", IV, "/allowed_ports/0", "lo-hi" },
	{ "ports leading zero", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[\"080\"]}", IV, "/allowed_ports/0", "1-65535" },
	{ "ports boolean", "{\"scenario_id\":\"a\",\"allowed_ports\":[true]}",
	  IV, "/allowed_ports/0", "not a boolean" },
	{ "ports duplicate", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[80,\"80\"]}", IV, "/allowed_ports/1", "duplicate" },
	{ "ports overlap", "{\"scenario_id\":\"a\",\"allowed_ports\":"
	  "[80,\"70-90\"]}", IV, "/allowed_ports/1", "overlaps" },
	{ "rules not array", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "\"tcp dport 22 accept\"}", IV, "/custom_rules", "must be an array" },
	{ "rule as nft text", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[\"tcp dport 22 accept\"]}", IV, "/custom_rules/0",
	  "{\"proto\":\"tcp\",\"dest\":\"192.0.2.0/24\",\"ports\":" },
	{ "rule number", "{\"scenario_id\":\"a\",\"custom_rules\":[5]}", IV,
	  "/custom_rules/0", "must be an object" },
	{ "rule without proto", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"dest\":\"192.0.2.1\"}]}", IV, "/custom_rules/0/proto", "required" },
	{ "rule bad proto", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"sctp\"}]}", IV, "/custom_rules/0/proto", "\"tcp\"" },
	{ "icmp rule with ports", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"icmp\",\"ports\":[1]}]}", IV, "/custom_rules/0/ports",
	  "takes no ports" },
	{ "any rule with ports", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"any\",\"ports\":[80]}]}", IV, "/custom_rules/0/ports",
	  "takes no ports" },
	{ "rule hostname", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"dest\":\"api.example.org\"}]}", IV,
	  "/custom_rules/0/dest", "hostnames are not supported yet" },
	{ "rule unknown key", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"action\":\"accept\"}]}", IV,
	  "/custom_rules/0/action", "unknown field" },
	{ "rule duplicate", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"ports\":[22]},{\"proto\":\"tcp\",\"ports\":[22]}]}",
	  IV, "/custom_rules/1", "duplicate of /custom_rules/0" },
	{ "rule duplicate, ports in another order", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"dest\":\"192.0.2.0/24\",\"ports\":[443,80,\"8000-8100\"]},"
	  "{\"proto\":\"tcp\",\"dest\":\"192.0.2.0/24\",\"ports\":[\"8000-8100\",80,443]}]}",
	  IV, "/custom_rules/1", "duplicate of /custom_rules/0" },
	{ "rules with a repeated port are no duplicates of each other",
	  "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"ports\":[80,80]},{\"proto\":\"tcp\",\"ports\":[80,443]}]}",
	  IV, "/custom_rules/0/ports/1", "" },
	{ "rule bad range", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"ports\":[\"1-2-3\"]}]}", IV,
	  "/custom_rules/0/ports/0", "lo-hi" },
	{ "rule ports float", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"ports\":[22.5]}]}", IV,
	  "/custom_rules/0/ports/0", "non-integer" },
	{ "rule ports overlap", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"ports\":[\"20-30\",25]}]}", IV,
	  "/custom_rules/0/ports/1", "overlaps" },
	{ "source everything", "{\"scenario_id\":\"a\",\"sources\":"
	  "[\"0.0.0.0/0\"]}", IV, "/sources/0", "every address" },
	{ "source overlap", "{\"scenario_id\":\"a\",\"sources\":"
	  "[\"100.64.0.0/16\",\"100.64.3.0/24\"]}", IV, "/sources/1", "overlaps" },
	{ "source hostname", "{\"scenario_id\":\"a\",\"sources\":[\"lab.local\"]}",
	  IV, "/sources/0", "hostnames" },
	/* What clients paste instead of an address: each named for what it
	 * is, none "not a valid IPv6 address". */
	{ "hosts hostname with a port", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"localhost:8080\"]}", IV, "/allowed_hosts/0", "a hostname with a"
	  " port: hostnames are not supported yet; give an address or prefix; a"
	  " port goes in allowed_ports" },
	{ "hosts https URL", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"https://pypi.org\"]}", IV, "/allowed_hosts/0",
	  "a URL: give the address alone" },
	{ "hosts http URL of an address", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"http://10.0.0.1\"]}", IV, "/allowed_hosts/0", "a URL" },
	{ "hosts IPv4 address with a port", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"10.0.0.1:443\"]}", IV, "/allowed_hosts/0", "an address with a port:"
	  " give the address alone; a port goes in allowed_ports or a"
	  " custom_rules entry's ports" },
	{ "hosts IPv6 address with a port", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"[2001:db8::1]:443\"]}", IV, "/allowed_hosts/0",
	  "an address with a port: give the address alone, without brackets" },
	{ "hosts bracketed IPv6 address", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"[2001:db8::1]\"]}", IV, "/allowed_hosts/0", "without brackets" },
	{ "hosts trailing space", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"1.2.3.4 \"]}", IV, "/allowed_hosts/0", "surrounding whitespace" },
	{ "sources leading newline", "{\"scenario_id\":\"a\",\"sources\":"
	  "[\"\\n10.0.0.0/8\"]}", IV, "/sources/0", "surrounding whitespace" },
	{ "hosts inner space", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"10.0.0.0 /8\"]}", IV, "/allowed_hosts/0", "contains whitespace" },
	{ "rule dest hostname with a port", "{\"scenario_id\":\"a\",\"custom_rules\":"
	  "[{\"proto\":\"tcp\",\"dest\":\"pypi.org:443\"}]}", IV,
	  "/custom_rules/0/dest", "a hostname with a port" },
	{ "dns address with a port", "{\"scenario_id\":\"a\",\"dns_servers\":"
	  "[\"10.0.0.53:53\"]}", IV, "/dns_servers/0", "an address with a port:"
	  " give the address alone (resolvers are reached on port 53)" },
	{ "dns hostname", "{\"scenario_id\":\"a\",\"dns_servers\":"
	  "[\"dns.google\"]}", IV, "/dns_servers/0",
	  "hostnames are not supported yet; give an address" },
	{ "hosts hex-only name with a port is left to the IPv6 parser",
	  "{\"scenario_id\":\"a\",\"allowed_hosts\":[\"cafe:443\"]}", IV,
	  "/allowed_hosts/0", "not a valid IPv6 address" },
	{ "hosts mistyped IPv6", "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	  "[\"2001:db8::g1\"]}", IV, "/allowed_hosts/0", "not a valid IPv6 address" },
	{ "interface too long", "{\"scenario_id\":\"a\",\"interfaces\":"
	  "[\"this-name-is-too-long\"]}", IV, "/interfaces/0", "longer than 15" },
	{ "interface bad chars", "{\"scenario_id\":\"a\",\"interfaces\":"
	  "[\"eth 0\"]}", IV, "/interfaces/0", "characters" },
	{ "interface duplicate", "{\"scenario_id\":\"a\",\"interfaces\":"
	  "[\"eth0\",\"eth0\"]}", IV, "/interfaces/1", "duplicate" },
	{ "interface number", "{\"scenario_id\":\"a\",\"interfaces\":[1]}", IV,
	  "/interfaces/0", "must be a string" },
	{ "dns prefix", "{\"scenario_id\":\"a\",\"dns_servers\":"
	  "[\"10.0.0.0/24\"]}", IV, "/dns_servers/0", "single address" },
	{ "dns duplicate", "{\"scenario_id\":\"a\",\"dns_servers\":"
	  "[\"10.0.0.2\",\"10.0.0.2\"]}", IV, "/dns_servers/1", "duplicate" },
	{ "dns not array", "{\"scenario_id\":\"a\",\"dns_servers\":\"10.0.0.2\"}",
	  IV, "/dns_servers", "must be an array" },
	{ "sources object", "{\"scenario_id\":\"a\",\"sources\":{}}", IV,
	  "/sources", "must be an array" },
};

static bool
has_problem(const struct policy_errors *errs, const char *path,
    const char *reason)
{
	for (size_t i = 0; i < errs->count; i++)
		if (strcmp(errs->items[i].path, path) == 0 &&
		    strstr(errs->items[i].reason, reason) != NULL)
			return true;
	return false;
}

static void
dump(const struct policy_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		tap_diag("  %s: %s", errs->items[i].path, errs->items[i].reason);
}

static char *
to_text(const struct policy *p)
{
	struct json_object *o = codec_policy_to_json(p);
	char *s = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return s;
}

/* A body with @n entries of @item (printf with the index) in @field. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *
list_body(const char *field, size_t n, const char *item)
{
	size_t size = 64 + n * 64;
	char *b = malloc(size), entry[64];
	size_t o = (size_t)snprintf(b, size, "{\"scenario_id\":\"a\",\"%s\":[", field);

	for (size_t i = 0; i < n; i++) {
		snprintf(entry, sizeof(entry), item, (unsigned)(i / 200 + 1),
		    (unsigned)(i % 200 + 1));
		o += (size_t)snprintf(b + o, size - o, "%s%s", i ? "," : "", entry);
	}
	snprintf(b + o, size - o, "]}");
	return b;
}
#pragma GCC diagnostic pop

static void
test_limits(struct policy *p, struct policy_errors *errs)
{
	static const struct {
		const char *field;
		size_t n;
		const char *item;
		const char *path;
	} lim[] = {
		{ "allowed_hosts", POLICY_MAX_HOSTS + 1, "\"10.%u.0.%u\"",
		  "/allowed_hosts" },
		{ "allowed_ports", POLICY_MAX_PORTS + 1, "%u%03u", "/allowed_ports" },
		{ "sources", POLICY_MAX_SOURCES + 1, "\"100.64.%u.%u\"", "/sources" },
		{ "interfaces", POLICY_MAX_INTERFACES + 1, "\"e%u_%u\"", "/interfaces" },
		{ "dns_servers", POLICY_MAX_DNS + 1, "\"10.0.%u.%u\"", "/dns_servers" },
		{ "custom_rules", POLICY_MAX_RULES + 1,
		  "{\"proto\":\"tcp\",\"ports\":[%u%03u]}", "/custom_rules" },
	};
	char *body;
	int rc;

	for (size_t i = 0; i < sizeof(lim) / sizeof(*lim); i++) {
		body = list_body(lim[i].field, lim[i].n, lim[i].item);
		rc = codec_policy_from_json(body, strlen(body), p, errs);
		is_int(rc, EGW_E_INVALID, "limit: %zu %s refused", lim[i].n,
		    lim[i].field);
		ok(has_problem(errs, lim[i].path, "at most"),
		    "limit: %s reason names the maximum", lim[i].field);
		free(body);
		/* Exactly the maximum is fine (entries are distinct). */
		body = list_body(lim[i].field, lim[i].n - 1, lim[i].item);
		rc = codec_policy_from_json(body, strlen(body), p, errs);
		is_int(rc, 0, "limit: %zu %s accepted", lim[i].n - 1, lim[i].field);
		if (rc != 0)
			dump(errs);
		free(body);
	}
	body = strdup("{\"scenario_id\":\"a\",\"custom_rules\":[{\"proto\":\"tcp\","
	    "\"ports\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}]}");
	rc = codec_policy_from_json(body, strlen(body), p, errs);
	is_int(rc, EGW_E_INVALID, "limit: 17 ports in one rule refused");
	ok(has_problem(errs, "/custom_rules/0/ports", "at most 16"),
	    "limit: rule ports path");
	free(body);
}

static bool
errors_are_utf8(const struct policy_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		if (!utf8_valid(errs->items[i].path, strlen(errs->items[i].path), NULL) ||
		    !utf8_valid(errs->items[i].reason, strlen(errs->items[i].reason), NULL))
			return false;
	return true;
}

/* Text that is not UTF-8, and keys that json-c would read otherwise. */
static void
test_utf8_bodies(struct policy *p, struct policy_errors *errs)
{
	static const struct {
		const char *name, *body, *reason;
		int rc;
	} cases[] = {
		{ "key with \\u0000 (read by json-c as \"enabled\")",
		  "{\"scenario_id\":\"a\",\"enabled\\u0000junk\":false}",
		  "\\u0000", EGW_E_BADREQUEST },
		{ "overlong '/' (C0 AF)",
		  "{\"scenario_id\":\"a\",\"status\":\"\xc0\xaf\"}",
		  "not valid UTF-8 at byte 29", EGW_E_BADREQUEST },
		{ "UTF-16 surrogate (ED A0 80)",
		  "{\"scenario_id\":\"a\",\"status\":\"\xed\xa0\x80\"}",
		  "not valid UTF-8", EGW_E_BADREQUEST },
		{ "past U+10FFFF (F4 90 80 80)",
		  "{\"scenario_id\":\"a\",\"status\":\"\xf4\x90\x80\x80\"}",
		  "not valid UTF-8", EGW_E_BADREQUEST },
		{ "cut sequence (E2 82)",
		  "{\"scenario_id\":\"a\",\"status\":\"\xe2\x82\"}",
		  "not valid UTF-8", EGW_E_BADREQUEST },
		{ "stray continuation in a key",
		  "{\"scenario_id\":\"a\",\"\x80\":1}",
		  "not valid UTF-8", EGW_E_BADREQUEST },
		{ "valid 4-byte character in an ignored field",
		  "{\"scenario_id\":\"a\",\"status\":\"\xf0\x9f\x98\x80\"}",
		  NULL, 0 },
	};
	char body[600];
	size_t o;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		rc = codec_policy_from_json(cases[i].body, strlen(cases[i].body),
		    p, errs);
		is_int(rc, cases[i].rc, "utf-8: %s", cases[i].name);
		if (cases[i].reason != NULL)
			ok(has_problem(errs, "", cases[i].reason),
			    "utf-8: %s: reason", cases[i].name);
	}

	/* A quoted key cut to fit is cut between characters: 70 x U+00E9. */
	o = (size_t)snprintf(body, sizeof(body), "{\"scenario_id\":\"a\",\"");
	for (int i = 0; i < 70; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "\xc3\xa9");
	memcpy(body + o, "\":1}", 5);
	rc = codec_policy_from_json(body, o + 4, p, errs);
	is_int(rc, EGW_E_INVALID, "long non-ASCII unknown key refused");
	ok(errs->count > 0 && errors_are_utf8(errs),
	    "its path and reason are still UTF-8");
	/* "a" and 30 x U+20AC (3 bytes): a cut at 60 bytes falls inside
	 * the 20th euro sign. */
	o -= 140;
	for (int k = 0; k < 2; k++) {
		body[o++] = 'a';
		for (int i = 0; i < 30; i++)
			o += (size_t)snprintf(body + o, sizeof(body) - o, "\xe2\x82\xac");
		o += (size_t)snprintf(body + o, sizeof(body) - o, k == 0 ? "\":1,\"" : "\":2}");
	}
	rc = codec_policy_from_json(body, o, p, errs);
	is_int(rc, EGW_E_BADREQUEST, "long non-ASCII duplicate key refused");
	ok(has_problem(errs, "", "duplicate key") && errors_are_utf8(errs),
	    "its reason quotes the key cut between characters");
}

/*
 * {"scenario_id":"a","created_at":V}, where V nests containers (arrays, or
 * objects {"k":...}) so that the body holds @n in all, the body's own
 * object included; the innermost holds @inner, or nothing when NULL.
 */
static char *
nested_body(int n, bool objects, const char *inner)
{
	size_t size = 64 + (size_t)n * 8 + (inner ? strlen(inner) : 0), o;
	char *b = malloc(size);
	int k = inner != NULL ? n - 1 : n - 2;	/* containers around inner */

	o = (size_t)snprintf(b, size, "{\"scenario_id\":\"a\",\"created_at\":");
	for (int i = 0; i < k; i++)
		o += (size_t)snprintf(b + o, size - o, "%s",
		    objects ? "{\"k\":" : "[");
	o += (size_t)snprintf(b + o, size - o, "%s", inner != NULL ? inner
	    : objects ? "{}" : "[]");
	for (int i = 0; i < k; i++)
		o += (size_t)snprintf(b + o, size - o, "%s", objects ? "}" : "]");
	snprintf(b + o, size - o, "}");
	return b;
}

/*
 * The limit is on containers: 16 nested objects and arrays pass whatever
 * the innermost one holds, 17 are refused.  json-c's own limit counts the
 * innermost scalar as a level, which refused 16 containers around a 1.
 */
static void
test_depth(struct policy *p, struct policy_errors *errs)
{
	static const char *const inner[] = { "1", "\"s\"", "null", NULL };
	char *body;
	int rc;

	for (int objects = 0; objects < 2; objects++) {
		for (size_t i = 0; i < sizeof(inner) / sizeof(*inner); i++) {
			const char *what = objects ? "objects" : "arrays";
			const char *in = inner[i] ? inner[i] : "nothing";

			body = nested_body(16, objects, inner[i]);
			rc = codec_policy_from_json(body, strlen(body), p, errs);
			is_int(rc, 0, "depth: 16 containers (%s) around %s"
			    " accepted", what, in);
			if (rc != 0) {
				tap_diag("  %s", body);
				dump(errs);
			}
			free(body);
			for (int n = 17; n <= 18; n++) {
				body = nested_body(n, objects, inner[i]);
				rc = codec_policy_from_json(body, strlen(body),
				    p, errs);
				is_int(rc, EGW_E_BADREQUEST, "depth: %d"
				    " containers (%s) around %s refused", n,
				    what, in);
				ok(errs->count == 1 && has_problem(errs, "",
				    "nested deeper than 16 levels"),
				    "depth: %d (%s) around %s: one problem, the"
				    " depth", n, what, in);
				free(body);
			}
		}
	}
	/* The request body of the review, 1 object and 15 arrays around 1. */
	body = strdup("{\"scenario_id\":\"a\",\"created_at\":"
	    "[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}");
	rc = codec_policy_from_json(body, strlen(body), p, errs);
	is_int(rc, 0, "depth: the reviewed 16-container body is accepted");
	free(body);
}

static void
test_special(struct policy *p, struct policy_errors *errs)
{
	char body[256], deep[128];
	int rc;
	size_t o = 0;

	memcpy(body, "{\"scenario_id\":\"a\"}\0", 21);
	rc = codec_policy_from_json(body, 20, p, errs);
	is_int(rc, EGW_E_BADREQUEST, "NUL byte in body refused");
	ok(has_problem(errs, "", "NUL"), "NUL byte reason");

	/* 17 levels: the object plus 16 arrays. */
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"scenario_id\":\"a\",\"x\":");
	for (int i = 0; i < 16; i++)
		deep[o++] = '[';
	for (int i = 0; i < 16; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	deep[o] = '\0';
	rc = codec_policy_from_json(deep, strlen(deep), p, errs);
	is_int(rc, EGW_E_BADREQUEST, "nesting deeper than 16 refused");
	ok(has_problem(errs, "", "nested deeper than 16"), "depth reason");
	is_int((int)errs->count, 1, "bad request has exactly one problem");
	/* 16 levels are allowed: the document parses, and only the
	 * unknown field is refused. */
	o = (size_t)snprintf(deep, sizeof(deep), "{\"scenario_id\":\"a\",\"x\":");
	for (int i = 0; i < 15; i++)
		deep[o++] = '[';
	for (int i = 0; i < 15; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	deep[o] = '\0';
	rc = codec_policy_from_json(deep, strlen(deep), p, errs);
	is_int(rc, EGW_E_INVALID, "nesting of 16 levels parses (%s)", deep);
	ok(has_problem(errs, "/x", "unknown"), "16 levels: the field is judged");

	test_depth(p, errs);
	test_utf8_bodies(p, errs);

	/* [80,80] and [80,443] are different sets: only the repeat is wrong. */
	snprintf(body, sizeof(body), "{\"scenario_id\":\"a\",\"custom_rules\":"
	    "[{\"proto\":\"tcp\",\"ports\":[80,80]},{\"proto\":\"tcp\","
	    "\"ports\":[80,443]}]}");
	codec_policy_from_json(body, strlen(body), p, errs);
	ok(!has_problem(errs, "/custom_rules/1", "duplicate"),
	    "a rule repeating a port is no duplicate of a different rule");

	/* Every problem is reported, not just the first. */
	snprintf(body, sizeof(body), "{\"scenario_id\":1,\"enabled\":\"no\","
	    "\"allowed_hosts\":[\"example.com\",\"10.0.0.0/33\"],\"zzz\":0,"
	    "\"custom_rules\":[\"accept\"]}");
	rc = codec_policy_from_json(body, strlen(body), p, errs);
	is_int(rc, EGW_E_INVALID, "many problems: invalid");
	is_int((int)errs->count, 6, "many problems: all six collected");
	if (errs->count != 6)
		dump(errs);
	ok(has_problem(errs, "/scenario_id", "string") &&
	    has_problem(errs, "/enabled", "true or false") &&
	    has_problem(errs, "/allowed_hosts/0", "hostnames") &&
	    has_problem(errs, "/allowed_hosts/1", "prefix length") &&
	    has_problem(errs, "/zzz", "unknown") &&
	    has_problem(errs, "/custom_rules/0", "raw rule text"),
	    "many problems: each path present");

	/* extra_keys lets the NATS bridge accept "track". */
	{
		struct json_object *obj;
		static const char *const extra[] = { "track", NULL };

		snprintf(body, sizeof(body), "{\"scenario_id\":\"a\",\"track\":\"ccna\"}");
		is_int(codec_parse_body(body, strlen(body), &obj, errs), 0,
		    "parse_body of an event");
		is_int(codec_policy_from_object(obj, NULL, p, errs), EGW_E_INVALID,
		    "track unknown without extra_keys");
		ok(has_problem(errs, "/track", "unknown field"), "track path");
		is_int(codec_policy_from_object(obj, extra, p, errs), 0,
		    "track accepted with extra_keys");
		is_str(p->profile, "none", "absent profile defaults to none");
		json_object_put(obj);
	}
}

static void
test_canonical(struct policy *p, struct policy_errors *errs)
{
	const char *body = "{\"scenario_id\":\"a\",\"allowed_hosts\":"
	    "[\"2001:DB8::/32\",\"192.0.2.1/32\"],\"allowed_ports\":[\"80-80\","
	    "\"443\",\"8000-8100\"],\"custom_rules\":[{\"proto\":\"tcp\"}]}";
	char *text;

	is_int(codec_policy_from_json(body, strlen(body), p, errs), 0,
	    "canonical: parses");
	text = codec_policy_input_string(p);
	is_str(text, "{\"scenario_id\":\"a\",\"network_id\":\"\",\"profile\":"
	    "\"none\",\"mode\":\"enforce\",\"enabled\":true,\"sources\":[],"
	    "\"interfaces\":[],\"dns_servers\":null,\"allowed_hosts\":"
	    "[\"2001:db8::/32\",\"192.0.2.1\"],\"allowed_ports\":[80,443,"
	    "\"8000-8100\"],\"custom_rules\":[{\"proto\":\"tcp\",\"dest\":null,"
	    "\"ports\":[]}]}", "canonical: input JSON");
	free(text);

	p->id = 7;
	p->revision = 2;
	p->generation = 11;
	p->applied_generation = 10;
	p->apply_status = POLICY_APPLY_FAILED;
	snprintf(p->apply_error, sizeof(p->apply_error), "kernel said no");
	snprintf(p->created_at, sizeof(p->created_at), "2026-01-01T00:00:00.000Z");
	snprintf(p->updated_at, sizeof(p->updated_at), "2026-01-02T00:00:00.000Z");
	{
		struct json_object *o = codec_policy_to_json(p), *v, *s;

		ok(json_object_object_get_ex(o, "mark", &v) &&
		    json_object_get_int64(v) == 7, "to_json: mark is the id");
		ok(!json_object_object_get_ex(o, "id", NULL), "to_json: no id key");
		ok(json_object_object_get_ex(o, "completed_at", &v) && v == NULL,
		    "to_json: completed_at null");
		ok(json_object_object_get_ex(o, "status", &s) &&
		    json_object_object_get_ex(s, "apply", &v) &&
		    strcmp(json_object_get_string(v), "failed") == 0,
		    "to_json: status.apply");
		ok(json_object_object_get_ex(s, "error", &v) &&
		    strcmp(json_object_get_string(v), "kernel said no") == 0,
		    "to_json: status.error");
		ok(json_object_object_get_ex(s, "applied_generation", &v) &&
		    json_object_get_int64(v) == 10, "to_json: applied_generation");
		ok(json_object_object_get_ex(o, "revision", &v) &&
		    json_object_get_int64(v) == 2, "to_json: revision");
		json_object_put(o);
	}
}

/* What the API prints for @p, with the same flags as every response. */
static char *
api_text(const struct policy *p)
{
	struct json_object *o = codec_policy_to_json(p);
	char *s = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

/* The stored document plus the status must print exactly what the policy
 * prints: reads answer the one, the rows the other. */
static bool
document_matches(const struct policy *p)
{
	char *input = codec_policy_input_string(p);
	char *doc = codec_policy_document(p, input);
	char *want = api_text(p);
	struct printbuf *pb = printbuf_new();
	bool same = doc != NULL && pb != NULL &&
	    codec_policy_append_status(pb, doc, strlen(doc), p->apply_status,
	    p->apply_error, p->applied_generation) == 0 &&
	    strcmp(pb->buf, want) == 0;

	if (!same)
		tap_diag("want %s\n got %s", want, pb != NULL && pb->buf != NULL
		    ? pb->buf : "(nothing)");
	printbuf_free(pb);
	free(want);
	free(doc);
	free(input);
	return same;
}

static void
test_document(struct policy *p, struct policy_errors *errs)
{
	/* Texts json-c escapes (quote, backslash, control characters, DEL
	 * and UTF-8 are printed as they are) and ones it does not. */
	static const char *const texts[] = {
		"", "nft: Error: Could not process rule", "say \"no\"",
		"back\\slash", "line\nbreak\ttab", "\x01\x1f", "del\x7f",
		"caf\xc3\xa9 \xe2\x82\xac", "a/b", "2026-11-29T10:00:00.123Z"
	};
	static const enum policy_apply_status statuses[] = {
		POLICY_APPLY_PENDING, POLICY_APPLY_APPLIED, POLICY_APPLY_FAILED
	};
	size_t n_texts = sizeof(texts) / sizeof(*texts);
	size_t n_good = sizeof(good) / sizeof(*good), mismatches = 0;
	struct printbuf *pb;

	for (size_t i = 0; i < n_good; i++) {
		if (codec_policy_from_json(good[i].body, strlen(good[i].body), p,
		    errs) != 0)
			continue;
		p->id = (int64_t)i + 1;
		p->revision = 7;
		p->generation = 123456789012LL;
		p->applied_generation = (int64_t)i;
		for (size_t t = 0; t < n_texts; t++) {
			snprintf(p->created_at, sizeof(p->created_at), "%s", texts[t]);
			snprintf(p->updated_at, sizeof(p->updated_at), "%s",
			    texts[(t + 1) % n_texts]);
			snprintf(p->completed_at, sizeof(p->completed_at), "%s",
			    texts[(t + 2) % n_texts]);
			snprintf(p->apply_error, sizeof(p->apply_error), "%s",
			    texts[(t + 3) % n_texts]);
			p->apply_status = statuses[t % 3];
			if (!document_matches(p))
				mismatches++;
		}
	}
	is_int((int)mismatches, 0, "document + status = the policy's text, %zu"
	    " bodies x %zu texts", n_good, n_texts);

	pb = printbuf_new();
	is_int(codec_policy_append_status(pb, "", 0, POLICY_APPLY_PENDING, NULL,
	    0), EGW_E_DB, "document: empty text refused");
	is_int(codec_policy_append_status(pb, "[1]", 3, POLICY_APPLY_PENDING,
	    NULL, 0), EGW_E_DB, "document: not an object refused");
	printbuf_free(pb);
	ok(codec_policy_document(p, "[]") == NULL &&
	    codec_policy_document(p, NULL) == NULL,
	    "document: input that is not an object's text refused");

	{
		char *input, *doc, *other;
		size_t len;

		codec_policy_from_json(good[1].body, strlen(good[1].body), p, errs);
		input = codec_policy_input_string(p);
		doc = codec_policy_document(p, input);
		len = doc != NULL ? strlen(doc) : 0;
		ok(doc != NULL && codec_document_has_input(doc, len, input),
		    "document: built from its own input");
		/* Its first members only: the shared text ends on a whole
		 * member, but the document goes on with another input field. */
		ok(!codec_document_has_input(doc, len, "{\"scenario_id\":\"scn-1\"}"),
		    "document: input of fewer members is another input");
		p->enabled = !p->enabled;
		other = codec_policy_input_string(p);
		ok(!codec_document_has_input(doc, len, other),
		    "document: a changed field is another input");
		ok(!codec_document_has_input(doc, len, "{}") &&
		    !codec_document_has_input(doc, len, ""),
		    "document: empty inputs match nothing");
		free(other);
		free(doc);
		free(input);
	}
}

static void
test_error_body(void)
{
	struct policy_errors errs;
	struct json_object *o, *e, *v;
	char *s;

	policy_errors_init(&errs);
	policy_errors_add(&errs, "/allowed_hosts/0", "hostnames are %s", "bad");
	policy_errors_add(&errs, "/mode", "nope");
	s = codec_error_body(EGW_E_INVALID, NULL, &errs, "req-1");
	o = json_tokener_parse(s);
	ok(o != NULL && json_object_object_get_ex(o, "error", &e),
	    "error body: parses");
	ok(json_object_object_get_ex(e, "code", &v) &&
	    strcmp(json_object_get_string(v), "invalid_policy") == 0,
	    "error body: code token");
	ok(json_object_object_get_ex(e, "field", &v) &&
	    strcmp(json_object_get_string(v), "/allowed_hosts/0") == 0,
	    "error body: field is the first path");
	ok(json_object_object_get_ex(e, "details", &v) &&
	    json_object_array_length(v) == 2, "error body: two details");
	ok(json_object_object_get_ex(o, "request_id", &v) &&
	    strcmp(json_object_get_string(v), "req-1") == 0,
	    "error body: request id");
	json_object_put(o);
	free(s);

	s = codec_error_body(EGW_E_NOTFOUND, "no policy for \"x\"", NULL, NULL);
	o = json_tokener_parse(s);
	ok(o != NULL && json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "field", &v) && v == NULL &&
	    json_object_object_get_ex(o, "request_id", &v) && v == NULL,
	    "error body: nulls without details");
	ok(json_object_object_get_ex(e, "message", &v) &&
	    strcmp(json_object_get_string(v), "no policy for \"x\"") == 0,
	    "error body: message with quotes escaped and intact");
	json_object_put(o);
	free(s);

	for (int i = 0; i < POLICY_ERRORS_MAX + 3; i++)
		policy_errors_add(&errs, "/x", "r");
	s = codec_error_body(EGW_E_INVALID, NULL, &errs, NULL);
	o = json_tokener_parse(s);
	ok(o != NULL && json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "details_dropped", &v) &&
	    json_object_get_int(v) == 5, "error body: dropped count");
	json_object_put(o);
	free(s);
}

/* Durations print as milliseconds to the microsecond, not 17 digits. */
static void
test_ms(void)
{
	static const struct { double ms; const char *text; } cases[] = {
		{ 0.1, "0.100" }, { 12.3456, "12.346" }, { 0, "0.000" },
		{ 2500, "2500.000" },
		/* beyond %.3f's room: json-c's own digits */
		{ 1e300, "1.0000000000000001e+300" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *j = codec_ms_to_json(cases[i].ms);

		is_str(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
		    cases[i].text, "duration %g ms prints as %s", cases[i].ms,
		    cases[i].text);
		ok(json_object_get_double(j) == cases[i].ms, "... and keeps its value");
		json_object_put(j);
	}
}

int
main(void)
{
	struct policy *a = policy_new(), *b = policy_new();
	struct policy_errors *errs = malloc(sizeof(*errs));
	size_t n_good = sizeof(good) / sizeof(*good);
	size_t n_bad = sizeof(bad) / sizeof(*bad);
	int rc;

	tap_diag("%zu good and %zu bad bodies in the tables", n_good, n_bad);
	for (size_t i = 0; i < n_good; i++) {
		char *t1, *t2, *in1, *in2;

		rc = codec_policy_from_json(good[i].body, strlen(good[i].body), a,
		    errs);
		is_int(rc, 0, "good: %s", good[i].name);
		if (rc != 0) {
			dump(errs);
			continue;
		}
		t1 = to_text(a);
		rc = codec_policy_from_json(t1, strlen(t1), b, errs);
		is_int(rc, 0, "good: %s: own output parses back", good[i].name);
		if (rc != 0)
			dump(errs);
		t2 = to_text(b);
		in1 = codec_policy_input_string(a);
		in2 = codec_policy_input_string(b);
		ok(strcmp(t1, t2) == 0 && strcmp(in1, in2) == 0 &&
		    a->revision == b->revision,
		    "good: %s: round trip is the identity", good[i].name);
		free(t1);
		free(t2);
		free(in1);
		free(in2);
	}
	for (size_t i = 0; i < n_bad; i++) {
		rc = codec_policy_from_json(bad[i].body, strlen(bad[i].body), a,
		    errs);
		is_int(rc, bad[i].rc, "bad: %s: code", bad[i].name);
		ok(has_problem(errs, bad[i].path, bad[i].reason),
		    "bad: %s: \"%s\" has \"%s\"", bad[i].name, bad[i].path,
		    bad[i].reason);
		if (!has_problem(errs, bad[i].path, bad[i].reason))
			dump(errs);
	}
	test_special(a, errs);
	test_limits(a, errs);
	test_canonical(a, errs);
	test_error_body();
	test_document(a, errs);
	test_ms();
	policy_free(a);
	policy_free(b);
	free(errs);
	return tap_done();
}
