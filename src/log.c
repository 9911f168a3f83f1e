/* SPDX-License-Identifier: MIT */
/*
 * This file contains the JSON-lines logger.
 *
 * A line is built as a json-c object and written with one write(2) so that
 * lines from the prefork workers sharing stderr never interleave mid-line
 * (writes of up to PIPE_BUF bytes to a pipe are atomic; longer messages are
 * truncated to stay below it).
 */
#include "log.h"
#include "err.h"
#include "timefmt.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_proc = "egw";
static enum log_level log_min_level = LOG_LEVEL_INFO;
static char log_request_id[65];
/* getpid() is a system call on every line otherwise (glibc no longer
 * caches it); refreshed in every child by the fork handler. */
static pid_t log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void
log_pid_refresh(void)
{
	log_pid = getpid();
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
log_set_request_id(const char *request_id)
{
	if (request_id == NULL)
		log_request_id[0] = '\0';
	else
		snprintf(log_request_id, sizeof(log_request_id), "%s", request_id);
}

/* The fixed fields: literal keys, each added once, so json-c may skip
 * copying the key and searching for an existing one (a line is written for
 * every request). */
static void
log_put(struct json_object *line, const char *key, struct json_object *v)
{
	json_object_object_add_ex(line, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW |
	    JSON_C_OBJECT_KEY_IS_CONSTANT);
}

void
log_emit(enum log_level level, const char *func, int errnum,
    const char *const *kv, const char *fmt, ...)
{
	int saved_errno = errno;
	char ts[32], msg[1024];
	struct json_object *line;
	const char *text;
	va_list ap;

	if (level < log_min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timefmt_now(ts);

	line = json_object_new_object();
	if (line == NULL) {
		errno = saved_errno;
		return;
	}
	log_put(line, "ts", json_object_new_string(ts));
	log_put(line, "level", json_object_new_string(log_level_names[level]));
	log_put(line, "proc", json_object_new_string(log_proc));
	log_put(line, "pid", json_object_new_int((int)(log_pid != 0 ? log_pid : getpid())));
	log_put(line, "func", json_object_new_string(func));
	log_put(line, "msg", json_object_new_string(msg));
	if (log_request_id[0] != '\0')
		log_put(line, "request_id", json_object_new_string(log_request_id));
	if (errnum != 0) {
		log_put(line, "errno", json_object_new_int(errnum));
		log_put(line, "err", json_object_new_string(strerror(errnum)));
	}
	/* The caller's keys outlive the line, so json-c need not copy them;
	 * one may repeat a fixed key (it then replaces it). */
	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		if (kv[1] != NULL)
			json_object_object_add_ex(line, kv[0],
			    json_object_new_string(kv[1]), JSON_C_OBJECT_KEY_IS_CONSTANT);
	}

	text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text != NULL) {
		char out[PIPE_BUF];
		size_t n = strlen(text);

		if (n > sizeof(out) - 1)
			n = sizeof(out) - 1;
		memcpy(out, text, n);
		out[n++] = '\n';
		/* Best effort: a closed stderr must not take the daemon down. */
		if (write(STDERR_FILENO, out, n) < 0)
			(void)0;
	}
	json_object_put(line);
	errno = saved_errno;
}
