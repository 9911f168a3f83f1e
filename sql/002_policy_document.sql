-- SPDX-License-Identifier: MIT
-- This file adds the stored API document of each policy.
--
-- api_json is the policy as GET /v1/policies/{id} returns it, without the
-- "status" member (apply_status, apply_error and applied_generation: the
-- applier's, which change without the policy), as JSON text.  The pool's
-- writer rewrites it in the same transaction as every change to the policy
-- row or its child rows, so a read is one row instead of four queries and a
-- rebuilt document.
--
-- NULL means "not built": reads then build the document from the columns
-- and child rows, and the writer fills every NULL when the pool starts.
-- Rows written before this migration start NULL.  Whoever changes a policy
-- by hand (sqlite3) must set api_json = NULL on it in the same transaction:
-- otherwise reads keep answering the old document.
-- The check is the shape reads rely on (they append the status before the
-- closing brace); json_valid() would parse every document on every write.
ALTER TABLE policies ADD COLUMN api_json TEXT
	CHECK (api_json IS NULL OR api_json GLOB '{*}');
