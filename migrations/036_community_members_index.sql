-- no-transaction
-- "Which communities am I in", asked on every login; the primary key leads with
-- community_id. Built CONCURRENTLY (one statement, no transaction) because
-- community_members is busy on a live instance. A failed build leaves an INVALID
-- index that IF NOT EXISTS would skip: drop it before running again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS community_members_user_id_idx
    ON community_members (user_id);
