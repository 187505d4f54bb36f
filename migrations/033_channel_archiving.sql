-- Archived channels are read-only and hidden from the sidebar, history intact.

ALTER TABLE channels
    ADD COLUMN archived_at TIMESTAMPTZ,
    -- SET NULL: the archive outlives the moderator who archived the channel.
    ADD COLUMN archived_by UUID REFERENCES users (id) ON DELETE SET NULL;

-- Sidebars list live channels only, in order.
CREATE INDEX channels_group_live_idx ON channels (group_id, position) WHERE archived_at IS NULL;
CREATE INDEX channels_archived_by_idx ON channels (archived_by) WHERE archived_by IS NOT NULL;
