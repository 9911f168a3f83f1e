/* SPDX-License-Identifier: MIT */
/*
 * This file contains the JSON-lines logger.
 *
 * A line is written with one write(2) so that lines from the prefork
 * workers sharing stderr never interleave mid-line (writes of up to
 * PIPE_BUF bytes to a pipe are atomic).  A line that would be longer has
 * its values cut, stays valid JSON and says "truncated":true.
 */
#include "log.h"
#include "err.h"
#include "timefmt.h"
#include "utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_proc = "egw";
static enum log_level log_min_level = LOG_LEVEL_INFO;
/* Per thread: the API writer's sync thread logs while its main thread
 * runs a request's operation, and must not borrow that request's id. */
static _Thread_local char log_request_id[65];
/* getpid() is a system call on every line otherwise (glibc no longer
 * caches it); refreshed in every child by the fork handler. */
static pid_t log_pid;
static char log_pid_text[16];
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

/*
 * The lines a thread holds back (log_hold()): whole lines, at most
 * PIPE_BUF bytes together, so that writing them is still one atomic
 * write(2).  An API worker writes a line for every request, and on a
 * shared file or journald's socket that write cost a read as much as
 * the rest of its logging (bench/api/README.md, eighteenth session).
 */
static _Thread_local struct {
	unsigned max_age_ms;	/* 0: every line is written at once */
	int64_t oldest_ms;	/* monotonic time of the first line held */
	size_t len;
	char buf[PIPE_BUF];
} log_held;

static void
log_pid_refresh(void)
{
	log_pid = getpid();
	snprintf(log_pid_text, sizeof(log_pid_text), "%d", (int)log_pid);
	/* The parent writes what it held; a child writing it too would
	 * double those lines. */
	log_held.len = 0;
}

static void
log_pid_setup(void)
{
	log_pid_refresh();
	pthread_atfork(NULL, NULL, log_pid_refresh);
}

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

void
log_init(const char *proc, enum log_level min_level)
{
	log_proc = proc;
	log_min_level = min_level;
	pthread_once(&log_pid_once, log_pid_setup);
}

int
log_level_parse(const char *text, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++) {
		if (strcasecmp(text, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return EGW_E_CONFIG;
}

void
log_hold(unsigned max_age_ms)
{
	if (max_age_ms == 0)
		log_flush();
	log_held.max_age_ms = max_age_ms;
}

void
log_flush(void)
{
	int saved_errno = errno;

	/* Best effort, as every line: a closed stderr must not take the
	 * daemon down, and what it refused is not kept to grow. */
	if (log_held.len > 0 && write(STDERR_FILENO, log_held.buf, log_held.len) < 0)
		(void)0;
	log_held.len = 0;
	errno = saved_errno;
}

/* One finished line, written now or held (log_hold()). */
static void
log_put(enum log_level level, const char *text, size_t len)
{
	int64_t now_ms;

	if (log_held.max_age_ms == 0) {
		if (write(STDERR_FILENO, text, len) < 0)
			(void)0;
		return;
	}
	if (log_held.len + len > sizeof(log_held.buf))
		log_flush();
	now_ms = timefmt_monotonic_ms();
	if (log_held.len == 0)
		log_held.oldest_ms = now_ms;
	memcpy(log_held.buf + log_held.len, text, len);
	log_held.len += len;
	/* A warning or an error is not kept waiting, nor anything before
	 * it (the lines stay in order). */
	if (level >= LOG_LEVEL_WARN ||
	    now_ms - log_held.oldest_ms >= (int64_t)log_held.max_age_ms)
		log_flush();
}

void
log_set_request_id(const char *request_id)
{
	if (request_id == NULL)
		log_request_id[0] = '\0';
	else
		snprintf(log_request_id, sizeof(log_request_id), "%s", request_id);
}

/*
 * A line is assembled in place rather than as a json-c object: building
 * and freeing a dozen objects and a hash table cost ~20,000 instructions
 * per line, and the API writes a line for every request.  json-c still
 * does every escape (see log_quote()): a string that needs one goes
 * through one per-thread json-c string object and comes back quoted and
 * escaped.
 */
struct log_line {
	char buf[PIPE_BUF];
	size_t len;
	bool truncated;
};

/* Kept free for `,"truncated":true` and the closing `}` and newline. */
#define LOG_LINE_RESERVE (sizeof(",\"truncated\":true}\n") - 1)

static pthread_key_t log_escaper_key;
static bool log_escaper_keyed;
static pthread_once_t log_escaper_once = PTHREAD_ONCE_INIT;
static _Thread_local struct json_object *log_escaper_obj;

static void
log_escaper_free(void *obj)
{
	json_object_put(obj);
	/* A later key destructor of this thread may still log. */
	log_escaper_obj = NULL;
}

static void
log_escaper_key_create(void)
{
	log_escaper_keyed =
	    pthread_key_create(&log_escaper_key, log_escaper_free) == 0;
}

/* This thread's string object; the key frees it when the thread ends. */
static struct json_object *
log_escaper(void)
{
	if (log_escaper_obj == NULL) {
		pthread_once(&log_escaper_once, log_escaper_key_create);
		log_escaper_obj = json_object_new_string("");
		if (log_escaper_obj != NULL && log_escaper_keyed)
			pthread_setspecific(log_escaper_key, log_escaper_obj);
	}
	return log_escaper_obj;
}

/*
 * How many leading bytes of @text need no escape.  RFC 8259 requires
 * escapes for '"', '\\' and the control characters only, so text without
 * them (a route, a request id, most messages) is its own JSON form, and
 * json-c is asked only for the rest.
 */
static size_t
log_plain_prefix(const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

/*
 * @text's first @len bytes as a JSON string, quoted: in @out (@size
 * bytes) when no byte needs an escape (@plain is log_plain_prefix()),
 * else in json-c's buffer, valid until the next call on this thread.
 * NULL when json-c cannot allocate or plain text does not fit @out.
 */
static const char *
log_quote(const char *text, size_t len, size_t plain, char *out, size_t size,
    size_t *out_len)
{
	struct json_object *o;

	if (plain >= len) {
		if (len + 2 > size)
			return NULL;
		out[0] = '"';
		memcpy(out + 1, text, len);
		out[len + 1] = '"';
		*out_len = len + 2;
		return out;
	}
	o = log_escaper();
	if (o == NULL || len > INT_MAX ||
	    json_object_set_string_len(o, text, (int)len) != 1)
		return NULL;
	return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, out_len);
}

static size_t
log_room(const struct log_line *l)
{
	return sizeof(l->buf) - LOG_LINE_RESERVE - l->len;
}

static void
log_raw(struct log_line *l, const char *text, size_t n)
{
	memcpy(l->buf + l->len, text, n);
	l->len += n;
}

/* Context keys are our own literals; anything else is a bug, and is left
 * out.  (The fixed keys are literals of this file and are not checked.) */
static bool
log_key_ok(const char *key)
{
	size_t len = strlen(key);

	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((key[i] >= 'a' && key[i] <= 'z') ||
		    (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
			return false;
	}
	return true;
}

/*
 * @value with every byte that does not belong to a well-formed UTF-8
 * sequence replaced by U+FFFD, or NULL when @value is well-formed (or
 * memory is short: the value is then logged as it is).  A log line is
 * JSON, and JSON is UTF-8: a request path or a client's header with raw
 * bytes >= 0x80 made lines that strict readers refuse and lenient ones
 * rewrite.
 */
static char *
log_utf8_repaired(const char *value, size_t len)
{
	static const char replacement[] = "\xef\xbf\xbd";
	size_t i = 0, n = 0, bad;
	uint64_t word;
	char *out;

	/* Most values are ASCII: eight bytes at a time until a high bit. */
	for (; i + sizeof(word) <= len; i += sizeof(word)) {
		memcpy(&word, value + i, sizeof(word));
		if ((word & 0x8080808080808080u) != 0)
			break;
	}
	for (; i < len && (unsigned char)value[i] < 0x80; i++)
		;
	if (i == len || utf8_valid(value + i, len - i, NULL))
		return NULL;
	/* Each byte becomes at most the three of U+FFFD. */
	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len;) {
		if (utf8_valid(value + i, len - i, &bad))
			bad = len - i;
		memcpy(out + n, value + i, bad);
		n += bad;
		i += bad;
		if (i < len) {
			memcpy(out + n, replacement, 3);
			n += 3;
			i++;
		}
	}
	out[n] = '\0';
	return out;
}

/*
 * Appends `,"key":"value"` (no comma for the first field; @key is one of
 * ours, checked by the caller when it is a context key), or the value
 * unquoted when @quote_value is false (numbers).  A value too long for the
 * line is cut, on a UTF-8 character boundary, to a prefix that fits even
 * if every byte after its plain start needed a six-byte escape; a field
 * that cannot fit at all is left out.  Either way the line says
 * "truncated":true.
 */
static void
log_field_put(struct log_line *l, const char *key, const char *value,
    bool quote_value)
{
	size_t klen = strlen(key), vlen = strlen(value), head, avail, plain;
	size_t qlen = 0, keep;
	char *at;
	const char *q = NULL;

	head = (l->len > 1) + klen + 3;		/* ,"key": */
	if (head + 2 > log_room(l)) {
		l->truncated = true;
		return;
	}
	avail = log_room(l) - head;		/* for the value */
	at = l->buf + l->len + head;
	if (!quote_value) {
		if (vlen > avail) {
			l->truncated = true;
			return;
		}
		memcpy(at, value, vlen);
		q = at;
		qlen = vlen;
	} else {
		plain = log_plain_prefix(value, vlen);
		/* Escaping only lengthens: a longer value cannot fit whole. */
		if (vlen + 2 <= avail)
			q = log_quote(value, vlen, plain, at, avail, &qlen);
		if (q == NULL || qlen > avail) {
			l->truncated = true;
			keep = avail - 2;
			if (plain < keep)
				keep = plain + (keep - plain) / 6;
			if (keep > vlen)
				keep = vlen;
			while (keep > 0 && ((unsigned char)value[keep] & 0xc0) == 0x80)
				keep--;
			q = log_quote(value, keep, plain, at, avail, &qlen);
			if (q == NULL || qlen > avail)
				return;
		}
	}
	if (q != at)
		memcpy(at, q, qlen);
	if (l->len > 1)
		l->buf[l->len++] = ',';
	l->buf[l->len++] = '"';
	log_raw(l, key, klen);
	log_raw(l, "\":", 2);
	l->len += qlen;
}

static void
log_field(struct log_line *l, const char *key, const char *value,
    bool quote_value)
{
	char *repaired = quote_value ?
	    log_utf8_repaired(value, strlen(value)) : NULL;

	log_field_put(l, key, repaired != NULL ? repaired : value, quote_value);
	free(repaired);
}

/* Context keys may not repeat these (log.h). */
static const char *const log_fixed_keys[] = {
	"ts", "level", "proc", "pid", "func", "msg", "request_id", "errno",
	"err", "truncated",
};

static bool
log_key_is_fixed(const char *key)
{
	/* A context request_id stands in when no request's id is set. */
	if (log_request_id[0] == '\0' && strcmp(key, "request_id") == 0)
		return false;
	/* Spares ten comparisons for most keys. */
	if (strchr("tlpfmre", key[0]) == NULL)
		return false;
	for (size_t i = 0; i < sizeof(log_fixed_keys) / sizeof(*log_fixed_keys); i++) {
		if (strcmp(key, log_fixed_keys[i]) == 0)
			return true;
	}
	return false;
}

void
log_emit(enum log_level level, const char *func, int errnum,
    const char *const *kv, const char *fmt, ...)
{
	int saved_errno = errno;
	/* As long as a line: a longer message is cut by log_field(), which
	 * keeps characters whole and marks the line. */
	char ts[32], buf[PIPE_BUF], num[24];
	const char *msg = fmt;
	struct log_line line;
	va_list ap;

	if (level < log_min_level)
		return;
	/* Most lines, the access line among them, have nothing to format. */
	if (strchr(fmt, '%') != NULL) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		msg = buf;
	}
	timefmt_now(ts);

	line.len = 0;
	line.truncated = false;
	log_raw(&line, "{", 1);
	log_field(&line, "ts", ts, true);
	log_field(&line, "level", log_level_names[level], true);
	log_field(&line, "proc", log_proc, true);
	if (log_pid == 0)
		snprintf(num, sizeof(num), "%d", (int)getpid());
	log_field(&line, "pid", log_pid != 0 ? log_pid_text : num, false);
	log_field(&line, "func", func, true);
	log_field(&line, "msg", msg, true);
	if (log_request_id[0] != '\0')
		log_field(&line, "request_id", log_request_id, true);
	if (errnum != 0) {
		snprintf(num, sizeof(num), "%d", errnum);
		log_field(&line, "errno", num, false);
		log_field(&line, "err", strerror(errnum), true);
	}
	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		if (kv[1] == NULL || log_key_is_fixed(kv[0]))
			continue;
		if (log_key_ok(kv[0]))
			log_field(&line, kv[0], kv[1], true);
		else
			line.truncated = true;
	}
	if (line.truncated)
		log_raw(&line, ",\"truncated\":true", sizeof(",\"truncated\":true") - 1);
	log_raw(&line, "}\n", 2);
	log_put(level, line.buf, line.len);
	errno = saved_errno;
}
