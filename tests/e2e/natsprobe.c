/* SPDX-License-Identifier: MIT */
/*
 * This file contains natsprobe, a tiny cnats client for the e2e tests and
 * benchmarks (Debian does not package the nats CLI).
 *
 * Every command prints JSON (one object per line) so tests can check the
 * output with jq-free shell or python.  Exit status: 0 success, 1 the
 * expected thing did not happen (timeout, not found), 2 usage or
 * connection error.  The server URL comes from -s or $NATS_URL.
 */
#include <json-c/json.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(void)
{
	fprintf(stderr,
	    "usage: natsprobe [-s URL] COMMAND ...\n"
	    "  pub SUBJECT DATA                  core publish + flush (DATA \"-\":\n"
	    "                                    read it from stdin, any bytes)\n"
	    "  jspub SUBJECT DATA [MSGID]        JetStream publish, prints the ack\n"
	    "  jspub-many SUBJECT N PAUSE_MS     N JetStream publishes (payload\n"
	    "                                    {\"foreign\":I}), PAUSE_MS apart;\n"
	    "                                    prints how many were stored\n"
	    "  sub SUBJECT N TIMEOUT_MS [READY]  print up to N messages (READY: file\n"
	    "                                    created once subscribed); exit 1 if\n"
	    "                                    fewer than N arrived in time\n"
	    "  jsinfo                            exit 0 when JetStream is enabled\n"
	    "  stream-add NAME SUBJ[,SUBJ...] [DUP_MS]\n"
	    "                                    create a file stream (with a\n"
	    "                                    de-duplication window of DUP_MS)\n"
	    "  stream-info NAME                  messages, first/last sequence\n"
	    "  stream-delete NAME                delete a stream\n"
	    "  consumer-delete STREAM NAME       delete a consumer\n"
	    "  consumer-add STREAM NAME FILTER none|all|explicit DELIVER [MAX_DELIVER\n"
	    "               [headers-only]]      a push consumer (FILTER \"\": none)\n"
	    "  stream-dump NAME                  every stored message, in order\n"
	    "  consumer-info STREAM NAME         pending/ack-pending/redelivered\n");
}

static void
print_obj(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

/* The message as one JSON line; data is embedded as JSON when it parses. */
static void
print_msg(natsMsg *m, uint64_t seq)
{
	struct json_object *o = json_object_new_object(), *data;
	const char *id = NULL;
	int len = natsMsg_GetDataLength(m);
	char *copy = malloc((size_t)len + 1);

	if (copy == NULL)
		exit(2);
	memcpy(copy, natsMsg_GetData(m), (size_t)len);
	copy[len] = '\0';
	data = json_tokener_parse(copy);
	if (data == NULL)
		data = json_object_new_string(copy);
	free(copy);
	if (seq > 0)
		json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
	json_object_object_add(o, "subject", json_object_new_string(natsMsg_GetSubject(m)));
	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != NULL)
		json_object_object_add(o, "msg_id", json_object_new_string(id));
	else
		json_object_object_add(o, "msg_id", NULL);
	id = NULL;
	if (natsMsgHeader_Get(m, "Nats-Expected-Last-Msg-Id", &id) == NATS_OK &&
	    id != NULL)
		json_object_object_add(o, "expected_last_msg_id",
		    json_object_new_string(id));
	json_object_object_add(o, "data", data);
	print_obj(o);
}

/* DATA argument, or stdin for "-" (binary-safe, at most 4 MiB). */
static char *
read_data(const char *arg, int *len)
{
	size_t cap = 4 << 20, n = 0, r;
	char *buf;

	if (strcmp(arg, "-") != 0) {
		*len = (int)strlen(arg);
		return strdup(arg);
	}
	if ((buf = malloc(cap)) == NULL)
		exit(2);
	while (n < cap && (r = fread(buf + n, 1, cap - n, stdin)) > 0)
		n += r;
	*len = (int)n;
	return buf;
}

static int
fail(const char *what, natsStatus s, jsErrCode jerr)
{
	fprintf(stderr, "natsprobe: %s: %s", what, natsStatus_GetText(s));
	if (jerr != 0)
		fprintf(stderr, " (JetStream error %d)", (int)jerr);
	fputc('\n', stderr);
	return s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr ||
	    jerr == JSConsumerNotFoundErr ? 1 : 2;
}

static int
cmd_sub(natsConnection *nc, int argc, char **argv)
{
	natsSubscription *sub = NULL;
	long want, timeout_ms, got = 0;
	int64_t deadline;
	natsStatus s;

	if (argc < 3)
		return usage(), 2;
	want = atol(argv[1]);
	timeout_ms = atol(argv[2]);
	if ((s = natsConnection_SubscribeSync(&sub, nc, argv[0])) != NATS_OK ||
	    (s = natsConnection_FlushTimeout(nc, 5000)) != NATS_OK)
		return fail("subscribe", s, 0);
	natsSubscription_SetPendingLimits(sub, -1, -1);
	if (argc > 3) {
		FILE *f = fopen(argv[3], "w");

		if (f != NULL)
			fclose(f);
	}
	deadline = nats_Now() + timeout_ms;
	while (got < want) {
		natsMsg *m = NULL;
		int64_t left = deadline - nats_Now();

		if (left <= 0)
			break;
		s = natsSubscription_NextMsg(&m, sub, left);
		if (s == NATS_TIMEOUT)
			break;
		if (s != NATS_OK) {
			/* Disconnected while the server restarts: keep waiting. */
			nats_Sleep(50);
			continue;
		}
		print_msg(m, 0);
		natsMsg_Destroy(m);
		got++;
	}
	natsSubscription_Destroy(sub);
	return got == want ? 0 : 1;
}

static int
cmd_stream_add(jsCtx *js, int argc, char **argv)
{
	const char *subjects[16];
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	char *copy, *save = NULL;
	int n = 0;
	natsStatus s;

	if (argc < 2)
		return usage(), 2;
	copy = strdup(argv[1]);
	for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		subjects[n++] = t;
	jsStreamConfig_Init(&sc);
	sc.Name = argv[0];
	sc.Subjects = subjects;
	sc.SubjectsLen = n;
	sc.Storage = js_FileStorage;
	if (argc >= 3)
		sc.Duplicates = strtoll(argv[2], NULL, 10) * 1000000;
	s = js_AddStream(&si, js, &sc, NULL, &jerr);
	free(copy);
	if (s != NATS_OK)
		return fail("stream-add", s, jerr);
	jsStreamInfo_Destroy(si);
	return 0;
}

/* A push consumer as an operator might have made one by hand. */
static int
cmd_consumer_add(jsCtx *js, int argc, char **argv)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	if (argc < 5)
		return usage(), 2;
	jsConsumerConfig_Init(&cc);
	cc.Durable = argv[1];
	cc.FilterSubject = argv[2][0] != '\0' ? argv[2] : NULL;
	cc.AckPolicy = strcmp(argv[3], "none") == 0 ? js_AckNone :
	    strcmp(argv[3], "all") == 0 ? js_AckAll : js_AckExplicit;
	cc.DeliverSubject = argv[4];
	if (argc >= 6)
		cc.MaxDeliver = strtoll(argv[5], NULL, 10);
	if (argc >= 7)
		cc.HeadersOnly = strcmp(argv[6], "headers-only") == 0;
	s = js_AddConsumer(&ci, js, argv[0], &cc, NULL, &jerr);
	if (s != NATS_OK)
		return fail("consumer-add", s, jerr);
	jsConsumerInfo_Destroy(ci);
	return 0;
}

static int
cmd_stream_info(jsCtx *js, int argc, char **argv)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	struct json_object *o;
	natsStatus s;

	if (argc < 1)
		return usage(), 2;
	if ((s = js_GetStreamInfo(&si, js, argv[0], NULL, &jerr)) != NATS_OK)
		return fail("stream-info", s, jerr);
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(si->Config->Name));
	json_object_object_add(o, "messages", json_object_new_int64((int64_t)si->State.Msgs));
	json_object_object_add(o, "first_seq", json_object_new_int64((int64_t)si->State.FirstSeq));
	json_object_object_add(o, "last_seq", json_object_new_int64((int64_t)si->State.LastSeq));
	json_object_object_add(o, "consumers", json_object_new_int64(si->State.Consumers));
	json_object_object_add(o, "duplicate_window_ms",
	    json_object_new_int64(si->Config->Duplicates / 1000000));
	json_object_object_add(o, "max_age_s",
	    json_object_new_int64(si->Config->MaxAge / 1000000000));
	print_obj(o);
	jsStreamInfo_Destroy(si);
	return 0;
}

static int
cmd_stream_dump(jsCtx *js, int argc, char **argv)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t first, last;
	natsStatus s;

	if (argc < 1)
		return usage(), 2;
	if ((s = js_GetStreamInfo(&si, js, argv[0], NULL, &jerr)) != NATS_OK)
		return fail("stream-dump", s, jerr);
	first = si->State.FirstSeq;
	last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	for (uint64_t seq = first; seq > 0 && seq <= last; seq++) {
		natsMsg *m = NULL;

		jerr = 0;
		s = js_GetMsg(&m, js, argv[0], seq, NULL, &jerr);
		if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
			continue;
		if (s != NATS_OK)
			return fail("get message", s, jerr);
		print_msg(m, seq);
		natsMsg_Destroy(m);
	}
	return 0;
}

/* A foreign publisher: keeps publishing through errors (the server may be
 * restarted meanwhile); bounded by N. */
static int
cmd_jspub_many(jsCtx *js, int argc, char **argv)
{
	long n, pause_ms, stored = 0;
	char body[64];

	if (argc < 3)
		return usage(), 2;
	n = strtol(argv[1], NULL, 10);
	pause_ms = strtol(argv[2], NULL, 10);
	if (n <= 0 || n > 1000000 || pause_ms < 0 || pause_ms > 10000)
		return usage(), 2;
	for (long i = 0; i < n; i++) {
		jsPubAck *pa = NULL;
		jsErrCode jerr = 0;

		snprintf(body, sizeof(body), "{\"foreign\":%ld}", i);
		if (js_Publish(&pa, js, argv[0], body, (int)strlen(body), NULL,
		    &jerr) == NATS_OK)
			stored++;
		jsPubAck_Destroy(pa);
		if (pause_ms > 0)
			nats_Sleep(pause_ms);
	}
	printf("%ld\n", stored);
	return 0;
}

static int
cmd_consumer_info(jsCtx *js, int argc, char **argv)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	struct json_object *o;
	natsStatus s;

	if (argc < 2)
		return usage(), 2;
	if ((s = js_GetConsumerInfo(&ci, js, argv[0], argv[1], NULL, &jerr)) != NATS_OK)
		return fail("consumer-info", s, jerr);
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(ci->Name));
	json_object_object_add(o, "num_pending", json_object_new_int64((int64_t)ci->NumPending));
	json_object_object_add(o, "num_ack_pending", json_object_new_int64(ci->NumAckPending));
	json_object_object_add(o, "num_redelivered", json_object_new_int64(ci->NumRedelivered));
	json_object_object_add(o, "delivered_stream_seq",
	    json_object_new_int64((int64_t)ci->Delivered.Stream));
	json_object_object_add(o, "ack_floor_stream_seq",
	    json_object_new_int64((int64_t)ci->AckFloor.Stream));
	json_object_object_add(o, "push_bound", json_object_new_boolean(ci->PushBound));
	json_object_object_add(o, "deliver_subject", ci->Config && ci->Config->DeliverSubject
	    ? json_object_new_string(ci->Config->DeliverSubject) : NULL);
	print_obj(o);
	jsConsumerInfo_Destroy(ci);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = getenv("NATS_URL");
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	jsCtx *js = NULL;
	jsErrCode jerr = 0;
	const char *cmd;
	natsStatus s;
	int opt, rc = 2;

	while ((opt = getopt(argc, argv, "+s:h")) != -1) {
		if (opt == 's')
			url = optarg;
		else
			return usage(), 2;
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || url == NULL)
		return usage(), 2;
	cmd = argv[0];
	argc--;
	argv++;

	if ((s = natsOptions_Create(&o)) != NATS_OK ||
	    (s = natsOptions_SetURL(o, url)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
	    (s = natsOptions_SetReconnectWait(o, 100)) != NATS_OK ||
	    (s = natsOptions_SetTimeout(o, 2000)) != NATS_OK ||
	    (s = natsConnection_Connect(&nc, o)) != NATS_OK ||
	    (s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
		fail("connect", s, 0);
		goto out;
	}
	if (strcmp(cmd, "pub") == 0 && argc >= 2) {
		int len;
		char *data = read_data(argv[1], &len);

		s = natsConnection_Publish(nc, argv[0], data, len);
		free(data);
		if (s == NATS_OK)
			s = natsConnection_FlushTimeout(nc, 5000);
		rc = s == NATS_OK ? 0 : fail("pub", s, 0);
	} else if (strcmp(cmd, "jspub") == 0 && argc >= 2) {
		jsPubOptions po;
		jsPubAck *pa = NULL;
		int len;
		char *data = read_data(argv[1], &len);

		jsPubOptions_Init(&po);
		if (argc >= 3)
			po.MsgId = argv[2];
		s = js_Publish(&pa, js, argv[0], data, len, &po, &jerr);
		free(data);
		if (s == NATS_OK) {
			struct json_object *a = json_object_new_object();

			json_object_object_add(a, "stream", json_object_new_string(pa->Stream));
			json_object_object_add(a, "seq", json_object_new_int64((int64_t)pa->Sequence));
			json_object_object_add(a, "duplicate", json_object_new_boolean(pa->Duplicate));
			print_obj(a);
			jsPubAck_Destroy(pa);
			rc = 0;
		} else {
			rc = fail("jspub", s, jerr);
		}
	} else if (strcmp(cmd, "jspub-many") == 0) {
		rc = cmd_jspub_many(js, argc, argv);
	} else if (strcmp(cmd, "sub") == 0) {
		rc = cmd_sub(nc, argc, argv);
	} else if (strcmp(cmd, "jsinfo") == 0) {
		jsAccountInfo *ai = NULL;

		s = js_GetAccountInfo(&ai, js, NULL, &jerr);
		jsAccountInfo_Destroy(ai);
		rc = s == NATS_OK ? 0 : 1;
	} else if (strcmp(cmd, "stream-add") == 0) {
		rc = cmd_stream_add(js, argc, argv);
	} else if (strcmp(cmd, "stream-info") == 0) {
		rc = cmd_stream_info(js, argc, argv);
	} else if (strcmp(cmd, "consumer-add") == 0) {
		rc = cmd_consumer_add(js, argc, argv);
	} else if (strcmp(cmd, "consumer-delete") == 0 && argc >= 2) {
		s = js_DeleteConsumer(js, argv[0], argv[1], NULL, &jerr);
		rc = s == NATS_OK ? 0 : fail("consumer-delete", s, jerr);
	} else if (strcmp(cmd, "stream-delete") == 0 && argc >= 1) {
		s = js_DeleteStream(js, argv[0], NULL, &jerr);
		rc = s == NATS_OK ? 0 : fail("stream-delete", s, jerr);
	} else if (strcmp(cmd, "stream-dump") == 0) {
		rc = cmd_stream_dump(js, argc, argv);
	} else if (strcmp(cmd, "consumer-info") == 0) {
		rc = cmd_consumer_info(js, argc, argv);
	} else {
		usage();
	}
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	/* nats_Close() does not wait for the library's threads; one still
	 * running when exit() tears the library down can abort() in a mutex
	 * (nats.c issue #222), once seen as a silent "Aborted" under ASan. */
	nats_CloseAndWait(5000);
	return rc;
}
