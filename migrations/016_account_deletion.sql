-- Account deletion is two-phase: the user asks, a grace period runs (logging in
-- cancels it), then the purge job deletes the row and the foreign keys decide what
-- goes with it. deleted_at marks an account already scrubbed (profile and
-- credentials wiped) whose row must stay until the groups it owns are handed
-- over, since groups.owner_id is ON DELETE RESTRICT.

ALTER TABLE users
    ADD COLUMN deletion_requested_at TIMESTAMPTZ,
    ADD COLUMN deleted_at TIMESTAMPTZ,
    ADD CONSTRAINT users_deleted_after_request
        CHECK (deleted_at IS NULL OR deletion_requested_at IS NOT NULL);

-- The purge job: accounts whose grace period is running.
CREATE INDEX users_pending_deletion_idx ON users (deletion_requested_at)
    WHERE deletion_requested_at IS NOT NULL AND deleted_at IS NULL;
