-- no-transaction
-- Built CONCURRENTLY so a live instance keeps writing messages meanwhile. That
-- cannot run inside a transaction block, hence the directive above, and hence
-- exactly one statement in this file. A failed concurrent build leaves an INVALID
-- index that IF NOT EXISTS would then skip: drop it before running again.

-- Hard-deleting a message sets reply_to_id to NULL in its replies; without this
-- index that is a scan of every message.
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_reply_to_id_idx
    ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;
