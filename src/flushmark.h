/* SPDX-License-Identifier: MIT */
/*
 * This file contains the mark of a failed flush of the WAL:
 * EGW_RUN_DIR/CONFIG_WRITER_UNSYNCED, from the API writer's failed
 * fdatasync until a TRUNCATE checkpoint has put every commit into the
 * synced database file.  A process's own memory of the failure would die
 * with it, and Linux reports a write-back error once, to the descriptors
 * open when it happened: a writer started afterwards (SIGHUP, a crash, a
 * restart of egw-api), a worker writing without the writer, or egw-natsd
 * would flush their own descriptors without error over the lost pages and
 * confirm writes again.  Each of them settles the mark (flushmark_settle)
 * before it writes.  In the run directory, because what it guards, pages
 * in the page cache whose write-back failed, does not outlive a reboot.
 */
#ifndef EGW_FLUSHMARK_H
#define EGW_FLUSHMARK_H

#include <stdbool.h>

struct config;
struct store;

/**
 * flushmark_set() - mark a failed flush (logged when the mark cannot be
 * made: the caller's own refusal still holds, a later process's not)
 */
void flushmark_set(const struct config *cfg);

/**
 * flushmark_present() - whether a failed flush is marked
 */
bool flushmark_present(const struct config *cfg);

/**
 * flushmark_checkpoint() - the TRUNCATE checkpoint on @st's connection,
 * then the mark removed
 *
 * Returns: true once both are done.
 */
bool flushmark_checkpoint(const struct config *cfg, struct store *st);

/**
 * flushmark_settle() - before a write on @st's connection: nothing when no
 * failed flush is marked, else flushmark_checkpoint() (logged)
 *
 * Returns: 0, or EGW_E_IO: write nothing yet.
 */
int flushmark_settle(const struct config *cfg, struct store *st);

#endif
