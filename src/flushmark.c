/* SPDX-License-Identifier: MIT */
/*
 * This file contains the mark of a failed flush of the WAL (see
 * flushmark.h).
 */
#include "flushmark.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#define FLUSHMARK_PATH_MAX (CONFIG_PATH_MAX + sizeof(CONFIG_WRITER_UNSYNCED) + 1)

static int
flushmark_path(const struct config *cfg, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/" CONFIG_WRITER_UNSYNCED, cfg->run_dir);

	return n < 0 || (size_t)n >= size ? EGW_E_CONFIG : 0;
}

void
flushmark_set(const struct config *cfg)
{
	char path[FLUSHMARK_PATH_MAX];
	int fd = -1;

	if (flushmark_path(cfg, path, sizeof(path)) == 0)
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("cannot mark the failed flush in %s/%s; a process"
		    " started later will not know of it", cfg->run_dir,
		    CONFIG_WRITER_UNSYNCED);
		return;
	}
	close(fd);
}

bool
flushmark_present(const struct config *cfg)
{
	char path[FLUSHMARK_PATH_MAX];

	/* A path that cannot be built cannot have been marked either. */
	return flushmark_path(cfg, path, sizeof(path)) == 0 &&
	    access(path, F_OK) == 0;
}

bool
flushmark_checkpoint(const struct config *cfg, struct store *st)
{
	char path[FLUSHMARK_PATH_MAX];

	if (sqlite3_wal_checkpoint_v2(store_db(st), NULL,
	    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
		return false;
	if (flushmark_path(cfg, path, sizeof(path)) == 0 &&
	    unlink(path) != 0 && errno != ENOENT) {
		log_warn("cannot remove %s", path);
		return false;
	}
	return true;
}

int
flushmark_settle(const struct config *cfg, struct store *st)
{
	if (!flushmark_present(cfg))
		return 0;
	if (!flushmark_checkpoint(cfg, st)) {
		log_warnx("a flush of the WAL failed and no checkpoint has"
		    " succeeded since: write refused");
		return EGW_E_IO;
	}
	log_info("checkpoint done after a failed flush; writes resume");
	return 0;
}
