-- Threads: a reply chain hanging off one root message of the same channel.

ALTER TABLE messages
    ADD COLUMN thread_root_id UUID,
    ADD COLUMN thread_reply_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN thread_last_reply_at TIMESTAMPTZ,
    ADD CONSTRAINT messages_thread_not_self CHECK (thread_root_id IS NULL OR thread_root_id <> id),
    ADD CONSTRAINT messages_thread_reply_count_nonnegative CHECK (thread_reply_count >= 0),
    -- Composite key: the root must be in the same channel. CASCADE: a thread is part
    -- of its root, so hard-deleting the root removes the replies (ordinary deletion
    -- is the soft deleted_at, which keeps the thread).
    ADD CONSTRAINT messages_thread_root_fkey FOREIGN KEY (thread_root_id, channel_id)
        REFERENCES messages (id, channel_id) ON DELETE CASCADE;

CREATE INDEX messages_thread_idx ON messages (thread_root_id, created_at)
    WHERE thread_root_id IS NOT NULL;
