-- Indexes for the hot paths seen in production profiles, and for foreign keys whose
-- ON DELETE action otherwise scans the whole referencing table. Plain CREATE INDEX
-- inside this migration's transaction: the tables were still small when it shipped.

-- Channel history skips soft-deleted messages.
CREATE INDEX IF NOT EXISTS messages_channel_live_idx
    ON messages (channel_id, created_at DESC) WHERE deleted_at IS NULL;
-- Session listing ("your devices") shows live tokens only.
CREATE INDEX IF NOT EXISTS refresh_tokens_active_user_idx
    ON refresh_tokens (user_id, expires_at) WHERE revoked_at IS NULL;
-- The audit-log retention job deletes by age.
CREATE INDEX IF NOT EXISTS audit_log_created_at_idx ON audit_log (created_at);
-- Deleting an account cascades into voice history and sets these references to NULL.
CREATE INDEX IF NOT EXISTS voice_sessions_user_id_idx ON voice_sessions (user_id);
CREATE INDEX IF NOT EXISTS channels_created_by_idx ON channels (created_by);
CREATE INDEX IF NOT EXISTS channel_bans_banned_by_idx ON channel_bans (banned_by);
CREATE INDEX IF NOT EXISTS group_invites_created_by_idx ON group_invites (created_by);
CREATE INDEX IF NOT EXISTS registration_invites_created_by_idx ON registration_invites (created_by);
CREATE INDEX IF NOT EXISTS pinned_messages_pinned_by_idx ON pinned_messages (pinned_by);
