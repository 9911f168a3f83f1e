/* SPDX-License-Identifier: MIT */
/*
 * This file contains the record of the scenario.created messages egw-natsd
 * has acted on (table scenario_event_digests, sql/006).
 *
 * JetStream delivers at least once, so the same message can come back
 * after the policy it created was disabled, narrowed or deleted by an
 * operator.  The bridge keys each accepted message by the SHA-256 of its
 * body, stored in the transaction that acted on it; the same bytes for the
 * same scenario are then done, whatever the policy looks like now.
 */
#ifndef EGW_STORE_EVENTS_H
#define EGW_STORE_EVENTS_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>

/**
 * store_event_seen() - was this message accepted for @scenario_id before?
 * @st: connection
 * @seen: the answer
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_seen(struct store *st, const char *scenario_id,
    const char *digest, bool *seen);

/**
 * store_event_record() - remember that this message was accepted
 * @st: connection; inside the transaction that acted on the message (a
 *      single INSERT outside one commits by itself)
 *
 * Recording it twice is not an error.
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_record(struct store *st, const char *scenario_id,
    const char *digest);

#endif
