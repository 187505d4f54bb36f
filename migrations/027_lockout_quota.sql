-- Login lockout after repeated failures, and per-user upload quotas.

ALTER TABLE users
    ADD COLUMN failed_login_attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN locked_until TIMESTAMPTZ,
    -- NULL: the instance default quota applies.
    ADD COLUMN upload_quota_bytes BIGINT,
    ADD COLUMN upload_used_bytes BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT users_failed_login_attempts_nonnegative CHECK (failed_login_attempts >= 0),
    ADD CONSTRAINT users_upload_quota_nonnegative CHECK (upload_quota_bytes IS NULL OR upload_quota_bytes >= 0),
    ADD CONSTRAINT users_upload_used_nonnegative CHECK (upload_used_bytes >= 0);

-- Start the counters from what each user has already uploaded.
UPDATE users AS u
SET upload_used_bytes = f.total
FROM (
    SELECT uploader_id, sum(size_bytes)::bigint AS total
    FROM files
    WHERE uploader_id IS NOT NULL
    GROUP BY uploader_id
) AS f
WHERE f.uploader_id = u.id;
