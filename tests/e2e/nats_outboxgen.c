/* SPDX-License-Identifier: MIT */
/*
 * This file contains nats_outboxgen, the e2e tests' and benchmark's source
 * of audit events: it queues N events through the product's own outbox
 * code (audit_payload_new + store_outbox_add), one transaction each or all
 * in one, and prints each event id on its own line, in outbox order.
 *
 * usage: nats_outboxgen DB N INTERVAL_MS [BATCH]
 *   INTERVAL_MS: pause between transactions (a steady stream); 0 = none
 *   BATCH: events per transaction (default 1)
 */
#include "audit.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_outbox.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
	struct store *st = NULL;
	long n, interval_ms, batch = 1;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: nats_outboxgen DB N INTERVAL_MS [BATCH]\n");
		return 2;
	}
	n = atol(argv[2]);
	interval_ms = atol(argv[3]);
	if (argc > 4)
		batch = atol(argv[4]);
	if (n < 0 || n > 10000000 || interval_ms < 0 || interval_ms > 60000 ||
	    batch < 1 || batch > 100000)
		return 2;
	log_init("outboxgen", LOG_LEVEL_WARN);
	if ((rc = store_open(argv[1], &st)) != 0) {
		fprintf(stderr, "nats_outboxgen: %s: %s\n", argv[1], err_message(rc));
		return 1;
	}
	for (long i = 0; i < n;) {
		if ((rc = store_begin(st)) != 0)
			break;
		for (long j = 0; j < batch && i < n; j++, i++) {
			char id[OUTBOX_EVENT_ID_LEN], dst[32];
			struct json_object *o = audit_payload_new("flow", "scen-out",
			    "net-out", "deny", "default");

			snprintf(dst, sizeof(dst), "203.0.113.%ld", i % 250 + 1);
			json_object_object_add(o, "src_ip", json_object_new_string("100.64.0.2"));
			json_object_object_add(o, "dst_ip", json_object_new_string(dst));
			json_object_object_add(o, "dst_port", json_object_new_int(443));
			json_object_object_add(o, "protocol", json_object_new_string("tcp"));
			json_object_object_add(o, "seq", json_object_new_int64(i));
			rc = store_outbox_add(st, "flow", "scen-out", o, id);
			json_object_put(o);
			if (rc != 0)
				break;
			printf("%s\n", id);
		}
		if (rc != 0 || (rc = store_commit(st)) != 0)
			break;
		fflush(stdout);
		if (interval_ms > 0) {
			struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "nats_outboxgen: %s\n", err_message(rc));
		store_rollback(st);
	}
	store_close(st);
	return rc == 0 ? 0 : 1;
}
