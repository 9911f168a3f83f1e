/* SPDX-License-Identifier: MIT */
/*
 * This file contains structured logging: one JSON object per line on stderr.
 *
 * Every line carries ts (UTC, milliseconds), level, proc, pid, func and msg,
 * plus the current request id when one is set, plus optional context keys.
 * Keys are our own [a-z0-9_] literals; a value that needs escaping is
 * escaped by json-c, so that escaping is always right.  Logging
 * never exits and never allocates on the caller's behalf beyond the line.
 */
#ifndef EGW_LOG_H
#define EGW_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

/**
 * log_init() - set the process name and minimum level
 * @proc: short component name ("api", "applier", ...); borrowed, must
 *        outlive the process (use a literal)
 * @min_level: lines below this level are dropped
 */
void log_init(const char *proc, enum log_level min_level);

/**
 * log_level_parse() - parse "debug"/"info"/"warn"/"error"
 * @text: the value
 * @out: where the level goes
 *
 * Returns: 0, or EGW_E_CONFIG for an unknown name.
 */
int log_level_parse(const char *text, enum log_level *out);

/**
 * log_set_request_id() - attach a request id to following lines
 * @request_id: copied (truncated to 64 bytes); NULL clears it
 *
 * The id belongs to the calling thread: other threads' lines keep theirs.
 */
void log_set_request_id(const char *request_id);

/**
 * log_hold() - let this thread's debug and info lines wait to be written
 * together
 * @max_age_ms: 0 (the default) writes every line at once; otherwise a
 *              line waits until the lines held would pass PIPE_BUF bytes,
 *              a warning or an error line comes (written with them, in
 *              order), a line comes when the oldest held has waited
 *              @max_age_ms, or log_flush() is called
 * Nothing writes held lines on a timer: a thread that holds them calls
 * log_flush() before it may sleep longer than @max_age_ms, and before it
 * exits.  Lines held when the process is killed are lost.  Each write is
 * still of whole lines and at most PIPE_BUF bytes (atomic on a pipe).
 */
void log_hold(unsigned max_age_ms);

/**
 * log_flush() - write the lines this thread holds (log_hold()) now
 * errno is preserved.
 */
void log_flush(void);

/**
 * log_emit() - write one line
 * @level: severity
 * @func: calling function (the macros pass __func__)
 * @errnum: errno to report as "errno"/"err", or 0 for none
 * @kv: NULL or a NULL-terminated list of key, value string pairs added to
 *      the line, keys distinct and of [a-z0-9_] (values may be NULL and
 *      are then skipped; a key that repeats a fixed one, "ts" to "err" or
 *      "truncated", is skipped too, except "request_id" while none is set
 *      with log_set_request_id())
 * @fmt: printf-style message
 *
 * A line that would pass PIPE_BUF has its values cut, on UTF-8 character
 * boundaries, so that it stays one atomic write and valid JSON; it then
 * carries "truncated":true.  errno is preserved.
 */
void log_emit(enum log_level level, const char *func, int errnum,
    const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, __func__, 0, NULL, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, __func__, 0, NULL, __VA_ARGS__)
#define log_warnx(...) log_emit(LOG_LEVEL_WARN, __func__, 0, NULL, __VA_ARGS__)
/* log_warn adds errno's value and text, like OpenBSD's log_warn. */
#define log_warn(...) log_emit(LOG_LEVEL_WARN, __func__, errno, NULL, __VA_ARGS__)
#define log_errorx(...) log_emit(LOG_LEVEL_ERROR, __func__, 0, NULL, __VA_ARGS__)
#define log_error(...) log_emit(LOG_LEVEL_ERROR, __func__, errno, NULL, __VA_ARGS__)
/* Context keys: log_kv(LOG_LEVEL_INFO, ((const char *[]){"route", r, NULL}), "..."). */
#define log_kv(level, kv, ...) log_emit(level, __func__, 0, kv, __VA_ARGS__)

#endif
