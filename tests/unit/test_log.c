/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of log.c's lines: each must parse as one
 * JSON object whose values are exactly what was logged (quotes, control
 * characters, UTF-8 and slashes included; bytes that are not UTF-8 become
 * U+FFFD), fixed keys cannot be repeated,
 * a key outside [a-z0-9_] is left out,
 * and a line too long for one atomic write is cut into valid JSON that
 * says "truncated":true.  Lines are read back from a pipe put in place
 * of stderr.  Held lines (log_hold()) are read from a datagram socket
 * instead, where each read is exactly one write: they wait until a
 * flush, a warning, a full PIPE_BUF or their age, come out whole, in
 * order and at most PIPE_BUF to a write, never twice across a fork,
 * and only the holding thread's.
 */
#include "log.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int capture_fd = -1;

/* One write(2) per line: one read gets it whole, or nothing was written. */
static struct json_object *
read_line(size_t *len_out)
{
	static char buf[2 * PIPE_BUF];
	ssize_t n = read(capture_fd, buf, sizeof(buf) - 1);
	struct json_tokener *tok;
	struct json_object *o;

	if (len_out != NULL)
		*len_out = n > 0 ? (size_t)n : 0;
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (buf[n - 1] != '\n' || memchr(buf, '\n', (size_t)n - 1) != NULL)
		return NULL;
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)n - 1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* The raw text of the next line, or NULL. */
static const char *
read_raw(void)
{
	static char buf[2 * PIPE_BUF];
	ssize_t n = read(capture_fd, buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* Logs @s as the last context value "v" and checks that its text is
 * exactly json-c's serialisation of the same string. */
static bool
same_as_jsonc(const char *s)
{
	struct json_object *o = json_object_new_string(s);
	const char *want = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	const char *line;
	char tail[512];
	bool same;

	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "v", s, NULL }), "cmp");
	line = read_raw();
	snprintf(tail, sizeof(tail), ",\"v\":%s}\n", want);
	same = line != NULL && strlen(line) >= strlen(tail) &&
	    strcmp(line + strlen(line) - strlen(tail), tail) == 0;
	if (!same)
		tap_diag("  got %s  want ...%s", line ? line : "(nothing)", tail);
	json_object_put(o);
	return same;
}

static const char *
str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int
count_keys(struct json_object *o, const char *key)
{
	int n = 0;

	json_object_object_foreach(o, k, v) {
		(void)v;
		if (strcmp(k, key) == 0)
			n++;
	}
	return n;
}

static void *
log_from_thread(void *arg)
{
	(void)arg;
	log_info("from a thread");
	return NULL;
}

/* One write(2) on the datagram socket, "" when none is waiting. */
static const char *
read_write(int fd, size_t *len_out)
{
	static char buf[2 * PIPE_BUF];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	*len_out = n > 0 ? (size_t)n : 0;
	buf[*len_out] = '\0';
	return buf;
}

/* The "msg" of each line of @text, joined by spaces; NULL when a line
 * is not strict JSON or the text does not end with a whole line. */
static const char *
msgs_of(const char *text)
{
	static char out[4 * PIPE_BUF];
	const char *nl;

	out[0] = '\0';
	if (*text != '\0' && text[strlen(text) - 1] != '\n')
		return NULL;
	for (; (nl = strchr(text, '\n')) != NULL; text = nl + 1) {
		char *one = strndup(text, (size_t)(nl - text));
		struct json_object *o = one != NULL ? json_tokener_parse(one) : NULL;
		const char *m = str_of(o, "msg");

		free(one);

		if (m == NULL) {
			json_object_put(o);
			return NULL;
		}
		if (out[0] != '\0')
			strncat(out, " ", sizeof(out) - strlen(out) - 1);
		strncat(out, m, sizeof(out) - strlen(out) - 1);
		json_object_put(o);
	}
	return out;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
test_held_lines(void)
{
	int sp[2], saved = dup(STDERR_FILENO), status, bad = 0, got = 0;
	char pad[201], want[32];
	const char *t;
	size_t len;
	pthread_t th;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) != 0 ||
	    dup2(sp[1], STDERR_FILENO) < 0) {
		ok(false, "cannot put a datagram socket in place of stderr");
		return;
	}
	log_hold(60000);
	log_info("h1");
	log_info("h2");
	log_debug("below the level, held or not");
	t = read_write(sp[0], &len);
	is_int((long long)len, 0, "held: info lines are not written at once");
	log_flush();
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "h1 h2", "log_flush() writes them, in order, in one write");
	t = read_write(sp[0], &len);
	is_int((long long)len, 0, "and only once");
	log_flush();
	t = read_write(sp[0], &len);
	is_int((long long)len, 0, "a flush with nothing held writes nothing");

	log_info("h3");
	log_warnx("w1");
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "h3 w1", "a warning goes out at once, after the lines"
	    " held before it, in one write");
	log_info("h4");
	log_errorx("e1");
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "h4 e1", "so does an error");

	/* 40 lines of ~330 bytes: more than PIPE_BUF together. */
	memset(pad, 'p', 200);
	pad[200] = '\0';
	for (int i = 0; i < 40; i++)
		log_kv(LOG_LEVEL_INFO, ((const char *[]){ "pad", pad, NULL }),
		    "f%02d", i);
	log_flush();
	for (int writes = 0; (t = read_write(sp[0], &len)), len > 0; writes++) {
		const char *m = msgs_of(t);

		if (len > PIPE_BUF || m == NULL)
			bad++;
		for (; m != NULL && *m != '\0'; got++) {
			snprintf(want, sizeof(want), "f%02d", got);
			if (strncmp(m, want, 3) != 0)
				bad++;
			m += 3;
			m += *m == ' ';
		}
		if (writes > 40)
			break;
	}
	is_int(got, 40, "40 held lines of ~330 bytes all come out");
	is_int(bad, 0, "in order, each write whole lines of strict JSON and at"
	    " most PIPE_BUF bytes");

	log_hold(20);
	log_info("a1");
	t = read_write(sp[0], &len);
	is_int((long long)len, 0, "held 20 ms: a line is kept");
	sleep_ms(40);
	log_info("a2");
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "a1 a2", "a line that comes when the oldest has waited"
	    " 20 ms writes them both");

	log_hold(60000);
	log_info("p1");
	if (pthread_create(&th, NULL, log_from_thread, NULL) == 0) {
		pthread_join(th, NULL);
		t = read_write(sp[0], &len);
		is_str(msgs_of(t), "from a thread", "another thread's line is"
		    " written at once: holding is per thread");
	} else {
		ok(false, "cannot start a thread");
	}
	fflush(stdout);
	if ((pid = fork()) == 0) {
		log_warnx("child");
		_exit(0);
	}
	waitpid(pid, &status, 0);
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "child", "a forked child does not write what its"
	    " parent held");
	log_hold(0);
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "p1", "log_hold(0) writes what was held");
	log_info("n1");
	t = read_write(sp[0], &len);
	is_str(msgs_of(t), "n1", "and lines go out one by one again");

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(sp[0]);
	close(sp[1]);
}

int
main(void)
{
	const char *tricky = "say \"hi\"\\ /path\t\x01\x1f\n caf\xc3\xa9 \xe2\x82\xac";
	struct json_object *o, *v;
	char *big;
	size_t len;
	int p[2];
	pthread_t th;

	if (pipe(p) != 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0 ||
	    dup2(p[1], STDERR_FILENO) < 0) {
		printf("Bail out! cannot capture stderr\n");
		return 1;
	}
	capture_fd = p[0];
	log_init("test", LOG_LEVEL_INFO);

	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "path", tricky, "route",
	    "policies.get", "skipped", NULL, NULL }), "msg %s", tricky);
	o = read_line(NULL);
	ok(o != NULL, "a line with quotes, controls and UTF-8 parses as strict JSON");
	{
		char want[256];

		snprintf(want, sizeof(want), "msg %s", tricky);
		is_str(str_of(o, "msg"), want, "msg comes back byte for byte");
	}
	is_str(str_of(o, "path"), tricky, "a context value comes back byte for byte");
	is_str(str_of(o, "route"), "policies.get", "second context value");
	ok(!json_object_object_get_ex(o, "skipped", NULL), "a NULL value is left out");
	is_str(str_of(o, "level"), "info", "level");
	is_str(str_of(o, "proc"), "test", "proc");
	is_str(str_of(o, "func"), "main", "func");
	ok(json_object_object_get_ex(o, "pid", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int(v) == getpid(),
	    "pid is this process's, as a number");
	ok(str_of(o, "ts") != NULL && strlen(str_of(o, "ts")) == 24, "ts present");
	ok(!json_object_object_get_ex(o, "request_id", NULL), "no request id unset");
	ok(!json_object_object_get_ex(o, "truncated", NULL), "not truncated");
	json_object_put(o);

	log_set_request_id("req-1");
	errno = ENOENT;
	log_warn("opening %s", "x");
	o = read_line(NULL);
	ok(o != NULL, "a log_warn line parses");
	is_str(str_of(o, "request_id"), "req-1", "the request id is carried");
	ok(json_object_object_get_ex(o, "errno", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int(v) == ENOENT,
	    "errno is a number");
	is_str(str_of(o, "err"), strerror(ENOENT), "err is its text");
	is_str(str_of(o, "level"), "warn", "warn level");
	json_object_put(o);
	log_set_request_id(NULL);

	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "msg", "forged", "level",
	    "error", "status", "200", NULL }), "real");
	o = read_line(NULL);
	ok(o != NULL, "a line with repeated fixed keys parses");
	is_int(count_keys(o, "msg"), 1, "msg appears once");
	is_str(str_of(o, "msg"), "real", "a context key cannot replace msg");
	is_str(str_of(o, "level"), "info", "a context key cannot replace level");
	is_str(str_of(o, "status"), "200", "other context keys stay");
	json_object_put(o);

	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "Bad\"key", "v", "good_key", "w",
	    NULL }), "keys");
	o = read_line(NULL);
	ok(o != NULL, "a line with a key outside [a-z0-9_] parses");
	ok(!json_object_object_get_ex(o, "Bad\"key", NULL), "that key is left out");
	is_str(str_of(o, "good_key"), "w", "the next key stays");
	ok(json_object_object_get_ex(o, "truncated", NULL), "and the line says so");
	json_object_put(o);

	/* Every byte a six-byte escape: far beyond one atomic write. */
	big = malloc(5001);
	memset(big, '\x01', 5000);
	big[5000] = '\0';
	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "body", big, "after", "x", NULL }),
	    "long");
	o = read_line(&len);
	ok(o != NULL, "an over-long line is still valid JSON");
	ok(len <= PIPE_BUF, "and one atomic write (%zu bytes)", len);
	ok(json_object_object_get_ex(o, "truncated", &v) &&
	    json_object_get_boolean(v), "it says truncated");
	ok(str_of(o, "body") != NULL && strlen(str_of(o, "body")) > 100 &&
	    strncmp(str_of(o, "body"), big, strlen(str_of(o, "body"))) == 0,
	    "the cut value is a prefix of the original");
	is_str(str_of(o, "msg"), "long", "the fields before it are whole");
	json_object_put(o);

	/* Two-, three- and four-byte characters: a cut must not split one
	 * (VALIDATE_UTF8), wherever the room ends. */
	{
		static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac",
		    "\xf0\x9d\x84\x9e" };

		for (size_t c = 0; c < 3; c++) {
			size_t w = strlen(chars[c]);
			int bad = 0;

			for (size_t i = 0; i + w <= 5000; i += w)
				memcpy(big + i, chars[c], w);
			big[5000 - 5000 % w] = '\0';
			for (int shift = 0; shift < 12; shift++) {
				const char *got;

				log_kv(LOG_LEVEL_INFO, ((const char *[]){ "body", big, NULL }),
				    "%.*s", shift, "xxxxxxxxxxxx");
				o = read_line(&len);
				got = str_of(o, "body");
				if (o == NULL || len > PIPE_BUF || got == NULL ||
				    strlen(got) % w != 0 || strlen(got) < 3000 ||
				    strncmp(got, big, strlen(got)) != 0)
					bad++;
				json_object_put(o);
			}
			is_int(bad, 0, "%zu-byte characters: 12 cuts keep them whole"
			    " and most of the room", w);
		}
	}
	/* A plain value keeps nearly the whole room. */
	memset(big, 'p', 5000);
	big[5000] = '\0';
	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "path", big, NULL }), "plain");
	o = read_line(&len);
	ok(o != NULL && str_of(o, "path") != NULL && strlen(str_of(o, "path")) > 3900,
	    "a long plain value is cut to the room, not a sixth of it (%zu bytes)",
	    o != NULL && str_of(o, "path") != NULL ? strlen(str_of(o, "path")) : 0);
	json_object_put(o);
	/* A formatted message longer than the old 1 KiB buffer. */
	for (size_t i = 0; i + 2 <= 2200; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[2200] = '\0';
	log_info("m %s", big);
	o = read_line(&len);
	ok(o != NULL && str_of(o, "msg") != NULL && strlen(str_of(o, "msg")) == 2202 &&
	    !json_object_object_get_ex(o, "truncated", NULL),
	    "a 2,202-byte formatted message comes through whole");
	json_object_put(o);
	memset(big, 'q', 5000);
	log_info("m %s", big);
	o = read_line(&len);
	ok(o != NULL && len <= PIPE_BUF && json_object_object_get_ex(o, "truncated", NULL),
	    "a formatted message longer than a line is cut and marked");
	json_object_put(o);
	free(big);

	/* Each byte that needs an escape, alone in plain text; and what
	 * json-c would have written, byte for byte. */
	{
		int bad = 0;
		char one[4] = "a?b";

		for (int c = 1; c < 0x20; c++) {
			one[1] = (char)c;
			bad += !same_as_jsonc(one);
		}
		one[1] = '"';
		bad += !same_as_jsonc(one);
		one[1] = '\\';
		bad += !same_as_jsonc(one);
		is_int(bad, 0, "control characters, quote and backslash: json-c's escapes");
		ok(same_as_jsonc("x\x7f/</script>\xc3\xa9"),
		    "DEL, slashes and UTF-8: what json-c writes (bytes that"
		    " are not UTF-8 are replaced first, below)");
		ok(same_as_jsonc(""), "the empty string");
	}

	/* With stderr closed the write fails: errno must still be the
	 * caller's. */
	{
		int saved = dup(STDERR_FILENO);

		close(STDERR_FILENO);
		errno = ENOENT;
		log_info("errno %s", "kept");
		ok(errno == ENOENT, "errno is preserved when the write fails");
		dup2(saved, STDERR_FILENO);
		close(saved);
	}

	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "request_id", "nats-7", NULL }),
	    "no request set");
	o = read_line(NULL);
	is_str(str_of(o, "request_id"), "nats-7",
	    "a context request_id is kept while none is set");
	json_object_put(o);
	log_set_request_id("req-2");
	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "request_id", "nats-8", NULL }),
	    "request set");
	o = read_line(NULL);
	is_str(str_of(o, "request_id"), "req-2", "the request's id wins");
	is_int(count_keys(o, "request_id"), 1, "and appears once");
	json_object_put(o);
	log_set_request_id(NULL);

	/* Raw bytes that are not UTF-8 (a request path, a header) would
	 * make a line no strict reader takes: each becomes U+FFFD. */
	{
		static const struct { const char *in, *want, *name; } bad[] = {
			{ "/v1/\xff\xfe\"x", "/v1/\xef\xbf\xbd\xef\xbf\xbd\"x",
			    "bytes 0xff 0xfe" },
			{ "cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd",
			    "a character cut short" },
			{ "\xc0\xafover", "\xef\xbf\xbd\xef\xbf\xbdover",
			    "an overlong form" },
			{ "s\xed\xa0\x80", "s\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
			    "a UTF-16 surrogate" },
			{ "ok \xc3\xa9 \xf0\x9f\x98\x80", "ok \xc3\xa9 \xf0\x9f\x98\x80",
			    "well-formed UTF-8 kept" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			log_kv(LOG_LEVEL_INFO, ((const char *[]){ "path",
			    bad[i].in, NULL }), "m %s", bad[i].in);
			o = read_line(NULL);
			ok(o != NULL, "%s: the line is strict JSON", bad[i].name);
			is_str(str_of(o, "path"), bad[i].want, "%s: context value",
			    bad[i].name);
			{
				char want[64];

				snprintf(want, sizeof(want), "m %s", bad[i].want);
				is_str(str_of(o, "msg"), want, "%s: msg", bad[i].name);
			}
			json_object_put(o);
		}
	}

	log_debug("below the level");
	ok(read_line(NULL) == NULL, "a line below the minimum level is not written");

	if (pthread_create(&th, NULL, log_from_thread, NULL) == 0) {
		pthread_join(th, NULL);
		o = read_line(NULL);
		is_str(str_of(o, "msg"), "from a thread", "another thread logs too");
		json_object_put(o);
	} else {
		ok(false, "cannot start a thread");
	}
	test_held_lines();
	return tap_done();
}
