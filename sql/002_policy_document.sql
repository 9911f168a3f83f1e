-- SPDX-License-Identifier: MIT
-- This file adds the stored API document of each policy.
--
-- api_json is the policy as GET /v1/policies/{id} returns it, without the
-- "status" member (apply_status, apply_error and applied_generation: the
-- applier's, which change without the policy), as JSON text, rewritten in
-- the same transaction as every change to the policy row or its child
-- rows, so a read is one row instead of four queries and a rebuilt
-- document.
--
-- The store's write paths rewrite it in every process (the pool's writer,
-- a worker writing directly, egw-natsd's events and expiry).
-- api_json_generation is the row's generation the document was built at.
-- Every change to a policy, by any version of the programs, bumps the
-- row's generation, so a document whose generation differs is stale: reads
-- then build the text from the columns and child rows, as for a NULL
-- document, and the pool's writer rebuilds both kinds when it starts.
-- Rows written before this migration start NULL.  A change by hand
-- (sqlite3) that does not bump generation must set api_json = NULL in the
-- same transaction; a later change to the document's format must do so in
-- its migration.
--
-- The check is the shape reads rely on (they append the status before the
-- closing brace); json_valid() would parse every document on every write.
ALTER TABLE policies ADD COLUMN api_json TEXT
	CHECK (api_json IS NULL OR api_json GLOB '{*}');
ALTER TABLE policies ADD COLUMN api_json_generation INTEGER;
