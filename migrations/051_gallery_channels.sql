-- Gallery channels show their attachments as a grid.

-- The new label cannot be used in the transaction that adds it, so nothing below
-- refers to it.
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'gallery';

-- The gallery lists a channel's files newest first.
CREATE INDEX files_channel_created_idx ON files (channel_id, created_at DESC)
    WHERE channel_id IS NOT NULL;
