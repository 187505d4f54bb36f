-- Encrypted attachments. The blob lives in the server's storage directory; the key
-- that decrypts it travels inside the message ciphertext, never here.

CREATE TABLE files (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL: an attachment stays readable in the conversation after its uploader leaves.
    uploader_id     UUID REFERENCES users (id) ON DELETE SET NULL,
    -- CASCADE: a channel's attachments go with it; the orphan sweep removes the blobs.
    channel_id      UUID REFERENCES channels (id) ON DELETE CASCADE,
    storage_path    TEXT NOT NULL UNIQUE,
    encrypted_name  BYTEA,
    content_type    TEXT NOT NULL DEFAULT 'application/octet-stream',
    size_bytes      BIGINT NOT NULL,
    sha256          BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT files_size_nonnegative CHECK (size_bytes >= 0),
    CONSTRAINT files_sha256_length CHECK (octet_length(sha256) = 32)
);

CREATE INDEX files_uploader_id_idx ON files (uploader_id);
CREATE INDEX files_channel_id_idx ON files (channel_id);

-- SET NULL: a message whose attachment was purged still shows as a message.
ALTER TABLE messages ADD COLUMN file_id UUID REFERENCES files (id) ON DELETE SET NULL;
CREATE INDEX messages_file_id_idx ON messages (file_id) WHERE file_id IS NOT NULL;
